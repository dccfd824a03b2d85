"""The building block every in-cluster app uses to take over a tailnet name the host held: the cutover.

A name such as ``grafana`` belongs to the host until its claim is released: the host's legacy service is
stopped and its ``tailscale serve`` entry cleared (``LegacyServiceRetirement``), then the Tailscale Service
that owns ``<name>.<tailnet>`` is deleted (``TailnetNameRelease``). Only then may the in-cluster proxy register,
or it comes up as ``<name>-1``. ``LegacyCutover`` encodes that order as resources; ``AppIngress`` is a
Tailscale Ingress that waits for it. Phases 2 and 4-7 use them as they are; a LoadBalancer that takes over a
name (``pg``) depends on ``LegacyCutover.done`` the same way.

Lowering the target reverses it: Pulumi deletes the Ingress first (its proxy gives the name up), then the
release's delete recreates the Tailscale Service, then the retirement's delete serves it from the host again
and restarts the legacy service.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import health
from components.cluster.objects import ProxyClassRef, tailscale_ingress
from components.host.retire import LegacyServiceRetirement, LegacyServiceRetirementArgs
from components.tailnet.release import TailnetNameRelease, TailnetNameReleaseArgs

CUTOVER_TYPE = "blumeops:app:LegacyCutover"
APP_INGRESS_TYPE = "blumeops:app:AppIngress"
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


class LegacyCutover(pulumi.ComponentResource):
    """Releases a tailnet name the host held: ``<name>-retirement`` (the legacy service stopped, its serve entry
    cleared) and then ``<name>-release`` (the Tailscale Service deleted). ``done`` lists the steps whatever
    claims the name next must depend on.

    Undo: deleting it recreates the Tailscale Service first, then serves it from the host and restarts the
    legacy service (the release depends on the retirement, so Pulumi deletes it first).
    """

    def __init__(self, name: str, claim: LegacyClaim, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            CUTOVER_TYPE,
            name,
            {
                "retires": (f"{claim.retirement.service.kind} {claim.retirement.service.name}"
                            if claim.retirement else None),
                "releases": claim.release.service if claim.release else None,
            },
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)
        self.retirement: LegacyServiceRetirement | None = None
        self.release: TailnetNameRelease | None = None
        self.done: list[pulumi.Resource] = []
        if claim.retirement is not None:
            self.retirement = LegacyServiceRetirement(f"{name}-retirement", claim.retirement, child)
            self.done.append(self.retirement.retire)
        if claim.release is not None:
            release = claim.release
            if self.retirement is not None:
                # the Service goes after the host stopped serving it; its rollback comes back before
                release = dataclasses.replace(release, after=(*release.after, self.retirement.retire))
            self.release = TailnetNameRelease(f"{name}-release", release, child)
            self.done.append(self.release.release)
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
    ingress_name: str | None = None  # the Ingress object's name; default <hostname>-tailscale
    after: Sequence[pulumi.Resource] = ()  # what must exist first (the chart that makes the backend)
    # The app's health path behind the Ingress (Grafana: /api/health): declared as the Ingress's health check,
    # which `ops check` probes at https://<hostname>.<tailnet><health_path>.
    health_path: str | None = None

    def __post_init__(self) -> None:
        if not _SHORT_NAME.match(self.hostname):
            raise ValueError(f"app hostname {self.hostname!r} must be a short lower-case name (the tailnet adds "
                             "the rest)")
        released = self.legacy.released_name if self.legacy is not None else None
        if released is not None and released != self.hostname:
            raise ValueError(f"app hostname {self.hostname}: the legacy claim releases {released!r}, another "
                             "name; release the name the Ingress takes")

    @property
    def object_name(self) -> str:
        return self.ingress_name or f"{self.hostname}-tailscale"


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
        waits: list[pulumi.Resource] = list(args.after)
        if args.legacy is not None:
            self.cutover = LegacyCutover(f"{name}-cutover", args.legacy, pulumi.ResourceOptions(parent=self))
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
        )
        self.register_outputs({"hostname": args.hostname})
