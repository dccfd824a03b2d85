"""The phase engine: the ordered registry of the migration and ``deploy``, which walks it up to the target.

Each phase is a ``blumeops:phase:Phase`` ComponentResource (``p0-foundation``, ``p5-1-docker-driver``, ...)
that parents everything the phase adds, so a preview reads as the migration plan. A phase module
(``phases/p<id>_<name>.py``) defines:

- ``build(phase, handover)``: composes components; nothing else;
- ``SETTINGS``: its settings sections (``phases.settings.section``), loaded and validated with the rest;
- optionally ``AMENDS``: what it changes in an earlier phase (``Amendment``), stated in its own module.

What one phase gives the next travels in a ``Handover`` under typed ``Key``s, declared by the phase that
gives them (``p0_foundation.KUBERNETES``). The chain is linear: a target deploys every phase before it, so
the only prerequisite check is that what a phase takes was given.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import pulumi

from phases import adoption
from phases import settings as stack_settings
from phases.settings import PHASE_IDS, Settings

T = TypeVar("T")


class PhaseError(Exception):
    """A target the engine refuses (unimplemented, blocked), a broken registry, or a missing hand-over."""


# --------------------------------------------------------------------------------------------------
# The hand-over between phases
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key(Generic[T]):
    """A typed name for something one phase gives the next: ``KUBERNETES = Key("kubernetes", k8s.Provider)``.

    ``kind`` is checked when the value is given, so a wrong hand-over fails where it is made, not where it is
    used."""

    name: str
    kind: type[T]
    help: str = ""


@dataclass(frozen=True, slots=True)
class Amendable(Generic[T]):
    """A value an earlier phase uses and a later phase may change: declared (with its value before any
    amendment) by the earlier phase, amended by the later one in its own module (``AMENDS``)."""

    name: str
    default: T
    help: str = ""

    def to(self, value: T | Callable[[Settings], T]) -> Amendment:
        return Amendment(cast("Amendable[Any]", self), value)

    def extend(self, value: T | Callable[[Settings], T]) -> Amendment:
        """An amendment that adds to the value so far (a tuple point several phases add to: phase 3's
        ``RETIRED_SOURCES`` gets devpi's directory from phase 5 and the forge's from phase 7)."""
        return Amendment(cast("Amendable[Any]", self), value, extends=True)


@dataclass(frozen=True, slots=True)
class Amendment:
    """A later phase's change to an ``Amendable`` of an earlier one: a value, or a function of the settings."""

    point: Amendable[Any]
    value: Any
    extends: bool = False  # adds to the value of the phases before (Amendable.extend) instead of replacing it

    def resolve(self, settings: Settings) -> Any:
        return self.value(settings) if callable(self.value) else self.value


@dataclass(frozen=True, slots=True)
class Later:
    """What an earlier phase's resource waits for, given by later phases: ``BORGMATIC_WAITS`` (phase 3's
    borgmatic config changes only after phase 4 retired the brew PostgreSQL). The earlier phase depends on
    ``handover.later(point)``, an Output the engine resolves once every phase of the deployment has been
    built; later phases add to it with ``handover.wait_also(point, resources)``. A cycle cannot form as long
    as what a later phase adds does not itself wait for the earlier resource (say so where it is used)."""

    name: str
    help: str = ""


@dataclass(slots=True)
class Handover:
    """What the phases of one deployment give each other, the amendments in force, and the endpoints."""

    settings: Settings
    amendments: Mapping[Amendable[Any], tuple[str, Any]] = field(default_factory=dict)  # point -> (phase, value)
    endpoints: dict[str, str] = field(default_factory=dict)
    # The step that stopped each brew formula a cutover retired, by formula: phase 9 uninstalls a formula only
    # after it (and its delete reinstalls the formula before that step's delete restarts the service).
    retired: dict[str, pulumi.Resource] = field(default_factory=dict)
    included: list[str] = field(default_factory=list)
    _given: dict[str, tuple[Key[Any], Any]] = field(default_factory=dict)
    _waits: dict[str, list[pulumi.Resource]] = field(default_factory=dict)
    _futures: dict[str, asyncio.Future[list[pulumi.Resource]]] = field(default_factory=dict)

    def give(self, key: Key[T], value: T) -> None:
        if key.name in self._given:
            raise PhaseError(f"{key.name!r} is given twice")
        if not isinstance(value, key.kind):
            raise PhaseError(f"{key.name!r} must be a {key.kind.__name__}, got {type(value).__name__}")
        self._given[key.name] = (key, value)

    def take(self, key: Key[T]) -> T:
        if key.name not in self._given:
            raise PhaseError(f"nothing gave {key.name!r}: an earlier phase must give it ({key.help or key.kind})")
        return cast(T, self._given[key.name][1])

    def given(self) -> tuple[str, ...]:
        return tuple(sorted(self._given))

    def amended(self, point: Amendable[T]) -> T:
        """The value of ``point`` for this deployment: the last amendment of a phase in the chain, or its
        default."""
        if point in self.amendments:
            return cast(T, self.amendments[point][1])
        return point.default

    def section(self, cls: type[T]) -> T:
        return self.settings.section(cls)

    def later(self, point: Later) -> pulumi.Output[list[pulumi.Resource]]:
        """The resources later phases of this deployment add to ``point`` (empty when none does)."""
        if point.name not in self._futures:
            self._futures[point.name] = asyncio.get_event_loop().create_future()
        return pulumi.Output.from_input(self._futures[point.name])

    def wait_also(self, point: Later, resources: Sequence[pulumi.Resource]) -> None:
        if point.name in self._futures and self._futures[point.name].done():
            raise PhaseError(f"{point.name!r} was settled already: add to it while the phases are built")
        self._waits.setdefault(point.name, []).extend(resources)

    def settle(self) -> None:
        """Resolve every ``later`` point: called once every phase has been built."""
        for name, future in self._futures.items():
            if not future.done():
                future.set_result(list(self._waits.get(name, [])))


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------

PhaseBuilder = Callable[["Phase", Handover], None]


@dataclass(frozen=True, slots=True)
class PhaseDefinition:
    """What a phase module contributes: its builder, settings sections and amendments."""

    build: PhaseBuilder
    settings: tuple[type, ...] = ()
    amends: tuple[Amendment, ...] = ()


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """One row of the phase table in ``../shared/docs/phases.md``.

    ``definition`` is read from the module ``phases.p<id>_<name>`` when not given (a test registers a
    throw-away phase by giving it)."""

    id: str
    name: str  # short name in the homelab's words: the phase's resource name is p<id>-<name>
    title: str
    adds: str
    implemented: bool
    definition: PhaseDefinition | None = None

    @property
    def slug(self) -> str:
        return f"p{self.id.replace('.', '-')}-{self.name}"

    @property
    def module(self) -> str:
        return f"phases.{self.slug.replace('-', '_')}"

    def load(self) -> PhaseDefinition:
        if self.definition is not None:
            return self.definition
        module = importlib.import_module(self.module)
        return PhaseDefinition(
            build=module.build,
            settings=tuple(getattr(module, "SETTINGS", ())),
            amends=tuple(getattr(module, "AMENDS", ())),
        )


REGISTRY: tuple[PhaseSpec, ...] = (
    PhaseSpec("0", "foundation", "Foundation",
              "tailnet ACL, tags and Tailscale Services; zot; minikube (docker driver); svc:registry, svc:k8s; "
              "metrics agents; k8s provider", True),
    PhaseSpec("1", "kubernetes", "Kubernetes infrastructure",
              "Tailscale operator, ArgoCD, CloudNativePG operator, PostgreSQL cluster blumeops-pg", True),
    PhaseSpec("2", "grafana", "Grafana", "Grafana in monitoring; retire the brew Grafana and svc:grafana", True),
    PhaseSpec("3", "postgres-data", "PostgreSQL data and backups",
              "legacy databases imported into blumeops-pg; borgmatic role and config on indri", True),
    PhaseSpec("4", "miniflux", "Miniflux",
              "Miniflux at feed; pg moves to the cluster; retire brew miniflux and postgresql@18", True),
    PhaseSpec("5", "devpi", "devpi", "devpi image pushed to zot; StatefulSet at pypi; retire the devpi LaunchAgent",
              True),
    PhaseSpec("5.1", "docker-driver", "Docker driver and external storage",
              "NFS mount proof; the shared NFS PersistentVolume; legacy-driver clusters refused or migrated", True),
    PhaseSpec("6", "kiwix-transmission", "Kiwix and Transmission",
              "downloads moved to the NFS share; Transmission at torrent, Kiwix at kiwix; retire brew "
              "transmission-cli, the kiwix-serve agent and svc:kiwix", True),
    PhaseSpec("7", "forgejo", "Forgejo", "Forgejo at forge and git with its data and identity; ArgoCD follows",
              True),
    PhaseSpec("8", "woodpecker", "Woodpecker CI", "Woodpecker server and agent at ci, authenticated against Forgejo",
              True),
    PhaseSpec("9", "cleanup", "Cleanup", "uninstall retired software, drop legacy tags and serve entries", True),
)


def check_registry(registry: Sequence[PhaseSpec]) -> None:
    """The registry lists every phase id once, in migration order."""
    ids = [spec.id for spec in registry]
    if tuple(ids) != PHASE_IDS:
        raise PhaseError(f"the phase registry lists {ids}, expected {list(PHASE_IDS)} in that order")


check_registry(REGISTRY)


def lookup(phase_id: str, registry: Sequence[PhaseSpec] = REGISTRY) -> PhaseSpec:
    for spec in registry:
        if spec.id == phase_id:
            return spec
    raise PhaseError(f"{phase_id!r} is not a phase id; use one of {', '.join(s.id for s in registry)}")


def chain(target: str, registry: Sequence[PhaseSpec] = REGISTRY) -> tuple[PhaseSpec, ...]:
    """Every phase up to and including ``target``, in order: the chain is linear."""
    wanted = lookup(target, registry)
    return tuple(registry[: list(registry).index(wanted) + 1])


def check_target(target: str, blocked: Mapping[str, str] | None = None,
                 registry: Sequence[PhaseSpec] = REGISTRY) -> tuple[PhaseSpec, ...]:
    """The chain for ``target``, or a ``PhaseError`` naming the first phase that cannot be deployed."""
    selected = chain(target, registry)
    for spec in selected:
        if blocked and spec.id in blocked:
            raise PhaseError(f"phase {spec.id} ({spec.title}) is blocked: {blocked[spec.id]}")
    missing = [spec for spec in selected if not spec.implemented]
    if missing:
        wanted = selected[-1]
        on_the_way = [spec.id for spec in missing if spec is not wanted]
        also = f" (nor are phases {', '.join(on_the_way)} on the way to it)" if on_the_way else ""
        if wanted.implemented:
            first = missing[0]
            head = f"phase {wanted.id} ({wanted.title}) needs phase {first.id} ({first.title}), which"
            also = f" (nor are phases {', '.join(s.id for s in missing[1:])})" if len(missing) > 1 else ""
        else:
            head = f"phase {wanted.id} ({wanted.title})"
        last = last_implemented(registry)
        module = missing[0].module.replace(".", "/")
        raise PhaseError(
            f"{head} is not implemented yet{also}: lower blumeops:phase to {last} with "
            f"`pulumi config set blumeops:phase {last}`. (To build phase {missing[0].id}: write {module}.py and "
            "set implemented=True in phases/__init__.py's REGISTRY; README, \"Add a phase\")"
        )
    return selected


def last_implemented(registry: Sequence[PhaseSpec] = REGISTRY) -> str:
    implemented = [spec.id for spec in registry if spec.implemented]
    return implemented[-1] if implemented else "0"


def declared_settings(registry: Sequence[PhaseSpec] = REGISTRY) -> dict[str, tuple[type, ...]]:
    """The settings sections each implemented phase declares, by phase id (what ``settings.load`` takes)."""
    return {spec.id: spec.load().settings for spec in registry if spec.implemented}


def setting_specs(registry: Sequence[PhaseSpec] = REGISTRY) -> dict[str, stack_settings.Spec]:
    """Every declared setting by key (``indri.hostKey`` -> its Spec)."""
    return {spec.key: spec for spec in stack_settings.all_specs(declared_settings(registry))}


def keys_given_before(phase_id: str, registry: Sequence[PhaseSpec] = REGISTRY) -> tuple[Key[Any], ...]:
    """The hand-over keys the phase modules before ``phase_id`` declare (module-level ``Key`` values)."""
    found: list[Key[Any]] = []
    for spec in chain(phase_id, registry)[:-1]:
        if spec.definition is None and spec.implemented:
            module = importlib.import_module(spec.module)
            found += [value for value in vars(module).values() if isinstance(value, Key)]
    return tuple(found)


def phase_ids(registry: Sequence[PhaseSpec] = REGISTRY) -> tuple[str, ...]:
    return tuple(spec.id for spec in registry)


def load_settings(registry: Sequence[PhaseSpec] = REGISTRY) -> Settings:
    """The stack's settings, validated against every section the registry's phases declare (and its ids: a
    test may register a phase after 9)."""
    return stack_settings.load(declared_settings(registry), ids=phase_ids(registry))


class Phase(pulumi.ComponentResource):
    """One migration phase; parents every resource the phase adds. Removing it (lowering the target)
    removes them, except protected state, which Pulumi refuses to delete."""

    def __init__(self, spec: PhaseSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("blumeops:phase:Phase", spec.slug, {"phaseId": spec.id, "title": spec.title}, opts)
        self.spec = spec


def amendments(selected: Sequence[PhaseSpec], definitions: Sequence[PhaseDefinition],
               settings: Settings) -> dict[Amendable[Any], tuple[str, Any]]:
    """Every amendment of the chain, resolved; a later phase's amendment of the same point wins, or adds to the
    value so far when it extends it."""
    found: dict[Amendable[Any], tuple[str, Any]] = {}
    for spec, definition in zip(selected, definitions, strict=True):
        for amendment in definition.amends:
            value = amendment.resolve(settings)
            if amendment.extends:
                value = (*found.get(amendment.point, ("", amendment.point.default))[1], *value)
            found[amendment.point] = (spec.id, value)
    return found


def deploy(settings: Settings, registry: Sequence[PhaseSpec] = REGISTRY,
           handover: Handover | None = None, only: str | None = None) -> Handover:
    """Register every phase up to ``settings.phase`` (or just phase ``only``, on a prepared ``handover``, as the
    tests do); refuse the target before registering anything."""
    selected = check_target(settings.phase, settings.blocked_phases, registry)
    definitions = [spec.load() for spec in selected]
    handover = handover or Handover(settings)
    handover.amendments = amendments(selected, definitions, settings)
    importing = adoption.start(settings.adoption) if settings.adoption and only is None else None
    for spec, definition in zip(selected, definitions, strict=True):
        if only is not None and spec.id != only:
            continue
        phase = Phase(spec)
        definition.build(phase, handover)
        phase.register_outputs({})
        handover.included.append(spec.id)
    handover.settle()
    if importing and importing.unmatched():
        raise PhaseError(
            f"blumeops:adopt ({importing.adoption.path}) lists what the program does not register at target "
            f"{settings.phase}: {', '.join(importing.unmatched())}; make the document again with `python -m ops "
            f"adopt --at <the homelab's phase> --cluster <snapshot> --out {importing.adoption.path}`")
    return handover


def phase_status(registry: Sequence[PhaseSpec], target: str) -> list[dict[str, str]]:
    """Each phase's status at ``target``: ``included`` (in the target's chain), ``pending`` or ``not implemented``.
    A program (or an offline plan) cannot know what is deployed, only what the target includes."""
    ids = phase_ids(registry)
    index = ids.index(target) if target in ids else -1
    return [
        {"id": spec.id, "title": spec.title,
         "status": "included" if ids.index(spec.id) <= index and spec.implemented else
         ("pending" if spec.implemented else "not implemented")}
        for spec in registry
    ]


def summary(handover: Handover, registry: Sequence[PhaseSpec] = REGISTRY) -> dict[str, Any]:
    """The stack's exports: the target, each phase's status, the endpoints the included phases serve."""
    return {
        "targetPhase": handover.settings.phase,
        "phases": phase_status(registry, handover.settings.phase),
        "endpoints": dict(sorted(handover.endpoints.items())),
    }
