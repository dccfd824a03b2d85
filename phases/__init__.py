"""The phase engine: the ordered registry of the migration and ``deploy``, which walks it up to the target.

Each phase is a ``blumeops:phase:Phase`` ComponentResource (``p0-foundation``, ``p5-1-docker-driver``, ...)
that parents everything the phase adds, so a preview reads as the migration plan. Phase modules only
compose components; what one phase hands to the next travels in one ``Deployment`` object.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from phases.settings import PHASE_IDS, Settings


class PhaseError(Exception):
    """A target the engine refuses: unimplemented, blocked, or a registry whose order is broken."""


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """One row of the phase table in ``../shared/docs/phases.md``."""

    id: str
    name: str  # short name in the homelab's words: the phase's resource name is p<id>-<name>
    title: str
    requires: str | None
    adds: str
    implemented: bool

    @property
    def slug(self) -> str:
        return f"p{self.id.replace('.', '-')}-{self.name}"

    @property
    def module(self) -> str:
        return f"phases.{self.slug.replace('-', '_')}"


REGISTRY: tuple[PhaseSpec, ...] = (
    PhaseSpec("0", "foundation", "Foundation", None,
              "tailnet ACL, tags and Tailscale Services; zot; minikube (docker driver); svc:registry, svc:k8s; "
              "metrics agents; k8s provider", True),
    PhaseSpec("1", "kubernetes", "Kubernetes infrastructure", "0",
              "Tailscale operator, ArgoCD, CloudNativePG operator, PostgreSQL cluster blumeops-pg", True),
    PhaseSpec("2", "grafana", "Grafana", "1", "Grafana in monitoring; retire the brew Grafana and svc:grafana",
              False),
    PhaseSpec("3", "postgres-data", "PostgreSQL data and backups", "1",
              "legacy databases imported into blumeops-pg; borgmatic role and config on indri", False),
    PhaseSpec("4", "miniflux", "Miniflux", "3",
              "Miniflux at feed; pg moves to the cluster; retire brew miniflux and postgresql@18", False),
    PhaseSpec("5", "devpi", "devpi", "1",
              "devpi image pushed to zot; StatefulSet at pypi; retire the devpi LaunchAgent", False),
    PhaseSpec("5.1", "docker-driver", "Docker driver and external storage", "5",
              "NFS mount proof; the shared NFS PersistentVolume; legacy-driver clusters refused or migrated", False),
    PhaseSpec("6", "kiwix-transmission", "Kiwix and Transmission", "5.1",
              "Transmission at torrent, Kiwix at kiwix on the NFS share", False),
    PhaseSpec("7", "forgejo", "Forgejo", "6", "Forgejo at forge and git; data migration; ArgoCD's repo moves to git",
              False),
    PhaseSpec("8", "woodpecker", "Woodpecker CI", "7",
              "Woodpecker server and agent at ci, authenticated against Forgejo", False),
    PhaseSpec("9", "cleanup", "Cleanup", "8", "uninstall retired software, drop legacy tags and serve entries", False),
)


def check_registry(registry: Sequence[PhaseSpec]) -> None:
    """The registry lists every phase id once, in migration order, each prerequisite before its dependant."""
    ids = [spec.id for spec in registry]
    if tuple(ids) != PHASE_IDS:
        raise PhaseError(f"the phase registry lists {ids}, expected {list(PHASE_IDS)} in that order")
    seen: set[str] = set()
    for spec in registry:
        if spec.requires is not None and spec.requires not in seen:
            raise PhaseError(
                f"phase {spec.id} ({spec.title}) requires phase {spec.requires}, which does not come before it"
            )
        seen.add(spec.id)


check_registry(REGISTRY)


def lookup(phase_id: str, registry: Sequence[PhaseSpec] = REGISTRY) -> PhaseSpec:
    for spec in registry:
        if spec.id == phase_id:
            return spec
    raise PhaseError(f"{phase_id!r} is not a phase id; use one of {', '.join(s.id for s in registry)}")


def chain(target: str, registry: Sequence[PhaseSpec] = REGISTRY) -> tuple[PhaseSpec, ...]:
    """Every phase up to and including ``target``, in order (its prerequisites are all among them)."""
    wanted = lookup(target, registry)
    selected = registry[: list(registry).index(wanted) + 1]
    return tuple(selected)


def check_target(target: str, blocked: dict[str, str] | None = None,
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
        last = _last_implemented(registry)
        raise PhaseError(
            f"{head} is not implemented yet{also}: lower blumeops:phase to {last} with "
            f"`pulumi config set blumeops:phase {last}`"
        )
    return selected


def _last_implemented(registry: Sequence[PhaseSpec]) -> str:
    implemented = [spec.id for spec in registry if spec.implemented]
    return implemented[-1] if implemented else "0"


@dataclass(slots=True)
class Deployment:
    """What one phase hands to the next: settings, providers and named outputs. No module globals.

    Providers and outputs are looked up by name; asking for one an earlier phase did not provide is an
    error that names it, so a phase that builds on another cannot silently run without it.
    """

    settings: Settings
    providers: dict[str, pulumi.ProviderResource] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    deployed: list[str] = field(default_factory=list)

    def provide(self, name: str, value: Any) -> None:
        if name in self.outputs or name in self.providers:
            raise PhaseError(f"{name!r} is provided twice")
        if isinstance(value, pulumi.ProviderResource):
            self.providers[name] = value
        else:
            self.outputs[name] = value

    def provider(self, name: str) -> pulumi.ProviderResource:
        if name not in self.providers:
            raise PhaseError(f"no provider {name!r}: an earlier phase must provide it")
        return self.providers[name]

    def output(self, name: str) -> Any:
        if name not in self.outputs:
            raise PhaseError(f"no output {name!r}: an earlier phase must provide it")
        return self.outputs[name]


class Phase(pulumi.ComponentResource):
    """One migration phase; parents every resource the phase adds. Removing it (lowering the target)
    removes them, except protected state, which Pulumi refuses to delete."""

    def __init__(self, spec: PhaseSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            "blumeops:phase:Phase", spec.slug, {"phaseId": spec.id, "title": spec.title}, opts
        )
        self.spec = spec


PhaseBuilder = Callable[[Phase, Deployment], None]


def _builder(spec: PhaseSpec) -> PhaseBuilder:
    module = importlib.import_module(spec.module)
    build: PhaseBuilder = module.build
    return build


def deploy(settings: Settings, registry: Sequence[PhaseSpec] = REGISTRY) -> Deployment:
    """Register every phase up to ``settings.phase``; refuse the target before registering anything."""
    selected = check_target(settings.phase, dict(settings.blocked_phases), registry)
    builders = [(spec, _builder(spec)) for spec in selected]
    deployment = Deployment(settings)
    for spec, build in builders:
        phase = Phase(spec)
        build(phase, deployment)
        phase.register_outputs({})
        deployment.deployed.append(spec.id)
    return deployment


def summary(deployment: Deployment, registry: Sequence[PhaseSpec] = REGISTRY) -> dict[str, Any]:
    """The stack's exports: the target, each phase's status, the endpoints the deployed phases serve."""
    target = deployment.settings.phase
    return {
        "targetPhase": target,
        "phases": [
            {
                "id": spec.id,
                "title": spec.title,
                "status": "deployed" if spec.id in deployment.deployed else
                ("pending" if spec.implemented else "not implemented"),
            }
            for spec in registry
        ],
        "endpoints": dict(sorted(deployment.endpoints.items())),
    }
