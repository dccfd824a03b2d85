"""devpi in the cluster: the StatefulSet on the image the program builds on indri, its root password from
config, a volume a rollback keeps, and the Ingress that takes the name ``pypi`` over from the host's agent."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.apps.base import AppIngress, AppIngressArgs, IngressBackend, LegacyClaim, start_order
from components.cluster.cloudnative_pg import ComputeResources
from components.cluster.objects import (
    KeptState,
    ProxyClassRef,
    cluster_service,
    kept_claim,
    kubernetes_opts,
    namespace,
    secret_from_config,
)

DEVPI_TYPE = "blumeops:app:Devpi"
START_TIMEOUT = "40m"
PORT = 3141
SERVER_DIR = "/devpi"
UID = 1000  # the image's user devpi (components/host/images/devpi/Dockerfile)
ROOT_SECRET = "devpi-root"
ROOT_PASSWORD_KEY = "password"
# The StatefulSet's claim template is `data`: its claim for the one replica is data-devpi-0, which the program
# makes itself (kept by a rollback) so the controller finds it and uses it.
CLAIM_TEMPLATE = "data"
DATA_CLAIM = f"{CLAIM_TEMPLATE}-devpi-0"
# devpi-web's Whoosh indexer was killed at 512Mi (facts §7.6): 2Gi.
DEVPI_RESOURCES = ComputeResources(requests_memory="256Mi", requests_cpu="100m", limits_memory="2Gi",
                                   limits_cpu="500m")

# With the host's server to carry: given the step that stopped the agent, registers the data move and returns
# what the StatefulSet waits for, and the init container that brings the data in (or None).
DataMove = Callable[[Sequence[pulumi.Resource]], tuple[Sequence[pulumi.Resource], "ImportSource | None"]]


@dataclass(frozen=True, slots=True)
class ImportSource:
    """Where the first start finds the host server's export: an image (built on the host, ``DevpiExport``)
    holding it at ``path``, run as the init container that imports it into the volume once."""

    image: pulumi.Input[str]
    path: str = "/import"


@dataclass(frozen=True, slots=True)
class DevpiArgs:
    provider: pulumi.ProviderResource
    kept: KeptState  # the namespace and the claim outlive a rollback, and are taken back
    proxy_class: ProxyClassRef
    tailnet: str
    image: str  # registry.<tailnet>/blumeops/devpi:<content hash> (DevpiImage)
    root_password: pulumi.Output[str]
    image_built: Sequence[pulumi.Resource] = ()  # the build step: the StatefulSet pulls what it pushed
    namespace: str = "devpi"
    hostname: str = "pypi"
    storage_size: str = "50Gi"
    storage_class: str | None = None
    resources: ComputeResources = DEVPI_RESOURCES
    legacy: LegacyClaim | None = None  # the devpi LaunchAgent on indri and svc:pypi
    data_move: DataMove | None = None  # with a legacy claim: the host server's data moved in (see Devpi)
    tags: tuple[str, ...] = ("tag:devpi",)

    def __post_init__(self) -> None:
        if "." not in self.tailnet or self.tailnet.startswith("."):
            raise ValueError(f"devpi: tailnet {self.tailnet!r} is not a tailnet DNS name such as example.ts.net")
        if self.data_move is not None and self.legacy is None:
            raise ValueError("devpi: a data move belongs to a cutover; give the legacy claim")

    @property
    def outside_url(self) -> str:
        return f"https://{self.hostname}.{self.tailnet}"


def _probe(delay: int, period: int) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(http_get=k8s.core.v1.HTTPGetActionArgs(path="/+api", port=PORT),
                                 initial_delay_seconds=delay, period_seconds=period)


def _security() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(allow_privilege_escalation=False,
                                           capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]))


class Devpi(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``devpi`` and the claim ``data-devpi-0`` (both kept by a rollback); the
    Secret ``devpi-root`` (root's password, from a config secret); the Service ``devpi`` (3141); the
    StatefulSet ``devpi`` (fsGroup 1000, the claim at ``/devpi``, the entrypoint initialising the server
    directory once, ``DEVPI_LISTEN_PORT`` since Kubernetes injects ``DEVPI_PORT`` for a Service named devpi,
    probes ``/+api``, 2Gi for the indexer); the Tailscale Ingress ``pypi`` (tagged ``tag:devpi``).

    The cutover carries data: staged (namespace, claim, Secret, Service, the image pushed), then the agent
    stops and ``svc:pypi``'s serve entry is cleared, then the data move (``data_move``: the host server's
    export), then the StatefulSet starts and is ready, then ``svc:pypi`` is released and the Ingress claims
    ``pypi``. Without a data move the server starts empty.

    Undo: destroying it removes the Ingress, rolls the cutover back (``svc:pypi`` recreated, the StatefulSet
    deleted, the data move undone, the agent restored), then the Service and Secret. The namespace and the
    claim stay with the cluster server's data; raising the target takes them back (the kept-state provider
    upserts) and the entrypoint finds the server directory initialised.
    """

    def __init__(self, name: str, args: DevpiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            DEVPI_TYPE,
            name,
            {"namespace": args.namespace, "hostname": args.hostname, "outsideUrl": args.outside_url,
             "images": [args.image], "claim": DATA_CLAIM, "storage": args.storage_size},
            opts,
        )
        provider = args.provider
        self.outside_url = args.outside_url
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self, kept=args.kept)
        ns = self.namespace.metadata.name
        self.root = secret_from_config(f"{name}-root", name=ROOT_SECRET, namespace=ns,
                                       string_data={ROOT_PASSWORD_KEY: args.root_password},
                                       provider=provider, parent=self)
        labels = {"app": "devpi"}
        self.data = kept_claim(f"{name}-data", name=DATA_CLAIM, namespace=ns, size=args.storage_size,
                               storage_class=args.storage_class, labels=labels, kept=args.kept, parent=self,
                               depends_on=[self.namespace])
        self.service = cluster_service(f"{name}-service", name="devpi", namespace=ns, labels=labels,
                                       port=PORT, port_name="http", provider=provider, parent=self)
        staged: list[pulumi.Resource] = [self.namespace, self.root, self.data, self.service, *args.image_built]
        self.stateful_set: k8s.apps.v1.StatefulSet | None = None

        sources: list[ImportSource] = []  # what the data move exported, for the StatefulSet's import

        def start(after: Sequence[pulumi.Resource]) -> list[pulumi.Resource]:
            self.stateful_set = self._stateful_set(name, args, ns, labels, [*staged, *after],
                                                   sources[0] if sources else None)
            return [self.stateful_set]

        move = None
        if args.data_move is not None:
            data_move = args.data_move

            def move(stopped: Sequence[pulumi.Resource]) -> Sequence[pulumi.Resource]:
                moved, source = data_move(stopped)
                sources.extend([source] if source is not None else [])
                return moved

        ready, carry = start_order(staged, start, move)
        self.ingress = AppIngress(
            name,
            AppIngressArgs(
                provider=provider, namespace=ns, hostname=args.hostname, backend=IngressBackend("devpi", PORT),
                proxy_class=args.proxy_class, legacy=args.legacy,
                ready=ready if args.legacy is not None else (), carry=carry,
                health_path="/+api", tags=args.tags,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"namespace": ns, "hostname": args.hostname, "outsideUrl": args.outside_url})

    def _stateful_set(self, name: str, args: DevpiArgs, ns: pulumi.Input[str], labels: dict[str, str],
                      after: Sequence[pulumi.Resource], source: ImportSource | None) -> k8s.apps.v1.StatefulSet:
        resources = args.resources
        server_dir = k8s.core.v1.EnvVarArgs(name="DEVPI_SERVERDIR", value=SERVER_DIR)
        root_password = k8s.core.v1.EnvVarArgs(name="DEVPI_ROOT_PASSWORD", value_from=k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=ROOT_SECRET, key=ROOT_PASSWORD_KEY)))
        env = [
            server_dir,
            k8s.core.v1.EnvVarArgs(name="DEVPI_LISTEN_PORT", value=str(PORT)),
            k8s.core.v1.EnvVarArgs(name="DEVPI_OUTSIDE_URL", value=args.outside_url),
            root_password,
        ]
        mounts = [k8s.core.v1.VolumeMountArgs(name=CLAIM_TEMPLATE, mount_path=SERVER_DIR)]
        init_containers = []
        if source is not None:
            # The import image (the devpi image with the host server's export at /import) initialises the volume
            # from the export on the first start (`init`: import once, then exit); on every later start it finds
            # .serverversion and exits at once. The main container then only serves.
            init_containers.append(k8s.core.v1.ContainerArgs(
                name="import", image=source.image, args=["init"],
                env=[server_dir, root_password, k8s.core.v1.EnvVarArgs(name="DEVPI_IMPORT_DIR", value=source.path)],
                volume_mounts=mounts, security_context=_security(),
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests={"memory": resources.requests_memory, "cpu": resources.requests_cpu},
                    limits={"memory": resources.limits_memory, "cpu": resources.limits_cpu})))
        return k8s.apps.v1.StatefulSet(
            f"{name}-stateful-set",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="devpi", namespace=ns, labels=labels),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name="devpi",
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                # the claims outlive the StatefulSet whatever happens to it (the program keeps data-devpi-0 too)
                persistent_volume_claim_retention_policy=k8s.apps.v1.
                StatefulSetPersistentVolumeClaimRetentionPolicyArgs(when_deleted="Retain", when_scaled="Retain"),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            fs_group=UID, run_as_user=UID, run_as_group=UID, run_as_non_root=True),
                        init_containers=init_containers or None,
                        containers=[k8s.core.v1.ContainerArgs(
                            name="devpi",
                            image=args.image,
                            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                            env=env,
                            volume_mounts=mounts,
                            resources=k8s.core.v1.ResourceRequirementsArgs(
                                requests={"memory": resources.requests_memory, "cpu": resources.requests_cpu},
                                limits={"memory": resources.limits_memory, "cpu": resources.limits_cpu}),
                            liveness_probe=_probe(30, 30),
                            readiness_probe=_probe(10, 10),
                            security_context=_security(),
                        )],
                    ),
                ),
                volume_claim_templates=[k8s.core.v1.PersistentVolumeClaimArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=CLAIM_TEMPLATE, labels=labels),
                    spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"], storage_class_name=args.storage_class,
                        resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                            requests={"storage": args.storage_size})),
                )],
            ),
            # the first start pulls the import image through zot and imports the export (devpi-web indexes it):
            # more than the provider's 10 minutes for a large server
            opts=kubernetes_opts(args.provider, self, after,
                                 custom_timeouts=pulumi.CustomTimeouts(create=START_TIMEOUT, update=START_TIMEOUT)),
        )
