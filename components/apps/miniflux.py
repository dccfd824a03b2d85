"""Miniflux in the cluster: its Deployment on ``blumeops-pg``, the database URL built from the role's password,
and the Ingress that takes the name ``feed`` over from the brew Miniflux, with its last writes carried."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s

from components.apps.base import AppIngress, AppIngressArgs, IngressBackend, LegacyClaim
from components.cluster.cloudnative_pg import ComputeResources
from components.cluster.objects import (
    ImageRef,
    KeptState,
    ProxyClassRef,
    cluster_service,
    kubernetes_opts,
    namespace,
    secret_from_config,
    single_deployment,
)

MINIFLUX_TYPE = "blumeops:app:Miniflux"
MINIFLUX_IMAGE = ImageRef("ghcr.io/miniflux/miniflux", "2.2.16")
PORT = 8080  # the image sets LISTEN_ADDR=0.0.0.0:8080
DATABASE_SECRET = "miniflux-db"
DATABASE_URL_KEY = "url"
RUN_AS = 65534  # the image's user (nobody)
MINIFLUX_RESOURCES = ComputeResources(requests_memory="64Mi", requests_cpu="50m", limits_memory="256Mi",
                                      limits_cpu="200m")
# facts §6.3: what the brew Miniflux ran with (/opt/homebrew/etc/miniflux.conf), kept in the cluster.
POLLING = {
    "POLLING_FREQUENCY": "60",
    "BATCH_SIZE": "100",
    "POLLING_SCHEDULER": "entry_frequency",
    "CLEANUP_ARCHIVE_UNREAD_DAYS": "180",
    "CLEANUP_ARCHIVE_READ_DAYS": "60",
}

# The "with data" middle of Miniflux's cutover: given the step that stopped the brew Miniflux, registers the
# final sync of its database and returns what the Deployment must wait for.
FinalSync = Callable[[Sequence[pulumi.Resource]], Sequence[pulumi.Resource]]


@dataclass(frozen=True, slots=True)
class MinifluxDatabase:
    """Where Miniflux's database is, as pods reach it (the cluster's ``-rw`` Service), and its role."""

    host: str  # blumeops-pg-rw.databases.svc.cluster.local
    name: str = "miniflux"
    user: str = "miniflux"
    port: int = 5432
    # CloudNativePG serves TLS with its own CA: encrypted, not verified against a public CA.
    sslmode: str = "require"

    def url(self, password: str) -> str:
        """The libpq URI Miniflux reads from DATABASE_URL (the password percent-encoded)."""
        return (f"postgres://{quote(self.user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}/"
                f"{quote(self.name, safe='')}?sslmode={self.sslmode}")


@dataclass(frozen=True, slots=True)
class MinifluxArgs:
    provider: pulumi.ProviderResource
    kept: KeptState  # the namespace outlives a rollback (nothing of Miniflux's data lives in it, but its Secret
    # and the name stay predictable; the data is in blumeops-pg)
    proxy_class: ProxyClassRef
    tailnet: str  # "<tailnet>.ts.net": BASE_URL is https://<hostname>.<tailnet>/
    database: MinifluxDatabase
    # The miniflux role's password (a config secret): CloudNativePG sets it on the role (a managed role of
    # blumeops-pg, phase 1 amended) and the same Output builds DATABASE_URL here. One source, no copy.
    database_password: pulumi.Output[str]
    # What makes the role and its password real in the database (the Cluster with the managed role): the
    # Deployment waits for it.
    database_ready: Sequence[pulumi.Resource] = ()
    image: ImageRef = MINIFLUX_IMAGE
    namespace: str = "miniflux"
    hostname: str = "feed"
    resources: ComputeResources = MINIFLUX_RESOURCES
    polling: dict[str, str] = field(default_factory=lambda: dict(POLLING))
    legacy: LegacyClaim | None = None  # the brew Miniflux and svc:feed
    # With a legacy claim: the final sync of the database after the brew Miniflux stopped (see ``Miniflux``).
    final_sync: FinalSync | None = None
    tags: tuple[str, ...] = ("tag:feed",)

    def __post_init__(self) -> None:
        if "." not in self.tailnet or self.tailnet.startswith("."):
            raise ValueError(f"Miniflux: tailnet {self.tailnet!r} is not a tailnet DNS name such as example.ts.net")
        if self.final_sync is not None and self.legacy is None:
            raise ValueError("Miniflux: a final sync is the data move of a cutover; give the legacy claim")

    @property
    def base_url(self) -> str:
        return f"https://{self.hostname}.{self.tailnet}/"

    def environment(self) -> list[k8s.core.v1.EnvVarArgs]:
        """Miniflux's environment (facts §6.3): the database from the Secret, migrations on, the base URL, the
        polling and cleanup values."""
        plain = {"RUN_MIGRATIONS": "1", "BASE_URL": self.base_url, **self.polling}
        return [
            k8s.core.v1.EnvVarArgs(name="DATABASE_URL", value_from=k8s.core.v1.EnvVarSourceArgs(
                secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=DATABASE_SECRET, key=DATABASE_URL_KEY))),
            *(k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in plain.items()),
        ]


def _probe(initial_delay: int, period: int) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthcheck", port=PORT),
        initial_delay_seconds=initial_delay, period_seconds=period)


class Miniflux(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``miniflux`` (kept by a rollback); the Secret ``miniflux-db`` (key
    ``url``: the database URL, built from the role's password secret); the Service ``miniflux`` (8080); the
    Deployment ``miniflux`` (one replica, ``Recreate``: two Miniflux never run migrations or poll at once);
    and the Tailscale Ingress ``feed`` (tagged ``tag:feed``).

    The cutover carries data (Miniflux's database): staged first (namespace, Secret, Service, the role in the
    database: nothing serves yet), then the brew Miniflux stops and ``svc:feed``'s serve entry is cleared, then
    the final sync copies the last writes into the cluster's database (``final_sync``), then the Deployment is
    created and waits until ready, then ``svc:feed`` is released and the Ingress claims ``feed``. The
    Deployment is created after the sync rather than staged at zero replicas and scaled: a scale-up by a second
    resource would not scale it down again on a rollback, and a rollback must stop the cluster's Miniflux
    before the final sync's undo copies its writes back.

    Undo: destroying it removes the Ingress, rolls the cutover back in reverse (``svc:feed`` recreated, the
    Deployment deleted, the final sync undone, the brew Miniflux and its serve entry restored), then the
    Service and the Secret. The namespace stays; the data is in blumeops-pg, which stays.
    """

    def __init__(self, name: str, args: MinifluxArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            MINIFLUX_TYPE,
            name,
            {
                "namespace": args.namespace,
                "hostname": args.hostname,
                "baseUrl": args.base_url,
                "database": f"{args.database.name} on {args.database.host}:{args.database.port} as "
                            f"{args.database.user}",
                "images": [args.image.ref],
            },
            opts,
        )
        provider = args.provider
        self.base_url = args.base_url
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self, kept=args.kept)
        ns = self.namespace.metadata.name
        database = args.database
        self.database_secret = secret_from_config(
            f"{name}-database",
            name=DATABASE_SECRET,
            namespace=ns,
            string_data={DATABASE_URL_KEY: args.database_password.apply(database.url)},
            provider=provider,
            parent=self,
        )
        labels = {"app": "miniflux"}
        self.service = cluster_service(f"{name}-service", name="miniflux", namespace=ns, labels=labels,
                                       port=PORT, port_name="http", provider=provider, parent=self)
        staged: list[pulumi.Resource] = [self.namespace, self.database_secret, self.service,
                                         *args.database_ready]
        self.deployment: k8s.apps.v1.Deployment | None = None

        def start(synced: Sequence[pulumi.Resource]) -> list[pulumi.Resource]:
            self.deployment = self._deployment(name, args, ns, labels, [*staged, *synced])
            return [self.deployment]

        final_sync = args.final_sync
        carry: Callable[[Sequence[pulumi.Resource]], Sequence[pulumi.Resource]] | None = None
        ready: Sequence[pulumi.Resource] = staged
        if final_sync is not None:
            # with data: staged -> the brew Miniflux stopped -> the final sync -> the Deployment, ready
            def carry(stopped: Sequence[pulumi.Resource]) -> Sequence[pulumi.Resource]:
                return start(list(final_sync(stopped)))
        else:
            # no legacy database to carry (a fresh install, or no legacy claim): the Deployment first
            ready = start([])
        self.ingress = AppIngress(
            name,
            AppIngressArgs(
                provider=provider,
                namespace=ns,
                hostname=args.hostname,
                backend=IngressBackend("miniflux", PORT),
                proxy_class=args.proxy_class,
                legacy=args.legacy,
                ready=ready if args.legacy is not None else (),
                carry=carry,
                health_path="/healthcheck",
                tags=args.tags,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"namespace": ns, "hostname": args.hostname, "baseUrl": args.base_url})

    def _deployment(self, name: str, args: MinifluxArgs, ns: pulumi.Input[str], labels: dict[str, str],
                    after: Sequence[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        resources = args.resources
        return single_deployment(
            f"{name}-deployment", name="miniflux", namespace=ns, labels=labels,
            pod=k8s.core.v1.PodSpecArgs(
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    run_as_non_root=True, run_as_user=RUN_AS, run_as_group=RUN_AS),
                containers=[k8s.core.v1.ContainerArgs(
                    name="miniflux",
                    image=args.image.ref,
                    ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                    env=args.environment(),
                    resources=k8s.core.v1.ResourceRequirementsArgs(
                        requests={"memory": resources.requests_memory, "cpu": resources.requests_cpu},
                        limits={"memory": resources.limits_memory, "cpu": resources.limits_cpu}),
                    liveness_probe=_probe(10, 30),
                    readiness_probe=_probe(5, 10),
                    security_context=k8s.core.v1.SecurityContextArgs(
                        allow_privilege_escalation=False, read_only_root_filesystem=True,
                        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"])),
                )],
            ),
            opts=kubernetes_opts(provider=args.provider, parent=self, depends_on=after),
        )
