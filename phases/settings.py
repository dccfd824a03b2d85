"""Typed, validated settings of a blumeops stack: the ONLY reader of ``pulumi.Config``.

Every setting is a flat key under the ``blumeops:`` namespace (``blumeops:indri.hostKey``), declared once
in ``SPECS`` with its kind, default, whether it is a secret and from which phase it is required. ``load()``
reads all of them, validates all of them and either returns a frozen ``Settings`` or raises ONE
``SettingsError`` listing every problem, each naming the key and the command that fixes it. Nothing is
registered with the engine before this passes.

``ops plan`` reads ``SPECS`` too: it fills fake values for secrets (marked secret) and the documented
offline stand-ins for facts only the operator can supply (the host key, the tailnet's users), so the
offline preview works from a fresh clone while the real ``pulumi up`` still refuses until they are set.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config

NAMESPACE = "blumeops"

# The migration's phase ids, in order. The registry in phases/__init__.py carries their titles and
# builders; settings only needs to know which ids exist and how they are ordered.
PHASE_IDS: tuple[str, ...] = ("0", "1", "2", "3", "4", "5", "5.1", "6", "7", "8", "9")


def phase_index(phase_id: str) -> int:
    return PHASE_IDS.index(phase_id)


class SettingsError(Exception):
    """Every problem of a stack's config at once; ``str()`` is the message shown to the operator."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = [f"the stack config has {count} problem{'s' if count != 1 else ''}:"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------------------------------
# The declared settings
# --------------------------------------------------------------------------------------------------

Parser = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Spec:
    """One ``blumeops:<key>`` setting."""

    key: str
    parse: Parser
    help: str
    default: Any = None
    secret: bool = False
    required_from: str | None = None  # phase id from which a value must be present (no default)
    stand_in: str | None = None  # offline stand-in ops plan may use; never used by the real engine
    unless: str | None = None  # a boolean setting that, when true, lifts ``required_from``
    example: str = "<value>"

    @property
    def full_key(self) -> str:
        return f"{NAMESPACE}:{self.key}"

    def fix(self) -> str:
        flag = "--secret " if self.secret else ""
        return f"`pulumi config set {flag}{self.full_key} {self.example}`"


class _InvalidValueError(ValueError):
    """A value that does not parse; the message says what was expected."""


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise _InvalidValueError("expected a string")
    value = raw.strip()
    if not value:
        raise _InvalidValueError("must not be empty")
    return value


def _absolute_path(raw: Any) -> str:
    value = _text(raw)
    if value.startswith("~") or "$" in value:
        raise _InvalidValueError(
            f"{value!r} uses ~ or a variable; launchd and non-interactive SSH expand neither,"
            " so write the absolute path (e.g. /Users/erichblume/...)"
        )
    if not value.startswith("/"):
        raise _InvalidValueError(f"{value!r} is relative; write the absolute path")
    return value.rstrip("/") or "/"


def _integer(raw: Any, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise _InvalidValueError(f"expected a whole number from {low} to {high}")
    try:
        value = int(str(raw).strip(), 10)
    except ValueError:
        raise _InvalidValueError(f"{raw!r} is not a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise _InvalidValueError(f"{value} is outside {low}..{high}")
    return value


def _port(raw: Any) -> int:
    return _integer(raw, 1, 65535)


def _count(low: int, high: int) -> Parser:
    return lambda raw: _integer(raw, low, high)


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise _InvalidValueError(f"{raw!r} is not true or false")


def _phase(raw: Any) -> str:
    value = str(raw).strip()
    if value not in PHASE_IDS:
        raise _InvalidValueError(f"{value!r} is not a phase id; use one of {', '.join(PHASE_IDS)}")
    return value


_HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")


def _host_key(raw: Any) -> str:
    value = _text(raw)
    parts = value.split()
    # Accept a whole `ssh-keyscan` line ("indri ssh-ed25519 AAAA...") as well as "ssh-ed25519 AAAA...".
    if len(parts) == 3 and parts[0] not in _HOST_KEY_TYPES:
        parts = parts[1:]
    expected = "expected '<type> <base64>' as printed by `ssh-keyscan -t ed25519 indri`"
    if len(parts) != 2 or parts[0] not in _HOST_KEY_TYPES:
        raise _InvalidValueError(expected)
    key_type, encoded = parts
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _InvalidValueError(f"{expected}; the key is not valid base64") from None
    # The key blob starts with its own type name (RFC 4253 string): it must match the stated type.
    length = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4 : 4 + length].decode("ascii", "replace") != key_type:
        raise _InvalidValueError(f"{expected}; the key's data does not belong to a {key_type} key")
    return f"{key_type} {encoded}"


_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def _hostname(raw: Any) -> str:
    value = _text(raw)
    if not _HOSTNAME.match(value):
        raise _InvalidValueError(f"{value!r} is not a host name")
    return value


_UNIX_USER = re.compile(r"^[a-z_][a-z0-9_.-]*$")


def _unix_user(raw: Any) -> str:
    value = _text(raw)
    if not _UNIX_USER.match(value):
        raise _InvalidValueError(f"{value!r} is not a user name")
    return value


_LOGIN = re.compile(r"^[^@\s]+@[^@\s]+$")


def _logins(raw: Any) -> tuple[str, ...]:
    values = _json_list(raw)
    logins = tuple(_text(item) for item in values)
    if not logins:
        raise _InvalidValueError("needs at least one login")
    for login in logins:
        if not _LOGIN.match(login):
            raise _InvalidValueError(f"{login!r} is not a Tailscale login (user@domain)")
    return logins


def _json_value(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise _InvalidValueError("is not valid JSON/YAML structured config") from None
    return raw


def _json_list(raw: Any) -> list[Any]:
    value = _json_value(raw)
    if not isinstance(value, list):
        raise _InvalidValueError("expected a list")
    return value


def _names(raw: Any) -> tuple[str, ...]:
    return tuple(_text(item) for item in _json_list(raw))


_DISK = re.compile(r"^[1-9][0-9]*(m|mb|g|gb)$")


def _disk_size(raw: Any) -> str:
    value = _text(raw).lower()
    if not _DISK.match(value):
        raise _InvalidValueError(f"{raw!r} is not a size like 200g")
    return value


_REGISTRY_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?$")


def _upstreams(raw: Any) -> tuple[Upstream, ...]:
    value = _json_value(raw)
    if not isinstance(value, Mapping) or not value:
        raise _InvalidValueError("expected a map of registry host -> upstream https URL")
    result = []
    for host, url in value.items():
        if not _REGISTRY_HOST.match(str(host)):
            raise _InvalidValueError(f"{host!r} is not a registry host name")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise _InvalidValueError(f"upstream of {host} must be an https:// URL, got {url!r}")
        result.append(Upstream(registry=str(host), url=url.rstrip("/")))
    return tuple(sorted(result, key=lambda upstream: upstream.registry))


def _blocked(raw: Any) -> Mapping[str, str]:
    value = _json_value(raw)
    if not isinstance(value, Mapping):
        raise _InvalidValueError('expected a map of phase id -> reason, e.g. {"6": "NAS export not ready"}')
    blocked = {}
    for phase_id, reason in value.items():
        blocked[_phase(phase_id)] = _text(reason)
    return blocked


def _version(raw: Any) -> str:
    value = _text(raw)
    if value.lower() in ("latest", "stable") or not re.match(r"^v?[0-9]+(\.[0-9]+)*([-+.][0-9A-Za-z.-]+)?$", value):
        raise _InvalidValueError(f"{value!r} is not a pinned version")
    return value


_STORAGE_QUANTITY = re.compile(r"^[1-9][0-9]*(Mi|Gi|Ti)$")


def _storage_quantity(raw: Any) -> str:
    value = _text(raw)
    if not _STORAGE_QUANTITY.match(value):
        raise _InvalidValueError(f"{value!r} is not a Kubernetes size like 10Gi")
    return value


ZOT_LOG_LEVELS = ("panic", "fatal", "error", "warn", "info", "debug", "trace")


def _zot_log_level(raw: Any) -> str:
    value = _text(raw).lower()
    if value not in ZOT_LOG_LEVELS:
        raise _InvalidValueError(f"{value!r} is not a zot log level; use one of {', '.join(ZOT_LOG_LEVELS)}")
    return value


HOME = "/Users/erichblume"

SPECS: tuple[Spec, ...] = (
    Spec("phase", _phase, "target phase: `pulumi up` converges every phase up to it", required_from="0",
         example="'1'"),
    Spec("blockedPhases", _blocked, "phases that must not be targeted, with the reason", default={},
         example="'{\"6\": \"sifaka NFS export not ready\"}'"),
    # indri, reached over SSH
    Spec("indri.host", _hostname, "SSH host name of indri", default="indri"),
    Spec("indri.port", _port, "SSH port of indri", default=22, example="22"),
    Spec("indri.user", _unix_user, "macOS user the host steps run as", default="erichblume"),
    Spec("indri.uid", _count(0, 2**31 - 1), "uid of that user (launchctl gui/<uid>)", default=501, example="501"),
    Spec("indri.home", _absolute_path, "home directory of that user", default=HOME),
    Spec("indri.hostKey", _host_key, "pinned SSH host key of indri", required_from="0",
         stand_in="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9mZmxpbmUtc3RhbmQtaW4tbm90LWluZHJpcy1rZXkh",
         example="\"$(ssh-keyscan -t ed25519 indri 2>/dev/null | cut -d' ' -f2-)\""),
    Spec("indri.sshPrivateKey", _text, "SSH private key (default: the SSH agent)", secret=True,
         example="< ~/.ssh/id_ed25519"),
    # absolute tool paths on indri: a non-interactive SSH shell and launchd have no Homebrew PATH
    Spec("tools.bash", _absolute_path, "bash on indri", default="/bin/bash"),
    Spec("tools.brew", _absolute_path, "Homebrew", default="/opt/homebrew/bin/brew"),
    Spec("tools.curl", _absolute_path, "curl", default="/usr/bin/curl"),
    Spec("tools.docker", _absolute_path, "Docker Desktop CLI", default="/usr/local/bin/docker"),
    Spec("tools.file", _absolute_path, "file(1), which tells the zot binary's architecture", default="/usr/bin/file"),
    Spec("tools.kubectl", _absolute_path, "kubectl", default="/opt/homebrew/bin/kubectl"),
    Spec("tools.launchctl", _absolute_path, "launchctl", default="/bin/launchctl"),
    Spec("tools.minikube", _absolute_path, "minikube", default="/opt/homebrew/bin/minikube"),
    Spec("tools.plutil", _absolute_path, "plutil", default="/usr/bin/plutil"),
    Spec("tools.tailscale", _absolute_path, "tailscale CLI",
         default="/Applications/Tailscale.app/Contents/MacOS/Tailscale"),
    # the tailnet
    Spec("tailnet.name", _hostname, "tailnet DNS name", default="tail8d86e.ts.net"),
    Spec("tailnet.admins", _logins, "Tailscale logins of the admins (ACL tests use the first)",
         required_from="0", stand_in='["admin@example.invalid"]', example="'[\"you@example.com\"]'"),
    Spec("tailnet.members", _logins, "Tailscale logins of the members (ACL tests use the first)",
         required_from="0", stand_in='["member@example.invalid"]', example="'[\"friend@example.com\"]'"),
    Spec("tailnet.oauthClientId", _text, "OAuth client id the program uses against the Tailscale API",
         required_from="0", stand_in="offline-oauth-client-id", example="<client-id>"),
    Spec("tailnet.oauthClientSecret", _text, "OAuth client secret the program uses against the Tailscale API",
         secret=True, required_from="0", example="<client-secret>"),
    Spec("tailnet.indriDevice", _hostname, "MagicDNS name of indri", default="indri.tail8d86e.ts.net"),
    Spec("tailnet.sifakaDevice", _hostname, "MagicDNS name of sifaka", default="sifaka.tail8d86e.ts.net"),
    Spec("tailnet.legacyServiceTags", _names, "legacy service tags indri keeps until phase 9",
         default=("tag:grafana", "tag:kiwix", "tag:devpi", "tag:pg", "tag:feed", "tag:forge"),
         example="'[\"tag:forge\"]'"),
    # zot, the registry on indri
    Spec("zot.binary", _absolute_path, "zot binary built from source",
         default=f"{HOME}/code/3rd/zot/bin/zot-darwin-arm64"),
    Spec("zot.configPath", _absolute_path, "zot config.json", default=f"{HOME}/.config/zot/config.json"),
    Spec("zot.dataDir", _absolute_path, "zot storage root", default=f"{HOME}/zot"),
    Spec("zot.logDir", _absolute_path, "zot log directory", default=f"{HOME}/Library/Logs"),
    # port 5050: macOS AirPlay Receiver holds 5000
    Spec("zot.port", _port, "zot HTTP port", default=5050, example="5050"),
    Spec("zot.upstreams", _upstreams, "registries zot mirrors on demand (host -> upstream URL)",
         default={
             "docker.io": "https://registry-1.docker.io",
             "ghcr.io": "https://ghcr.io",
             "quay.io": "https://quay.io",
             "registry.k8s.io": "https://registry.k8s.io",
             "code.forgejo.org": "https://code.forgejo.org",
             "codeberg.org": "https://codeberg.org",
             "data.forgejo.org": "https://data.forgejo.org",
             "ecr-public.aws.com": "https://ecr-public.aws.com",
         },
         example="'{\"docker.io\": \"https://registry-1.docker.io\"}'"),
    Spec("zot.logLevel", _zot_log_level, "zot log level", default="info"),
    Spec("zot.dockerHubUser", _text, "Docker Hub user for zot's sync (anonymous allows 10 pulls/hour)"),
    Spec("zot.dockerHubToken", _text, "Docker Hub access token for that user", secret=True),
    # minikube on indri
    Spec("minikube.profile", _hostname, "minikube profile", default="minikube"),
    Spec("minikube.cpus", _count(1, 64), "CPUs of the node", default=6, example="6"),
    Spec("minikube.memoryMb", _count(1024, 1024 * 1024), "memory of the node in MB", default=11264,
         example="11264"),
    Spec("minikube.diskSize", _disk_size, "disk of the node", default="200g"),
    Spec("minikube.apiserverPort", _port, "API server port inside the node", default=6443, example="6443"),
    Spec("minikube.allowReplace", _boolean, "replace a profile with another driver (deletes the cluster)",
         default=False, example="true"),
    Spec("minikube.kubeconfig", _text, "kubeconfig to use instead of the one read from indri", secret=True,
         example="< ~/.kube/minikube-indri/config.yml"),
    # host metrics agents
    Spec("metrics.textfileDir", _absolute_path, "node_exporter textfile directory",
         default="/opt/homebrew/var/node_exporter/textfile"),
    Spec("metrics.logDir", _absolute_path, "log directory of the metrics agents", default="/opt/homebrew/var/log"),
    Spec("metrics.scriptDir", _absolute_path, "where the metrics scripts are installed", default=f"{HOME}/bin"),
    # phase 1: the platform in the cluster
    Spec("operator.chartVersion", _version, "tailscale-operator chart (and image) version", default="1.102.3"),
    Spec("operator.createOauthClient", _boolean,
         "create the operator's OAuth client with the program instead of using operator.oauthClient*",
         default=False, example="true"),
    Spec("operator.oauthClientId", _text, "OAuth client id of the Tailscale operator", required_from="1",
         unless="operator.createOauthClient",
         stand_in="offline-operator-client-id", example="<client-id>"),
    Spec("operator.oauthClientSecret", _text, "OAuth client secret of the Tailscale operator", secret=True,
         unless="operator.createOauthClient",
         required_from="1", example="<client-secret>"),
    Spec("argocd.chartVersion", _version, "argo-cd chart version", default="10.1.1"),
    Spec("argocd.forgeSshPrivateKey", _text, "SSH key (a Forgejo user key) ArgoCD reads the forge with",
         secret=True, required_from="1", example="< forge-argocd-key"),
    Spec("argocd.forgeHostKey", _host_key, "SSH host key of the forge on indri:2200", required_from="1",
         stand_in="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9mZmxpbmUtc3RhbmQtaW4tbm90LWZvcmdlcy1rZXkh",
         example="\"$(ssh-keyscan -p 2200 -t ed25519 indri.tail8d86e.ts.net 2>/dev/null | cut -d' ' -f2-)\""),
    Spec("cnpg.chartVersion", _version, "cloudnative-pg chart version", default="0.29.0"),
    Spec("postgres.eblumePassword", _text, "password of the eblume superuser role", secret=True,
         required_from="1", example="<password>"),
    Spec("postgres.borgmaticPassword", _text, "password of the borgmatic (read-only) role", secret=True,
         required_from="1", example="<password>"),
    Spec("postgres.instances", _count(1, 9), "PostgreSQL instances of blumeops-pg", default=1, example="1"),
    Spec("postgres.storageSize", _storage_quantity, "volume size of each blumeops-pg instance", default="10Gi",
         example="10Gi"),
    Spec("postgres.storageClass", _hostname, "StorageClass of the blumeops-pg volumes", default="standard",
         example="standard"),
)

SPEC_BY_KEY: Mapping[str, Spec] = {spec.key: spec for spec in SPECS}


# --------------------------------------------------------------------------------------------------
# The typed settings
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upstream:
    """A registry zot mirrors: images of ``registry`` are served under ``/<registry>`` on zot."""

    registry: str
    url: str


@dataclass(frozen=True, slots=True)
class ToolPaths:
    bash: str
    brew: str
    curl: str
    docker: str
    file: str
    kubectl: str
    launchctl: str
    minikube: str
    plutil: str
    tailscale: str


@dataclass(frozen=True, slots=True)
class IndriSettings:
    host: str
    port: int
    user: str
    uid: int
    home: str
    host_key: str
    private_key: pulumi.Output[str] | None
    tools: ToolPaths


@dataclass(frozen=True, slots=True)
class TailnetSettings:
    name: str
    admins: tuple[str, ...]
    members: tuple[str, ...]
    oauth_client_id: str
    oauth_client_secret: pulumi.Output[str]
    indri_device: str
    sifaka_device: str
    legacy_service_tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ZotSettings:
    binary: str
    config_path: str
    data_dir: str
    log_dir: str
    port: int
    upstreams: tuple[Upstream, ...]
    log_level: str
    docker_hub_user: str | None
    docker_hub_token: pulumi.Output[str] | None


@dataclass(frozen=True, slots=True)
class MinikubeSettings:
    profile: str
    cpus: int
    memory_mb: int
    disk_size: str
    apiserver_port: int
    allow_replace: bool
    kubeconfig: pulumi.Output[str] | None


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    textfile_dir: str
    log_dir: str
    script_dir: str


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    chart_version: str
    create_oauth_client: bool
    oauth_client_id: str | None
    oauth_client_secret: pulumi.Output[str] | None


@dataclass(frozen=True, slots=True)
class ArgoCDSettings:
    chart_version: str
    forge_ssh_private_key: pulumi.Output[str] | None
    forge_host_key: str | None


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    cnpg_chart_version: str
    eblume_password: pulumi.Output[str] | None
    borgmatic_password: pulumi.Output[str] | None
    instances: int
    storage_size: str
    storage_class: str


@dataclass(frozen=True, slots=True)
class Settings:
    project: str
    stack: str
    phase: str
    blocked_phases: Mapping[str, str]
    indri: IndriSettings
    tailnet: TailnetSettings
    zot: ZotSettings
    minikube: MinikubeSettings
    metrics: MetricsSettings
    operator: OperatorSettings
    argocd: ArgoCDSettings
    postgres: PostgresSettings
    # every phase id up to and including the target
    phases: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _raw_config() -> dict[str, Any]:
    """Every ``blumeops:`` key the engine handed over (explicit config first, then the environment)."""
    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix):]: value for key, value in merged.items() if key.startswith(prefix)}


def required_keys(target: str) -> tuple[Spec, ...]:
    """The settings without default that a stack targeting ``target`` must set."""
    index = phase_index(target)
    return tuple(
        spec for spec in SPECS if spec.required_from is not None and phase_index(spec.required_from) <= index
    )


def load(project: str | None = None, stack: str | None = None) -> Settings:
    """Read and validate the whole stack config; raise ``SettingsError`` with every problem found."""
    raw = _raw_config()
    problems: list[str] = []
    values: dict[str, Any] = {}

    for unknown in sorted(set(raw) - set(SPEC_BY_KEY)):
        close = [key for key in SPEC_BY_KEY if key.lower() == unknown.lower()]
        hint = f"did you mean {NAMESPACE}:{close[0]}? " if close else ""
        problems.append(
            f"{NAMESPACE}:{unknown} is not a blumeops setting: {hint}remove it with "
            f"`pulumi config rm {NAMESPACE}:{unknown}` (the settings are listed in phases/settings.py)"
        )

    target_spec = SPEC_BY_KEY["phase"]
    target: str | None = None
    if "phase" in raw:
        try:
            target = _phase(raw["phase"])
        except _InvalidValueError as err:
            problems.append(f"{target_spec.full_key} {err}: fix it with {target_spec.fix()}")
    required = {spec.key for spec in required_keys(target)} if target is not None else set()

    for spec in SPECS:
        if spec.key == "phase":
            if "phase" not in raw:
                problems.append(f"{spec.full_key} is missing ({spec.help}): set it with {spec.fix()}")
            continue
        if spec.key not in raw:
            if spec.key in required and not lifted(spec, raw):
                problems.append(f"{spec.full_key} is missing ({spec.help}): set it with {spec.fix()}")
            values[spec.key] = _parse_default(spec)
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
        except _InvalidValueError as err:
            problems.append(f"{spec.full_key} {err}: fix it with {spec.fix()}")
            continue
        values[spec.key] = pulumi.Output.secret(parsed) if spec.secret else parsed

    if target is not None:
        blocked = values.get("blockedPhases") or {}
        for phase_id in PHASE_IDS[: phase_index(target) + 1]:
            if phase_id in blocked:
                problems.append(
                    f"{target_spec.full_key} is {target!r}, but phase {phase_id} is blocked "
                    f"({blocked[phase_id]}): lower the target below {phase_id} with "
                    f"`pulumi config set {target_spec.full_key} <id>`, or clear the block with "
                    f"`pulumi config rm {NAMESPACE}:blockedPhases` once it is resolved"
                )
    if values.get("zot.dockerHubUser") is not None and values.get("zot.dockerHubToken") is None:
        problems.append(
            f"{NAMESPACE}:zot.dockerHubUser is set without {NAMESPACE}:zot.dockerHubToken: set it with "
            f"{SPEC_BY_KEY['zot.dockerHubToken'].fix()} or remove the user"
        )
    if values.get("zot.dockerHubToken") is not None and values.get("zot.dockerHubUser") is None:
        problems.append(
            f"{NAMESPACE}:zot.dockerHubToken is set without {NAMESPACE}:zot.dockerHubUser: set it with "
            f"{SPEC_BY_KEY['zot.dockerHubUser'].fix()}"
        )

    if problems:
        raise SettingsError(problems)
    assert target is not None
    return _assemble(values, target, project or pulumi.get_project(), stack or pulumi.get_stack())


def lifted(spec: Spec, raw: Mapping[str, Any]) -> bool:
    """Whether the boolean named by ``spec.unless`` is set to true (which lifts the requirement)."""
    if spec.unless is None or spec.unless not in raw:
        return False
    try:
        return _boolean(raw[spec.unless])
    except _InvalidValueError:
        return False  # reported on its own key


def _parse_default(spec: Spec) -> Any:
    if spec.default is None:
        return None
    if isinstance(spec.default, (tuple, list, dict)):
        return spec.parse(json.dumps(spec.default))
    return spec.parse(spec.default)


def _assemble(v: Mapping[str, Any], target: str, project: str, stack: str) -> Settings:
    return Settings(
        project=project,
        stack=stack,
        phase=target,
        blocked_phases=dict(v["blockedPhases"]),
        indri=IndriSettings(
            host=v["indri.host"],
            port=v["indri.port"],
            user=v["indri.user"],
            uid=v["indri.uid"],
            home=v["indri.home"],
            host_key=v["indri.hostKey"],
            private_key=v["indri.sshPrivateKey"],
            tools=ToolPaths(
                bash=v["tools.bash"],
                brew=v["tools.brew"],
                curl=v["tools.curl"],
                docker=v["tools.docker"],
                file=v["tools.file"],
                kubectl=v["tools.kubectl"],
                launchctl=v["tools.launchctl"],
                minikube=v["tools.minikube"],
                plutil=v["tools.plutil"],
                tailscale=v["tools.tailscale"],
            ),
        ),
        tailnet=TailnetSettings(
            name=v["tailnet.name"],
            admins=v["tailnet.admins"],
            members=v["tailnet.members"],
            oauth_client_id=v["tailnet.oauthClientId"],
            oauth_client_secret=v["tailnet.oauthClientSecret"],
            indri_device=v["tailnet.indriDevice"],
            sifaka_device=v["tailnet.sifakaDevice"],
            legacy_service_tags=v["tailnet.legacyServiceTags"],
        ),
        zot=ZotSettings(
            binary=v["zot.binary"],
            config_path=v["zot.configPath"],
            data_dir=v["zot.dataDir"],
            log_dir=v["zot.logDir"],
            port=v["zot.port"],
            upstreams=v["zot.upstreams"],
            log_level=v["zot.logLevel"],
            docker_hub_user=v["zot.dockerHubUser"],
            docker_hub_token=v["zot.dockerHubToken"],
        ),
        minikube=MinikubeSettings(
            profile=v["minikube.profile"],
            cpus=v["minikube.cpus"],
            memory_mb=v["minikube.memoryMb"],
            disk_size=v["minikube.diskSize"],
            apiserver_port=v["minikube.apiserverPort"],
            allow_replace=v["minikube.allowReplace"],
            kubeconfig=v["minikube.kubeconfig"],
        ),
        metrics=MetricsSettings(
            textfile_dir=v["metrics.textfileDir"],
            log_dir=v["metrics.logDir"],
            script_dir=v["metrics.scriptDir"],
        ),
        operator=OperatorSettings(
            chart_version=v["operator.chartVersion"],
            create_oauth_client=v["operator.createOauthClient"],
            oauth_client_id=v["operator.oauthClientId"],
            oauth_client_secret=v["operator.oauthClientSecret"],
        ),
        argocd=ArgoCDSettings(
            chart_version=v["argocd.chartVersion"],
            forge_ssh_private_key=v["argocd.forgeSshPrivateKey"],
            forge_host_key=v["argocd.forgeHostKey"],
        ),
        postgres=PostgresSettings(
            cnpg_chart_version=v["cnpg.chartVersion"],
            eblume_password=v["postgres.eblumePassword"],
            borgmatic_password=v["postgres.borgmaticPassword"],
            instances=v["postgres.instances"],
            storage_size=v["postgres.storageSize"],
            storage_class=v["postgres.storageClass"],
        ),
        phases=PHASE_IDS[: phase_index(target) + 1],
    )
