"""The building block every in-cluster app uses to take over a tailnet name the host held: the cutover.

A name such as ``grafana`` belongs to the host until its claim is released: the host's legacy service is
stopped and its ``tailscale serve`` entry cleared (``LegacyServiceRetirement``), then the Tailscale Service
that owns ``<name>.<tailnet>`` is deleted (``TailnetNameRelease``). Only then may the in-cluster proxy register,
or it comes up as ``<name>-1``. ``LegacyCutover`` encodes the whole order as dependencies, so that the name is
never without a service:

- without data to carry (Grafana: its dashboards are code): the new workload deployed and ready (``ready``)
  -> the legacy service stopped -> the name released -> the Ingress;
- with data to carry (Miniflux, devpi, Forgejo): the new workload staged but not serving (``ready``: e.g. at
  zero replicas, images pulled, config and Secrets in place) -> the legacy service stopped -> the final sync,
  verified, and the workload scaled up and ready (``carry``, registered after the stop) -> the name released
  -> the Ingress or LoadBalancer.

A failure at any point stops the update with the name still held by the host or free only once the new
workload serves; the legacy service stays restartable by the rollback (its retirement's delete).

Lowering the target reverses it: Pulumi deletes in reverse dependency order, so the Ingress goes first (its
proxy gives the name up), then the release's delete recreates the Tailscale Service, then what ``carry``
registered, then the retirement's delete serves the name from the host again and restarts the legacy
service, and only then the new workload goes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import health
from components.cluster.objects import ProxyClassRef, tailscale_ingress, tailscale_load_balancer
from components.host.retire import LegacyServiceRetirement, LegacyServiceRetirementArgs
from components.tailnet.release import TailnetNameRelease, TailnetNameReleaseArgs

CUTOVER_TYPE = "blumeops:app:LegacyCutover"
APP_INGRESS_TYPE = "blumeops:app:AppIngress"
APP_LOAD_BALANCER_TYPE = "blumeops:app:AppLoadBalancer"
_SHORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class LegacyClaim:
    """What holds a tailnet name before the cutover: the host's service and its serve entry (``retirement``)
    and the Tailscale Service that owns the name (``release``). Either may be absent, not both."""

    retirement: LegacyServiceRetirementArgs | None = None
    release: TailnetNameReleaseArgs | None = None

    def __post_init__(self) -> None:
        if self.retirement is None and self.release is None:
            raise ValueError("a legacy claim needs a retirement, a release or both (or no claim at all)")
        if self.retirement is not None and self.release is not None \
                and self.retirement.serve_service not in (None, self.release.service):
            raise ValueError(f"the retirement clears the serve entry of {self.retirement.serve_service} but the "
                             f"release deletes {self.release.service}: they must be the same Tailscale Service")

    @property
    def released_name(self) -> str | None:
        return self.release.name if self.release is not None else None


# The "with data" middle of a cutover: called with the step that stopped the legacy service (what the final
# sync must wait for), registers the sync and whatever makes the new workload serve, and returns what the
# name's release must wait for (the workload scaled up and ready).
CarryData = Callable[[Sequence[pulumi.Resource]], Sequence[pulumi.Resource]]


def start_order(staged: Sequence[pulumi.Resource], start: CarryData,
                data_move: CarryData | None) -> tuple[Sequence[pulumi.Resource], CarryData | None]:
    """The ``ready`` and ``carry`` of a cutover for a workload that ``start(after)`` registers: without a data
    move it starts now and the legacy service stops after it; with one, the legacy service stops after the
    ``staged`` objects, and the workload starts after the move (the "with data" order)."""
    if data_move is None:
        return start([]), None
    move = data_move
    return staged, lambda stopped: start(list(move(stopped)))


class LegacyCutover(pulumi.ComponentResource):
    """Hands a tailnet name the host held to a new workload, in the order the module docstring gives:
    ``<name>-retirement`` (the legacy service stopped, its serve entry cleared) after ``ready``; then, with data
    to carry, ``carry``; then ``<name>-release`` (the Tailscale Service deleted). ``done`` lists what whatever
    claims the name next must depend on.

    Undo: deleting it recreates the Tailscale Service first, then undoes what ``carry`` registered, then serves
    the name from the host and restarts the legacy service (each step depends on the one before, so Pulumi
    deletes them in reverse).
    """

    def __init__(self, name: str, claim: LegacyClaim, ready: Sequence[pulumi.Resource] = (),
                 carry: CarryData | None = None, health_path: str | None = None,
                 opts: pulumi.ResourceOptions | None = None,
                 restored_checks: Sequence[health.HealthCheck] = ()) -> None:
        # After a rollback the legacy service answers at the name again (``health_path``: where it says so;
        # ``restored_checks``: any other proof, e.g. PostgreSQL answering at pg).
        released = claim.release
        restored: list[health.HealthCheck] = []
        if released is not None and health_path:
            restored.append(health.ingress(f"{released.name} {health_path} (legacy)", released.name, health_path,
                                           f"the legacy service behind {released.service} on the host: its "
                                           "launchd job and `tailscale serve status`"))
        restored.extend(restored_checks)
        super().__init__(
            CUTOVER_TYPE,
            name,
            {
                "retires": (f"{claim.retirement.service.kind} {claim.retirement.service.name}"
                            if claim.retirement else None),
                "releases": claim.release.service if claim.release else None,
                "order": "with data" if carry is not None else "without data",
                **(health.props([], restored=restored) if restored else {}),
            },
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)
        self.retirement: LegacyServiceRetirement | None = None
        self.release: TailnetNameRelease | None = None
        stopped: list[pulumi.Resource] = list(ready)
        if claim.retirement is not None:
            retirement = dataclasses.replace(claim.retirement, after=(*claim.retirement.after, *ready))
            self.retirement = LegacyServiceRetirement(f"{name}-retirement", retirement, child)
            stopped = [self.retirement.retire]
        # with data: the final sync and the scale-up, after the legacy service stopped writing
        self.carried: list[pulumi.Resource] = list(carry(stopped)) if carry is not None else []
        self.done: list[pulumi.Resource] = [*stopped, *self.carried]
        if claim.release is not None:
            release = dataclasses.replace(claim.release, after=(*claim.release.after, *self.done))
            self.release = TailnetNameRelease(f"{name}-release", release, child)
            self.done = [self.release.release]
        self.register_outputs({})


@dataclass(frozen=True, slots=True)
class IngressBackend:
    """The Service (and port) an Ingress forwards to."""

    service_name: str
    port: int

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"backend {self.service_name}: port {self.port} is not a port")


@dataclass(frozen=True, slots=True)
class AppIngressArgs:
    provider: pulumi.ProviderResource
    namespace: pulumi.Input[str]
    hostname: str  # the short tailnet name: https://<hostname>.<tailnet>
    backend: IngressBackend
    proxy_class: ProxyClassRef
    legacy: LegacyClaim | None = None  # what held the name before, released first
    # The Ingress object's name; default <backend Service>-tailscale, the homelab's own (miniflux-tailscale serves
    # feed), so a first `pulumi up` over the live cluster imports the Ingress that holds the name (ops adopt)
    ingress_name: str | None = None
    # The new workload deployed and ready (without data to carry), or staged but not serving (with data): the
    # legacy service is stopped only after it (the chart or the Deployment that makes the backend).
    ready: Sequence[pulumi.Resource] = ()
    # With data to carry: the final sync and the scale-up, registered after the legacy service stopped
    # (``CarryData``); the name is released only after what it returns.
    carry: CarryData | None = None
    # The app's health path behind the Ingress (Grafana: /api/health): declared as the Ingress's health check,
    # which `ops check` probes at https://<hostname>.<tailnet><health_path>.
    health_path: str | None = None
    # The proxy device's tailnet tags (default: the operator's tag:k8s). The name's own tag (tag:feed) keeps the
    # grants members had on the legacy service reaching the new one.
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_cutover(self.hostname, self.legacy, self.ready, self.carry)

    @property
    def object_name(self) -> str:
        return self.ingress_name or f"{self.backend.service_name}-tailscale"


def _check_cutover(hostname: str, legacy: LegacyClaim | None, ready: Sequence[pulumi.Resource],
                   carry: CarryData | None) -> None:
    """What every exposure that takes a name over checks: a short name, the same name released, a cutover that
    waits for the new workload, a data move only within a cutover."""
    if not _SHORT_NAME.match(hostname):
        raise ValueError(f"app hostname {hostname!r} must be a short lower-case name (the tailnet adds "
                         "the rest)")
    released = legacy.released_name if legacy is not None else None
    if released is not None and released != hostname:
        raise ValueError(f"app hostname {hostname}: the legacy claim releases {released!r}, another "
                         "name; release the name the Ingress or LoadBalancer takes")
    if legacy is not None and not ready:
        raise ValueError(f"app hostname {hostname}: a cutover needs the new workload it waits for "
                         "(`ready`: the chart or Deployment), or the legacy service would stop before "
                         "anything replaces it")
    if carry is not None and legacy is None:
        raise ValueError(f"app hostname {hostname}: `carry` is the data move of a cutover; give the "
                         "legacy claim it takes over from")


class AppIngress(pulumi.ComponentResource):
    """Puts on the cluster a Tailscale Ingress (class ``tailscale``, the ProxyClass named as label and
    annotation ``tailscale.com/proxy-class``, ``tls.hosts [<hostname>]``) to the backend Service, registered
    only after the legacy claim on ``<hostname>`` is released (``<name>-cutover``, when there is one).

    Undo: deleting it removes the Ingress (its proxy and tailnet device go with it), then rolls the cutover
    back (see ``LegacyCutover``).
    """

    def __init__(self, name: str, args: AppIngressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            APP_INGRESS_TYPE,
            name,
            {
                "hostname": args.hostname,
                "ingress": args.object_name,
                "backend": f"{args.backend.service_name}:{args.backend.port}",
                "proxyClass": args.proxy_class.name,
                **health.props([health.ingress(
                    f"{args.hostname} {args.health_path}", args.hostname, args.health_path,
                    f"the Ingress {args.object_name} and its backend {args.backend.service_name}: "
                    f"`kubectl -n <namespace> describe ingress {args.object_name}`; a name taken as "
                    f"{args.hostname}-1 means the legacy claim was not released")]
                    if args.health_path else []),
            },
            opts,
        )
        self.hostname = args.hostname
        self.cutover: LegacyCutover | None = None
        waits: list[pulumi.Resource] = list(args.ready)
        if args.legacy is not None:
            self.cutover = LegacyCutover(f"{name}-cutover", args.legacy, args.ready, args.carry, args.health_path,
                                         pulumi.ResourceOptions(parent=self))
            waits.extend(self.cutover.done)
        self.ingress: k8s.networking.v1.Ingress = tailscale_ingress(
            f"{name}-ingress",
            name=args.object_name,
            namespace=args.namespace,
            hostname=args.hostname,
            service_name=args.backend.service_name,
            service_port=args.backend.port,
            proxy_class=args.proxy_class,
            provider=args.provider,
            parent=self,
            depends_on=waits,
            tags=args.tags,
        )
        self.register_outputs({"hostname": args.hostname})


@dataclass(frozen=True, slots=True)
class AppLoadBalancerArgs:
    """A TCP name the cluster takes over from the host (``pg``; phase 7's ``git``): the LoadBalancer sibling of
    ``AppIngressArgs``, with the same cutover."""

    provider: pulumi.ProviderResource
    namespace: pulumi.Input[str]
    hostname: str  # the short tailnet name: <hostname>.<tailnet>:<port>
    service_name: str  # the LoadBalancer Service's own name
    selector: Mapping[str, str]  # the pods it forwards to
    port: int
    proxy_class: ProxyClassRef
    legacy: LegacyClaim | None = None
    ready: Sequence[pulumi.Resource] = ()
    carry: CarryData | None = None
    tags: tuple[str, ...] = ()
    # What proves the name serves (``ops check``): e.g. a PostgreSQL answer at <hostname>.<tailnet>:<port>; and
    # what proves a rollback brought the host's service back at the same name.
    checks: tuple[health.HealthCheck, ...] = ()
    restored_checks: tuple[health.HealthCheck, ...] = ()
    custom_timeouts: pulumi.CustomTimeouts | None = None
    target_port: int | None = None  # the pods' port, when it is not ``port`` (the rootless forge's SSH on 2222)

    def __post_init__(self) -> None:
        _check_cutover(self.hostname, self.legacy, self.ready, self.carry)
        if not 1 <= self.port <= 65535:
            raise ValueError(f"app hostname {self.hostname}: port {self.port} is not a port")
        if not self.selector:
            raise ValueError(f"app hostname {self.hostname}: a LoadBalancer needs the selector of its pods")


class AppLoadBalancer(pulumi.ComponentResource):
    """Puts on the cluster a Tailscale LoadBalancer Service ``service_name`` (``loadBalancerClass: tailscale``,
    ``tailscale.com/hostname: <hostname>``, TCP ``port`` to the pods of ``selector``), registered only after the
    legacy claim on ``<hostname>`` is released (``<name>-cutover``, as for ``AppIngress``).

    Undo: deleting it removes the Service (its proxy and tailnet device go with it), then rolls the cutover back
    (see ``LegacyCutover``): the Tailscale Service recreated, the host's service and serve entry restored.
    """

    def __init__(self, name: str, args: AppLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            APP_LOAD_BALANCER_TYPE,
            name,
            {
                "hostname": args.hostname,
                "service": args.service_name,
                "port": args.port,
                "proxyClass": args.proxy_class.name,
                "tags": list(args.tags),
                **health.props(args.checks),
            },
            opts,
        )
        self.hostname = args.hostname
        self.cutover: LegacyCutover | None = None
        waits: list[pulumi.Resource] = list(args.ready)
        if args.legacy is not None:
            self.cutover = LegacyCutover(f"{name}-cutover", args.legacy, args.ready, args.carry,
                                         opts=pulumi.ResourceOptions(parent=self),
                                         restored_checks=args.restored_checks)
            waits.extend(self.cutover.done)
        self.service: k8s.core.v1.Service = tailscale_load_balancer(
            f"{name}-load-balancer",
            name=args.service_name,
            namespace=args.namespace,
            hostname=args.hostname,
            selector=args.selector,
            port=args.port,
            proxy_class=args.proxy_class,
            provider=args.provider,
            parent=self,
            depends_on=waits,
            custom_timeouts=args.custom_timeouts,
            tags=args.tags,
            target_port=args.target_port,
        )
        self.register_outputs({"hostname": args.hostname})
