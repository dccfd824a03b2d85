"""Transmission and Kiwix in the cluster, on the NAS's NFS export: Transmission downloads into it (a sidecar
keeps the declared ZIM torrents in it), Kiwix serves every finished ZIM from it without a restart.

Phase 6 composes them. Both take the share phase 5.1 proved mountable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.apps.base import AppIngress, AppIngressArgs, IngressBackend, LegacyClaim, start_order
from components.cluster.cloudnative_pg import ComputeResources
from components.cluster.objects import (
    ImageRef,
    KeptState,
    ProxyClassRef,
    cluster_service,
    kept_claim,
    kubernetes_opts,
    namespace,
    single_deployment,
)
from components.host.transmission_move import CARRIED_DIR

SCRIPTS = Path(__file__).resolve().parent / "scripts"
TRANSMISSION_TYPE = "blumeops:app:Transmission"
KIWIX_TYPE = "blumeops:app:Kiwix"
TRANSMISSION_IMAGE = ImageRef("ghcr.io/linuxserver/transmission", "4.0.6")
KIWIX_IMAGE = ImageRef("ghcr.io/kiwix/kiwix-serve", "3.8.1")
WEB_PORT = 9091
PEER_PORT = 51413
KIWIX_PORT = 8080
DOWNLOADS_CLAIM = "torrents-storage"
CONFIG_CLAIM = "transmission-config"
TRANSMISSION_RESOURCES = ComputeResources(requests_memory="256Mi", requests_cpu="100m", limits_memory="512Mi",
                                          limits_cpu="1")
KIWIX_RESOURCES = ComputeResources(requests_memory="256Mi", requests_cpu="100m", limits_memory="1Gi",
                                   limits_cpu="500m")
SIDECAR_RESOURCES = ComputeResources(requests_memory="32Mi", requests_cpu="10m", limits_memory="64Mi",
                                     limits_cpu="100m")


def _resources(resources: ComputeResources) -> k8s.core.v1.ResourceRequirementsArgs:
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"memory": resources.requests_memory, "cpu": resources.requests_cpu},
        limits={"memory": resources.limits_memory, "cpu": resources.limits_cpu})


def _probe(path: str, port: int, delay: int, period: int) -> k8s.core.v1.ProbeArgs:
    return k8s.core.v1.ProbeArgs(http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=port),
                                 initial_delay_seconds=delay, period_seconds=period)


def _restricted() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(allow_privilege_escalation=False,
                                           capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]))


def script(name: str) -> str:
    """A sidecar's script (components/apps/scripts/<name>.sh), mounted from a ConfigMap."""
    return (SCRIPTS / f"{name}.sh").read_text(encoding="utf-8")


# With the brew daemon to carry: given the step that stopped it, registers the move of its downloads and settings
# onto the share and returns what the Deployment must wait for.
DataMove = Callable[[Sequence[pulumi.Resource]], Sequence[pulumi.Resource]]
# Where the config-import init container finds the carried settings the move staged: the share's root is
# /downloads.
CARRIED_CONFIG = f"/downloads/{CARRIED_DIR}"


@dataclass(frozen=True, slots=True)
class TransmissionArgs:
    provider: pulumi.ProviderResource
    kept: KeptState  # the namespace, the config claim and the downloads claim outlive a rollback
    proxy_class: ProxyClassRef
    volume_name: str  # the share's PersistentVolume the downloads claim binds by name (phase 5.1)
    share_ready: Sequence[pulumi.Resource]  # the probe that proved pods can mount it
    capacity: str = "1Ti"
    config_size: str = "1Gi"
    timezone: str = "America/Los_Angeles"
    uid: int = 1000
    image: ImageRef = TRANSMISSION_IMAGE
    namespace: str = "torrent"
    hostname: str = "torrent"
    legacy: LegacyClaim | None = None  # the brew transmission-cli (it had no tailnet name of its own)
    # With a legacy claim: the brew daemon's downloads and settings moved onto the share after it stopped and
    # before the Deployment starts (the "with data" order); ``carried_from`` is its download-dir, where the
    # carried torrents say their data is (the torrents sidecar points them at /downloads/complete).
    data_move: DataMove | None = None
    carried_from: str = ""
    tags: tuple[str, ...] = ()
    # The declared ZIM torrents (URLs of .torrent files): the sidecar adds the missing ones over the RPC on the
    # pod's loopback (the image's RPC whitelist allows 127.0.0.1), recording them on /config.
    torrents: Sequence[str] = ()
    torrents_interval_seconds: int = 1800

    def __post_init__(self) -> None:
        bad = [url for url in self.torrents if not url.startswith("https://") or any(c.isspace() for c in url)]
        if bad:
            raise ValueError(f"Transmission: {bad[:3]} are not https URLs of .torrent files")
        if self.data_move is not None and self.legacy is None:
            raise ValueError("Transmission: a data move belongs to a cutover; give the legacy claim")
        if self.carried_from and (not self.carried_from.startswith("/") or self.carried_from.rstrip("/") !=
                                  self.carried_from or any(c.isspace() or c == ":" for c in self.carried_from)):
            raise ValueError(f"Transmission: carried_from {self.carried_from!r} must be an absolute directory")


class Transmission(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``torrent``, the claim ``torrents-storage`` bound to the share's
    PersistentVolume by name and the claim ``transmission-config`` for ``/config`` (the original used an
    emptyDir and lost its settings and torrent list on every restart), all three kept by a rollback (a
    deleted claim would leave the Retain volume Released, unbindable when the target rises again); the
    Deployment ``transmission`` (linuxserver image, PUID/PGID, ``/downloads`` on the share, probes
    ``/transmission/web/``, ``Recreate``: one daemon per config), whose ``config-import`` init container copies
    the carried settings into an empty ``/config`` (never over a config the cluster's daemon already has), with
    the ``torrents`` sidecar adding the declared ZIM torrents and pointing carried torrents at their data
    (ConfigMaps ``zim-torrents`` and ``transmission-scripts``); the Service ``transmission`` (9091) and the
    Tailscale Ingress ``torrent``.

    With a legacy claim and a data move, the "with data" order: staged (namespace, claims, ConfigMaps, Service),
    then the brew daemon stopped, the move, the Deployment ready, then the Ingress.

    Undo: destroying it removes the Ingress, then the Deployment, then undoes the move (the staged settings go;
    the downloads stay on the NAS), then restarts the brew daemon on its untouched files; the ConfigMaps and
    Service go; the namespace and both claims stay with their data.
    """

    def __init__(self, name: str, args: TransmissionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TRANSMISSION_TYPE, name, {
            "namespace": args.namespace, "hostname": args.hostname, "volume": args.volume_name,
            "images": [args.image.ref], "claims": [DOWNLOADS_CLAIM, CONFIG_CLAIM],
            "order": "with data" if args.data_move is not None else "without data"}, opts)
        provider = args.provider
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self, kept=args.kept)
        ns = self.namespace.metadata.name
        labels = {"app": "transmission"}
        self.downloads = kept_claim(f"{name}-downloads", name=DOWNLOADS_CLAIM, namespace=ns, size=args.capacity,
                                    storage_class="", volume_name=args.volume_name, labels=labels,
                                    access_modes=("ReadWriteMany",), kept=args.kept, parent=self,
                                    depends_on=[self.namespace, *args.share_ready])
        self.config = kept_claim(f"{name}-config", name=CONFIG_CLAIM, namespace=ns, size=args.config_size,
                                 labels=labels, kept=args.kept, parent=self, depends_on=[self.namespace])
        self.service = cluster_service(f"{name}-service", name="transmission", namespace=ns, labels=labels,
                                       port=WEB_PORT, port_name="web", provider=provider, parent=self)
        self.torrents = k8s.core.v1.ConfigMap(
            f"{name}-torrents", metadata=k8s.meta.v1.ObjectMetaArgs(name="zim-torrents", namespace=ns),
            data={"torrents.txt": "".join(f"{url}\n" for url in args.torrents)}, opts=kubernetes_opts(provider, self))
        self.script = k8s.core.v1.ConfigMap(
            f"{name}-script", metadata=k8s.meta.v1.ObjectMetaArgs(name="transmission-scripts", namespace=ns),
            data={"zim-torrents.sh": script("zim-torrents"), "transmission-config.sh": script("transmission-config")},
            opts=kubernetes_opts(provider, self))
        staged: list[pulumi.Resource] = [self.namespace, self.downloads, self.config, self.service, self.torrents,
                                         self.script]
        self.deployment: k8s.apps.v1.Deployment | None = None

        def start(after: Sequence[pulumi.Resource]) -> list[pulumi.Resource]:
            self.deployment = self._deployment(name, args, ns, labels, [*staged, *after])
            return [self.deployment]

        ready, carry = start_order(staged, start, args.data_move)
        self.ingress = AppIngress(name, AppIngressArgs(
            provider=provider, namespace=ns, hostname=args.hostname, backend=IngressBackend("transmission", WEB_PORT),
            proxy_class=args.proxy_class, legacy=args.legacy,
            ready=ready if args.legacy is not None else (), carry=carry,
            health_path="/transmission/web/", tags=args.tags), pulumi.ResourceOptions(parent=self))
        self.register_outputs({"namespace": ns, "hostname": args.hostname})

    def _deployment(self, name: str, args: TransmissionArgs, ns: pulumi.Input[str], labels: dict[str, str],
                    after: Sequence[pulumi.Resource]) -> k8s.apps.v1.Deployment:
        env = {"PUID": str(args.uid), "PGID": str(args.uid), "TZ": args.timezone}
        sidecar_env = {"TRANSMISSION_HOST": "127.0.0.1", "TRANSMISSION_PORT": str(WEB_PORT),
                       "TORRENT_LIST": "/torrents/torrents.txt", "STATE_FILE": "/config/zim-torrents.state",
                       "INTERVAL": str(args.torrents_interval_seconds)}
        if args.carried_from:
            sidecar_env |= {"RELOCATE_FROM": args.carried_from, "RELOCATE_TO": "/downloads/complete"}
        downloads = k8s.core.v1.VolumeMountArgs(name="downloads", mount_path="/downloads")
        config = k8s.core.v1.VolumeMountArgs(name="config", mount_path="/config")
        scripts = k8s.core.v1.VolumeMountArgs(name="scripts", mount_path="/scripts", read_only=True)
        return single_deployment(
            f"{name}-deployment", name="transmission", namespace=ns, labels=labels,
            pod=k8s.core.v1.PodSpecArgs(
                automount_service_account_token=False,
                init_containers=[k8s.core.v1.ContainerArgs(
                    # the brew daemon's settings and torrents, into a /config that has none yet (first start)
                    name="config-import", image=args.image.ref,
                    command=["/bin/sh", "/scripts/transmission-config.sh"],
                    env=[k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in {
                        "CARRIED": CARRIED_CONFIG, "CONFIG": "/config", "OWNER": f"{args.uid}:{args.uid}"}.items()],
                    volume_mounts=[k8s.core.v1.VolumeMountArgs(name="downloads", mount_path="/downloads",
                                                               read_only=True), config, scripts],
                    resources=_resources(SIDECAR_RESOURCES),
                )],
                containers=[k8s.core.v1.ContainerArgs(
                    name="transmission",
                    image=args.image.ref,
                    env=[k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in env.items()],
                    ports=[k8s.core.v1.ContainerPortArgs(name="web", container_port=WEB_PORT),
                           k8s.core.v1.ContainerPortArgs(name="peer-tcp", container_port=PEER_PORT,
                                                         protocol="TCP"),
                           k8s.core.v1.ContainerPortArgs(name="peer-udp", container_port=PEER_PORT,
                                                         protocol="UDP")],
                    volume_mounts=[downloads, config],
                    resources=_resources(TRANSMISSION_RESOURCES),
                    liveness_probe=_probe("/transmission/web/", WEB_PORT, 30, 30),
                    readiness_probe=_probe("/transmission/web/", WEB_PORT, 10, 10),
                ), k8s.core.v1.ContainerArgs(
                    name="torrents",
                    image=args.image.ref,
                    command=["bash", "/scripts/zim-torrents.sh"],
                    env=[k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in sidecar_env.items()],
                    volume_mounts=[
                        config,
                        k8s.core.v1.VolumeMountArgs(name="torrents", mount_path="/torrents", read_only=True),
                        scripts],
                    resources=_resources(SIDECAR_RESOURCES),
                )],
                volumes=[
                    k8s.core.v1.VolumeArgs(name="torrents", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                        name="zim-torrents")),
                    k8s.core.v1.VolumeArgs(name="scripts", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                        name="transmission-scripts", default_mode=0o555)),
                    k8s.core.v1.VolumeArgs(name="downloads", persistent_volume_claim=k8s.core.v1.
                                           PersistentVolumeClaimVolumeSourceArgs(claim_name=DOWNLOADS_CLAIM)),
                    k8s.core.v1.VolumeArgs(name="config", persistent_volume_claim=k8s.core.v1.
                                           PersistentVolumeClaimVolumeSourceArgs(claim_name=CONFIG_CLAIM)),
                ],
            ),
            opts=kubernetes_opts(args.provider, self, list(after)),
        )


@dataclass(frozen=True, slots=True)
class KiwixArgs:
    provider: pulumi.ProviderResource
    kept: KeptState
    proxy_class: ProxyClassRef
    nfs_server: str  # the share, mounted read-only at /data (Kiwix writes nothing there)
    nfs_path: str
    share_ready: Sequence[pulumi.Resource]
    image: ImageRef = KIWIX_IMAGE
    namespace: str = "kiwix"
    hostname: str = "kiwix"
    library_interval_seconds: int = 60
    legacy: LegacyClaim | None = None  # the kiwix-serve LaunchAgent and svc:kiwix
    tags: tuple[str, ...] = ("tag:kiwix",)


class Kiwix(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``kiwix``; the ConfigMap ``kiwix-scripts`` (the library sidecar's
    script); the Deployment ``kiwix``: ``kiwix-serve --library --monitorLibrary /library/library.xml`` (it picks
    up new ZIMs without a restart: no CronJob, no Role, no ServiceAccount token), after an init container that
    writes the first library, with the ``library`` sidecar keeping ``library.xml`` equal to the finished ZIMs
    under ``/data/complete`` (the share, read-only); the Service ``kiwix`` (80) and the Tailscale Ingress
    ``kiwix`` (tagged ``tag:kiwix``).

    Undo: destroying it removes the Ingress, rolls back the cutover (the host's kiwix-serve agent and
    ``svc:kiwix`` back), then the Deployment, ConfigMaps and Service. Nothing of Kiwix's holds data: the ZIMs
    are on the NAS, the library is rebuilt from them.
    """

    def __init__(self, name: str, args: KiwixArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(KIWIX_TYPE, name, {
            "namespace": args.namespace, "hostname": args.hostname, "images": [args.image.ref]}, opts)
        provider = args.provider
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self)
        ns = self.namespace.metadata.name
        labels = {"app": "kiwix"}
        self.scripts = k8s.core.v1.ConfigMap(
            f"{name}-scripts", metadata=k8s.meta.v1.ObjectMetaArgs(name="kiwix-scripts", namespace=ns),
            data={"kiwix-library.sh": script("kiwix-library")},
            opts=kubernetes_opts(provider, self))
        data = k8s.core.v1.VolumeMountArgs(name="data", mount_path="/data", read_only=True)
        library = k8s.core.v1.VolumeMountArgs(name="library", mount_path="/library")
        scripts = k8s.core.v1.VolumeMountArgs(name="scripts", mount_path="/scripts", read_only=True)
        self.service = cluster_service(f"{name}-service", name="kiwix", namespace=ns, labels=labels, port=80,
                                       target_port=KIWIX_PORT, provider=provider, parent=self)
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="kiwix", namespace=ns, labels=labels),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        automount_service_account_token=False,
                        security_context=k8s.core.v1.PodSecurityContextArgs(run_as_user=1001, run_as_group=1001,
                                                                            run_as_non_root=True),
                        init_containers=[k8s.core.v1.ContainerArgs(
                            # the library exists before kiwix-serve reads it (the sidecar's first pass)
                            name="library-init", image=args.image.ref,
                            command=["/bin/sh", "/scripts/kiwix-library.sh", "once"],
                            env=self._library_env(args), volume_mounts=[data, library, scripts],
                            resources=_resources(SIDECAR_RESOURCES), security_context=_restricted())],
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="kiwix-serve", image=args.image.ref,
                                command=["kiwix-serve", "--port", str(KIWIX_PORT), "--library", "--monitorLibrary",
                                         "/library/library.xml"],
                                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=KIWIX_PORT)],
                                volume_mounts=[data, library], resources=_resources(KIWIX_RESOURCES),
                                liveness_probe=_probe("/", KIWIX_PORT, 10, 30),
                                readiness_probe=_probe("/", KIWIX_PORT, 5, 10), security_context=_restricted()),
                            k8s.core.v1.ContainerArgs(
                                name="library", image=args.image.ref,
                                command=["/bin/sh", "/scripts/kiwix-library.sh"], env=self._library_env(args),
                                volume_mounts=[data, library, scripts], resources=_resources(SIDECAR_RESOURCES),
                                security_context=_restricted()),
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(name="data", nfs=k8s.core.v1.NFSVolumeSourceArgs(
                                server=args.nfs_server, path=args.nfs_path, read_only=True)),
                            k8s.core.v1.VolumeArgs(name="library", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()),
                            k8s.core.v1.VolumeArgs(name="scripts", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                                name="kiwix-scripts", default_mode=0o555)),
                        ],
                    ),
                ),
            ),
            opts=kubernetes_opts(provider, self, [self.scripts, *args.share_ready]),
        )
        self.ingress = AppIngress(name, AppIngressArgs(
            provider=provider, namespace=ns, hostname=args.hostname, backend=IngressBackend("kiwix", 80),
            proxy_class=args.proxy_class, legacy=args.legacy,
            ready=(self.deployment,) if args.legacy is not None else (), health_path="/", tags=args.tags),
            pulumi.ResourceOptions(parent=self))
        self.register_outputs({"namespace": ns, "hostname": args.hostname})

    @staticmethod
    def _library_env(args: KiwixArgs) -> list[k8s.core.v1.EnvVarArgs]:
        return [k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in {
            "LIBRARY": "/library/library.xml", "ZIM_DIR": "/data/complete",
            "INTERVAL": str(args.library_interval_seconds)}.items()]
