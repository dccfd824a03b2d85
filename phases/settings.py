"""The ONE loader of a blumeops stack's config, the section DSL, and the shared sections (indri, tools, tailnet).

The parsers (raw value -> typed value) live in ``phases/parsers.py``; they are re-exported here.

Every setting is a flat key under the ``blumeops:`` namespace (``blumeops:zot.port``). Settings are grouped in
*sections*: frozen dataclasses whose fields are the keys (``port`` of the ``zot`` section is
``blumeops:zot.port``), each field declared once with ``setting(parser, help, default=...)``. A phase declares
its own sections in its own module (``SETTINGS = (ZotSettings, ...)`` in ``phases/p0_foundation.py``); the
shared sections live here and build the component types directly (the ``tools`` section *is* a
``components.host.HostTools``).

``load(declared)`` reads the whole config once, validates every key of every declared section and either
returns a frozen ``Settings`` or raises ONE ``SettingsError`` listing every problem, each naming the key and
the command that fixes it. A section of a phase in the target's chain is built complete: its required keys
are present, so its fields are not ``Optional`` and phase modules never re-check them
(``settings.section(ZotSettings)``). Nothing is registered with the engine before this passes.

``ops plan`` reads the same declarations: it fills fake values for secrets and the documented offline
stand-ins for facts only the operator can supply (the host key, the tailnet's users), so the offline preview
works from a fresh clone while the real ``pulumi up`` still refuses until they are set.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pulumi
import pulumi.runtime.config as runtime_config

from components.host import HostTools
from phases.adoption import Adoption, adoption_document
from phases.parsers import (  # re-exported (`as`): phase modules declare settings with s.<parser>
    HOST_KEY_TYPES as HOST_KEY_TYPES,
)
from phases.parsers import (
    MINIKUBE_KEYWORDS as MINIKUBE_KEYWORDS,
)
from phases.parsers import (
    MINIKUBE_MIN_CPUS as MINIKUBE_MIN_CPUS,
)
from phases.parsers import (
    MINIKUBE_MIN_DISK_MB as MINIKUBE_MIN_DISK_MB,
)
from phases.parsers import (
    MINIKUBE_MIN_MEMORY_MB as MINIKUBE_MIN_MEMORY_MB,
)
from phases.parsers import (
    PHASE_IDS as PHASE_IDS,
)
from phases.parsers import (
    InvalidValueError as InvalidValueError,
)
from phases.parsers import (
    Parser as Parser,
)
from phases.parsers import (
    _json_value,
)
from phases.parsers import (
    absolute_path as absolute_path,
)
from phases.parsers import (
    blocked as blocked,
)
from phases.parsers import (
    boolean as boolean,
)
from phases.parsers import (
    chart_version as chart_version,
)
from phases.parsers import (
    count as count,
)
from phases.parsers import (
    disk_size as disk_size,
)
from phases.parsers import (
    dns_label as dns_label,
)
from phases.parsers import (
    dns_name as dns_name,
)
from phases.parsers import (
    host_key as host_key,
)
from phases.parsers import (
    hostname as hostname,
)
from phases.parsers import (
    integer as integer,
)
from phases.parsers import (
    json_list as json_list,
)
from phases.parsers import (
    logins as logins,
)
from phases.parsers import (
    minikube_profile as minikube_profile,
)
from phases.parsers import (
    multiline_secret as multiline_secret,
)
from phases.parsers import (
    one_of as one_of,
)
from phases.parsers import (
    owned_dir as owned_dir,
)
from phases.parsers import (
    owned_file as owned_file,
)
from phases.parsers import (
    phase_id as phase_id,
)
from phases.parsers import (
    phase_index as phase_index,
)
from phases.parsers import (
    port as port,
)
from phases.parsers import (
    storage_quantity as storage_quantity,
)
from phases.parsers import (
    tags as tags,
)
from phases.parsers import (
    tailnet_name as tailnet_name,
)
from phases.parsers import (
    tailscale_service as tailscale_service,
)
from phases.parsers import (
    text as text,
)
from phases.parsers import (
    tool_path as tool_path,
)
from phases.parsers import (
    unix_user as unix_user,
)
from phases.parsers import (
    upstreams as upstreams,
)
from phases.parsers import (
    version as version,
)

NAMESPACE = "blumeops"
# Namespaces whose keys Pulumi itself reads (the engine's own options); every other foreign key is refused.
ENGINE_NAMESPACES = ("pulumi",)

class SettingsError(Exception):
    """Every problem of a stack's config at once; ``str()`` is the message shown to the operator."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = [f"the stack config has {count} problem{'s' if count != 1 else ''}:"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------------------------------
# Declaring settings: sections of setting() fields
# --------------------------------------------------------------------------------------------------

_MISSING: Any = object()
_META = "blumeops.setting"


@dataclass(frozen=True, slots=True)
class Spec:
    """One ``blumeops:<prefix>.<name>`` setting, as declared by a section's field."""

    key: str
    field: str
    parse: Parser
    help: str
    default: Any = None  # the raw default (None: no default)
    secret: bool = False
    required: bool = False  # must be set (no default) when its section's phase is in the chain
    stand_in: str | None = None  # offline stand-in ops plan may use; never used by the real engine
    unless: str | None = None  # key of a boolean setting that, when true, lifts ``required``
    example: str = "<value>"
    section: str = ""  # where it is declared, e.g. "phases.p0_foundation.ZotSettings"

    @property
    def full_key(self) -> str:
        return f"{NAMESPACE}:{self.key}"

    def fix(self) -> str:
        flag = "--secret " if self.secret else ""
        return f"`pulumi config set {flag}{self.full_key} {self.example}`"


def setting(
    parse: Parser,
    help: str,
    *,
    default: Any = _MISSING,
    secret: bool = False,
    required: bool = False,
    stand_in: str | None = None,
    unless: str | None = None,
    example: str = "<value>",
    key: str | None = None,
) -> Any:
    """A field of a settings section. Exactly one of: a ``default``, ``required=True``, or neither (optional:
    ``None`` when unset). ``key`` overrides the camelCase of the field name."""
    if required and default is not _MISSING:
        raise ValueError(f"setting {help!r}: a required setting has no default")
    meta = {"parse": parse, "help": help, "default": None if default is _MISSING else default, "secret": secret,
            "required": required, "stand_in": stand_in, "unless": unless, "example": example, "key": key}
    return dataclasses.field(metadata={_META: meta})


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """A declared section: its key prefix, the type it builds and the specs of its fields."""

    prefix: str
    type: type
    specs: tuple[Spec, ...]
    shared: bool = False  # indri, tools, tailnet: loaded for every target


_SECTIONS: dict[type, SectionSpec] = {}
S = TypeVar("S")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _register(prefix: str, cls: type, fields: Mapping[str, Mapping[str, Any]], shared: bool) -> SectionSpec:
    if not re.fullmatch(r"[a-z][A-Za-z0-9]*", prefix):
        raise ValueError(f"settings section prefix {prefix!r} must be one camelCase word")
    taken = {spec.prefix: spec for spec in _SECTIONS.values()}
    if prefix in taken and taken[prefix].type is not cls:
        raise ValueError(f"settings section prefix {prefix!r} is declared twice "
                         f"({taken[prefix].type.__qualname__} and {cls.__qualname__})")
    where = f"{cls.__module__}.{cls.__qualname__}"
    specs = []
    for name, meta in fields.items():
        key = f"{prefix}.{meta['key'] or _camel(name)}"
        unless = f"{prefix}.{meta['unless']}" if meta["unless"] else None
        specs.append(Spec(key=key, field=name, parse=meta["parse"], help=meta["help"], default=meta["default"],
                          secret=meta["secret"], required=meta["required"], stand_in=meta["stand_in"],
                          unless=unless, example=meta["example"], section=where))
    section_spec = SectionSpec(prefix, cls, tuple(specs), shared)
    _SECTIONS[cls] = section_spec
    return section_spec


def section(prefix: str, *, shared: bool = False) -> Callable[[type[S]], type[S]]:
    """Class decorator: a frozen dataclass whose fields (declared with ``setting``) are ``blumeops:<prefix>.*``."""

    def declare(cls: type[S]) -> type[S]:
        built = dataclass(frozen=True, slots=True)(cls)
        fields = {}
        for item in dataclasses.fields(cast(Any, built)):
            if _META not in item.metadata:
                raise TypeError(f"{cls.__qualname__}.{item.name} is not declared with setting()")
            fields[item.name] = item.metadata[_META]
        _register(prefix, built, fields, shared)
        return built

    return declare


def component_section(prefix: str, cls: type[S], *, shared: bool = False, **fields: Any) -> type[S]:
    """Declare ``blumeops:<prefix>.*`` as the fields of an existing component type (``HostTools``), so the
    settings build the type the components take and no mirror class restates it. Every field of ``cls``
    must be declared, with ``setting``, by its name."""
    names = [item.name for item in dataclasses.fields(cast(Any, cls))]
    if sorted(fields) != sorted(names):
        raise TypeError(f"settings section {prefix!r} must declare exactly the fields of {cls.__qualname__}: "
                        f"missing {sorted(set(names) - set(fields))}, unknown {sorted(set(fields) - set(names))}")
    _register(prefix, cls, {name: fields[name].metadata[_META] for name in names}, shared)
    return cls


def defaults(cls: type[S]) -> S:
    """A section built from its defaults alone (every field must have one): stand-ins for tests and tools."""
    spec_of = section_spec(cls)
    missing = [spec.key for spec in spec_of.specs if spec.default is None]
    if missing:
        raise TypeError(f"{cls.__qualname__} has settings without default: {', '.join(missing)}")
    return cls(**{spec.field: parse_default(spec) for spec in spec_of.specs})


def section_spec(cls: type) -> SectionSpec:
    if cls not in _SECTIONS:
        raise TypeError(f"{cls.__qualname__} is not a settings section (declare it with @settings.section)")
    return _SECTIONS[cls]


# --------------------------------------------------------------------------------------------------
# The shared sections: indri, its tools, the tailnet
# --------------------------------------------------------------------------------------------------

HOME = "/Users/erichblume"


@section("indri", shared=True)
class IndriSettings:
    """indri, the Mac mini every host step runs on, reached over SSH."""

    host: str = setting(hostname, "SSH host name of indri", default="indri")
    port: int = setting(port, "SSH port of indri", default=22, example="22")
    user: str = setting(unix_user, "macOS user the host steps run as", default="erichblume")
    uid: int = setting(count(0, 2**31 - 1), "uid of that user (launchctl gui/<uid>)", default=501, example="501")
    home: str = setting(absolute_path, "home directory of that user", default=HOME)
    host_key: str = setting(
        host_key, "pinned SSH host key of indri", required=True,
        stand_in="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9mZmxpbmUtc3RhbmQtaW4tbm90LWluZHJpcy1rZXkh",
        example="\"$(ssh-keyscan -t ed25519 indri 2>/dev/null | cut -d' ' -f2-)\"")
    ssh_private_key: pulumi.Output[str] | None = setting(
        multiline_secret, "SSH private key (default: the SSH agent)", secret=True, example="< ~/.ssh/id_ed25519")


def _tool(help: str, default: str) -> Any:
    return setting(tool_path, help, default=default)


# Absolute tool paths on indri: a non-interactive SSH shell and launchd have no Homebrew PATH.
component_section(
    "tools", HostTools, shared=True,
    bash=_tool("bash on indri (runs the LaunchAgents' scripts)", "/bin/bash"),
    brew=_tool("Homebrew", "/opt/homebrew/bin/brew"),
    curl=_tool("curl", "/usr/bin/curl"),
    docker=_tool("Docker Desktop CLI", "/usr/local/bin/docker"),
    file=_tool("file(1), which tells the zot binary's architecture", "/usr/bin/file"),
    kubectl=_tool("kubectl", "/opt/homebrew/bin/kubectl"),
    launchctl=_tool("launchctl", "/bin/launchctl"),
    minikube=_tool("minikube", "/opt/homebrew/bin/minikube"),
    plutil=_tool("plutil", "/usr/bin/plutil"),
    tailscale=_tool("tailscale CLI", "/Applications/Tailscale.app/Contents/MacOS/Tailscale"),
    pg_dump=_tool("pg_dump of the legacy brew PostgreSQL (same major as the server)",
                  "/opt/homebrew/opt/postgresql@18/bin/pg_dump"),
    pg_restore=_tool("pg_restore of the legacy brew PostgreSQL", "/opt/homebrew/opt/postgresql@18/bin/pg_restore"),
    psql=_tool("psql of the legacy brew PostgreSQL", "/opt/homebrew/opt/postgresql@18/bin/psql"),
    borgmatic=_tool("borgmatic", "/opt/homebrew/bin/borgmatic"),
    borg=_tool("borg (borgmatic's local_path)", "/opt/homebrew/bin/borg"),
    jq=_tool("jq (the borgmatic metrics agent reads borg's JSON with it)", "/opt/homebrew/bin/jq"),
    # macOS's /usr/bin/rsync is openrsync (or 2.6.9): the downloads move needs rsync 3's --partial-dir and --chmod
    rsync=_tool("rsync 3 (Homebrew's: brew install rsync), which copies the Transmission downloads to the NAS",
                "/opt/homebrew/bin/rsync"),
    mount=_tool("mount(8), which lists the NFS mounts", "/sbin/mount"),
    sqlite3=_tool("sqlite3, which checks the forge's database before it moves", "/usr/bin/sqlite3"),
    git=_tool("git, which checks the forge's repositories (fsck) and clones from the cluster forge",
              "/opt/homebrew/bin/git"),
    ssh=_tool("ssh (OpenSSH), the client of that clone", "/usr/bin/ssh"),
)


@section("tailnet", shared=True)
class TailnetSettings:
    """The tailnet: its name, who administers it, the program's OAuth client, the devices it tags."""

    name: str = setting(tailnet_name, "tailnet DNS name", default="tail8d86e.ts.net")
    admins: tuple[str, ...] = setting(
        logins, "Tailscale logins of the admins (ACL tests use the first)", required=True,
        stand_in='["admin@example.invalid"]', example="'[\"you@example.com\"]'")
    members: tuple[str, ...] = setting(
        logins, "Tailscale logins of the members (ACL tests use the first)", required=True,
        stand_in='["member@example.invalid"]', example="'[\"friend@example.com\"]'")
    oauth_client_id: str = setting(
        text, "OAuth client id the program uses against the Tailscale API", required=True,
        stand_in="offline-oauth-client-id", example="<client-id>")
    oauth_client_secret: pulumi.Output[str] = setting(
        text, "OAuth client secret the program uses against the Tailscale API", secret=True, required=True,
        example="<client-secret>")
    indri_device: str = setting(dns_name, "MagicDNS name of indri", default="indri.tail8d86e.ts.net")
    sifaka_device: str = setting(dns_name, "MagicDNS name of sifaka", default="sifaka.tail8d86e.ts.net")
    legacy_service_tags: tuple[str, ...] = setting(
        tags, "legacy service tags indri keeps until phase 9",
        default=("tag:grafana", "tag:kiwix", "tag:devpi", "tag:pg", "tag:feed", "tag:forge"),
        example="'[\"tag:forge\"]'")

    def __post_init__(self) -> None:
        # indri's own tags are phase 0's (it imports this module: read when the section is built, not at import)
        from phases.p0_foundation import INDRI_TAGS

        own = [tag for tag in self.legacy_service_tags if tag in INDRI_TAGS]
        if own:
            kept = [tag for tag in self.legacy_service_tags if tag not in INDRI_TAGS]
            raise ValueError(
                f"blumeops:tailnet.legacyServiceTags holds {', '.join(own)}, which indri carries as its own "
                f"({', '.join(INDRI_TAGS)}), not a legacy service's: the list is what phase 9 takes off indri. "
                f"Remove it: `pulumi config set blumeops:tailnet.legacyServiceTags '{json.dumps(kept)}'`")


SHARED_SECTIONS: tuple[type, ...] = (IndriSettings, HostTools, TailnetSettings)


# --------------------------------------------------------------------------------------------------
# The stack-level keys (not in a section)
# --------------------------------------------------------------------------------------------------

PHASE = Spec("phase", "phase", phase_id, "target phase: `pulumi up` converges every phase up to it",
             required=True, example="'1'", section="phases.settings")
BLOCKED = Spec("blockedPhases", "blocked_phases", blocked, "phases that must not be targeted, with the reason",
               default={}, example="'{\"6\": \"sifaka NFS export not ready\"}'", section="phases.settings")
ADOPT = Spec("adopt", "adoption", adoption_document,
             "the adoption document `python -m ops adopt` wrote: the next `pulumi up` imports what it lists "
             "(phases/adoption.py); remove the setting after that run", example="adopt/indri.json",
             section="phases.settings")
STACK_SPECS: tuple[Spec, ...] = (PHASE, BLOCKED, ADOPT)


# --------------------------------------------------------------------------------------------------
# The loaded settings
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """A validated stack config: the target, its chain, and one built instance per section in reach."""

    project: str
    stack: str
    phase: str
    blocked_phases: Mapping[str, str]
    phases: tuple[str, ...]  # every phase id up to and including the target
    sections: Mapping[type, Any]
    adoption: Adoption | None = None  # blumeops:adopt: what the next `pulumi up` imports (phases/adoption.py)

    def section(self, cls: type[S]) -> S:
        """The section ``cls``, complete: it is declared by a phase of the chain (or shared)."""
        if cls not in self.sections:
            spec = section_spec(cls)
            raise SettingsError([
                f"the settings section {spec.prefix} ({cls.__qualname__}) is not loaded for target phase "
                f"{self.phase}: a section is loaded when a phase up to the target lists it in its module's "
                f"SETTINGS; add {cls.__qualname__} to the SETTINGS of the phase that reads it"
            ])
        return cast(S, self.sections[cls])

    @property
    def indri(self) -> IndriSettings:
        return self.section(IndriSettings)

    @property
    def tools(self) -> HostTools:
        return self.section(HostTools)

    @property
    def tailnet(self) -> TailnetSettings:
        return self.section(TailnetSettings)


# Declared sections per phase id, as phases/__init__.py collects them from the phase modules.
Declared = Mapping[str, Sequence[type]]


def all_specs(declared: Declared) -> tuple[Spec, ...]:
    """Every setting: the stack keys, the shared sections, then each phase's sections in phase order (the
    order of ``declared``, the registry's)."""
    specs: list[Spec] = list(STACK_SPECS)
    for cls in SHARED_SECTIONS:
        specs.extend(section_spec(cls).specs)
    for classes in declared.values():
        for cls in classes:
            specs.extend(section_spec(cls).specs)
    keys = [spec.key for spec in specs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise TypeError(f"settings declared twice: {', '.join(twice)}")
    return tuple(specs)


def sections_in_reach(target: str, declared: Declared, ids: Sequence[str] = PHASE_IDS) -> tuple[type, ...]:
    """The sections a stack targeting ``target`` loads: the shared ones and those of its chain."""
    chain = list(ids)[: phase_index(target, ids) + 1]
    return (*SHARED_SECTIONS, *(cls for phase in chain for cls in declared.get(phase, ())))


def required_keys(target: str, declared: Declared, ids: Sequence[str] = PHASE_IDS) -> tuple[Spec, ...]:
    """The settings without default that a stack targeting ``target`` must set."""
    return (PHASE, *(spec for cls in sections_in_reach(target, declared, ids) for spec in section_spec(cls).specs
                     if spec.required))


def raw_config() -> dict[str, Any]:
    """Every config key the engine handed over (explicit config first, then the environment)."""
    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def _foreign_key_problem(key: str) -> str | None:
    namespace = key.partition(":")[0]
    if namespace in ENGINE_NAMESPACES:
        return None
    if namespace == NAMESPACE:
        return None
    hint = ""
    if namespace == "tailscale":
        hint = (" (the program builds its Tailscale provider explicitly from blumeops:tailnet.oauthClientId and "
                "blumeops:tailnet.oauthClientSecret)")
    elif namespace == "kubernetes":
        hint = " (the program builds its Kubernetes provider explicitly from the cluster it creates on indri)"
    elif namespace == "command":
        hint = " (host steps connect with blumeops:indri.* settings)"
    return (f"{key} is not read by this program{hint}; a value there is ignored and, for a secret, may be stored in "
            f"plain text: remove it with `pulumi config rm {key}`")


def _nested_key_problem(name: str, value: Any, specs: Mapping[str, Spec]) -> str | None:
    """A key written with `pulumi config set --path blumeops:zot.port` arrives as a map under `zot`."""
    prefixes = {key.split(".", 1)[0] for key in specs if "." in key}
    if name not in prefixes:
        return None
    try:
        nested = _json_value(value)
    except InvalidValueError:
        nested = None
    example = next(key for key in specs if key.startswith(f"{name}."))
    if isinstance(nested, Mapping):
        example = f"{name}.{next(iter(nested), example.split('.', 1)[1])}"
    return (f"{NAMESPACE}:{name} is a nested map, as `pulumi config set --path` writes it, but blumeops settings are "
            f"flat keys with a dot in their name: remove it with `pulumi config rm {NAMESPACE}:{name}` and set each "
            f"value without --path, e.g. `pulumi config set {NAMESPACE}:{example} <value>`")


def load(declared: Declared, project: str | None = None, stack: str | None = None,
         ids: Sequence[str] = PHASE_IDS) -> Settings:
    """Read and validate the whole stack config; raise ``SettingsError`` with every problem found. ``ids``: the
    registry's phase ids in order (the homelab's phase table unless a test registers a phase of its own)."""
    merged = raw_config()
    specs = {spec.key: spec for spec in all_specs(declared)}
    problems: list[str] = []

    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {}
    for full_key, value in sorted(merged.items()):
        if not full_key.startswith(prefix):
            problem = _foreign_key_problem(full_key)
            if problem:
                problems.append(problem)
            continue
        raw[full_key[len(prefix):]] = value

    for unknown in sorted(set(raw) - set(specs)):
        nested = _nested_key_problem(unknown, raw[unknown], specs)
        if nested:
            problems.append(nested)
            continue
        close = [key for key in specs if key.lower() == unknown.lower()]
        hint = f"did you mean {NAMESPACE}:{close[0]}? " if close else ""
        problems.append(
            f"{NAMESPACE}:{unknown} is not a blumeops setting: {hint}remove it with "
            f"`pulumi config rm {NAMESPACE}:{unknown}` (`python -m ops settings` lists every setting)"
        )

    target: str | None = None
    if "phase" not in raw:
        problems.append(f"{PHASE.full_key} is missing ({PHASE.help}): set it with {PHASE.fix()}")
    else:
        try:
            target = phase_id(raw["phase"], ids)
        except InvalidValueError as err:
            problems.append(f"{PHASE.full_key} {err}: fix it with {PHASE.fix()}")
    in_reach = sections_in_reach(target, declared, ids) if target is not None else ()
    required = {spec.key for spec in required_keys(target, declared, ids)} if target is not None else set()

    values: dict[str, Any] = {}
    for spec in specs.values():
        if spec is PHASE:
            continue
        if spec.key not in raw:
            if spec.key in required and not lifted(spec, raw):
                problems.append(f"{spec.full_key} is missing ({spec.help}): set it with {spec.fix()}")
            values[spec.key] = parse_default(spec)
            continue
        if not spec.secret and runtime_config.is_config_secret(spec.full_key):
            problems.append(
                f"{spec.full_key} is stored as a secret, but it is not one ({spec.help}) and would be sent "
                f"in plain text anyway: re-set it with `pulumi config set {spec.full_key} {spec.example}` "
                f"(without --secret)"
            )
            continue
        if spec.secret and not runtime_config.is_config_secret(spec.full_key):
            problems.append(
                f"{spec.full_key} is stored in plain text: re-set it with {spec.fix()} "
                f"so it is encrypted in the stack file"
            )
            continue
        try:
            parsed = spec.parse(raw[spec.key])
        except InvalidValueError as err:
            # A secret's value never appears in a message: the parsers' messages quote values, so say less.
            reason = "is not valid (its value is not repeated here)" if spec.secret else str(err)
            problems.append(f"{spec.full_key} {reason}: fix it with {spec.fix()}")
            continue
        values[spec.key] = pulumi.Output.secret(parsed) if spec.secret else parsed

    blocked_phases: Mapping[str, str] = values.get(BLOCKED.key) or {}
    if target is not None:
        for phase in list(ids)[: phase_index(target, ids) + 1]:
            if phase in blocked_phases:
                problems.append(
                    f"{PHASE.full_key} is {target!r}, but phase {phase} is blocked "
                    f"({blocked_phases[phase]}): lower the target below {phase} with "
                    f"`pulumi config set {PHASE.full_key} <id>`, or clear the block with "
                    f"`pulumi config rm {BLOCKED.full_key}` once it is resolved"
                )
    sections: dict[type, Any] = {}
    if not problems:
        for cls in in_reach:
            spec_of = section_spec(cls)
            try:
                sections[cls] = cls(**{spec.field: values[spec.key] for spec in spec_of.specs})
            except ValueError as err:  # a section's own cross-field rule (__post_init__)
                problems.append(f"{NAMESPACE}:{spec_of.prefix}.* {err}")
    if problems:
        raise SettingsError(problems)
    assert target is not None
    return Settings(
        project=project or pulumi.get_project(),
        stack=stack or pulumi.get_stack(),
        phase=target,
        blocked_phases=dict(blocked_phases),
        phases=tuple(ids)[: phase_index(target, ids) + 1],
        sections=sections,
        adoption=values.get(ADOPT.key),
    )


def lifted(spec: Spec, raw: Mapping[str, Any]) -> bool:
    """Whether the boolean named by ``spec.unless`` is set to true (which lifts the requirement)."""
    if spec.unless is None or spec.unless not in raw:
        return False
    try:
        return boolean(raw[spec.unless])
    except InvalidValueError:
        return False  # reported on its own key


def parse_default(spec: Spec) -> Any:
    if spec.default is None:
        return None
    if isinstance(spec.default, (tuple, list, dict)):
        return spec.parse(json.dumps(spec.default))
    return spec.parse(spec.default)


def describe(declared: Declared, raw: Mapping[str, Any] | None = None) -> Iterable[dict[str, Any]]:
    """Every setting with its default, where it is declared and (given the raw config) the value in effect."""
    raw = raw or {}
    for spec in all_specs(declared):
        set_here = spec.full_key in raw
        if spec.secret:
            effect = "[secret]" if set_here else ("<required>" if spec.required else "<unset>")
        elif set_here:
            effect = raw[spec.full_key]
        elif spec.default is not None:
            effect = json.dumps(spec.default) if isinstance(spec.default, (tuple, list, dict)) else spec.default
        else:
            effect = "<required>" if spec.required else "<unset>"
        default = spec.default
        yield {
            "key": spec.full_key,
            "default": (json.dumps(default) if isinstance(default, (tuple, list, dict)) else default),
            "secret": spec.secret,
            "required": spec.required,
            "declaredIn": spec.section,
            "set": set_here,
            "value": effect,
            "help": spec.help,
        }
