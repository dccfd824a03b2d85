"""Storage outside the cluster: an NFS export of the NAS as a PersistentVolume, and the probe that proves a pod
can mount and read it before anything depends on it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import health
from components.cluster.objects import ImageRef, kubernetes_opts, namespace

NFS_SHARE_TYPE = "blumeops:cluster:NfsShare"
# busybox, already catalogued (Grafana's chart runs it): `ls` is all the probe needs.
PROBE_IMAGE = ImageRef("docker.io/library/busybox", "1.38.0")
PROBE_UID = 1000  # the uid Transmission writes the share as (PUID 1000)
PROBE_TIMEOUT = "5m"
_PATH = re.compile(r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class NfsExport:
    """An export of the NAS: ``server:path``, mounted by the node's kubelet (the node resolves ``server``)."""

    server: str
    path: str

    def __post_init__(self) -> None:
        if not _HOST.match(self.server):
            raise ValueError(f"NFS server {self.server!r} is not a hostname")
        if not _PATH.match(self.path) or "/../" in f"{self.path}/":
            raise ValueError(f"NFS export path {self.path!r} is not an absolute path")

    def __str__(self) -> str:
        return f"{self.server}:{self.path}"


@dataclass(frozen=True, slots=True)
class NfsShareArgs:
    provider: pulumi.ProviderResource
    export: NfsExport
    volume_name: str
    # the networks the NAS must export to (the pods' traffic arrives NATed from the node's host)
    allowed_networks: tuple[str, ...]
    capacity: str = "1Ti"
    # What the probe lists (Transmission's finished downloads); it must exist on the export.
    probe_directory: str = "complete"
    probe_namespace: str = "storage-probe"
    probe_image: ImageRef = PROBE_IMAGE

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", self.probe_directory):
            raise ValueError(f"probe directory {self.probe_directory!r} must be one plain directory name")

    @property
    def export_rule(self) -> str:
        """What the NAS must allow, in words (the probe's failure message and the plan say it)."""
        return (f"the NAS must export {self.export.path} over NFS to {', '.join(self.allowed_networks)} "
                f"(where the pods' traffic comes from), read-write, with {self.probe_directory}/ "
                f"readable by uid {PROBE_UID}")

    def probe_environment(self) -> dict[str, str]:
        """What the probe's constant script reads: no value reaches its command string."""
        return {"PROBE_DIRECTORY": f"/share/{self.probe_directory}", "EXPORT": f"{self.export}/{self.probe_directory}",
                "EXPORT_RULE": self.export_rule}


# The probe, constant: it lists the directory and, when it cannot, says what the NAS must allow.
PROBE_SCRIPT = ('if entries=$(ls -1 "$PROBE_DIRECTORY"); then '
                'echo "$EXPORT is readable: $(printf "%s" "$entries" | grep -c "") entries"; '
                'else echo "cannot list $EXPORT from a pod: $EXPORT_RULE" >&2; exit 1; fi')


class NfsShare(pulumi.ComponentResource):
    """Puts on the cluster: the PersistentVolume ``volume_name`` (NFS ``server:path``, ``capacity``,
    ReadWriteMany, reclaim ``Retain``, ``storageClassName ""``: only a claim that names it binds it); the
    namespace ``storage-probe`` and the Job ``nfs-probe`` in it, which mounts the export read-only and lists
    ``<probe_directory>/``; Pulumi waits for the Job to complete, so whatever depends on this component waits
    for the proof. A probe that cannot mount stays Pending with kubelet's mount error in its events (`kubectl
    -n storage-probe describe pod`); one that can mount but not read says what the NAS must allow.

    Undo: destroying it removes the Job, its namespace and the PersistentVolume object. The data is on the NAS
    and stays: Kubernetes never deletes an NFS export's files (reclaim Retain), and nothing here writes.
    """

    def __init__(self, name: str, args: NfsShareArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            NFS_SHARE_TYPE,
            name,
            {
                "export": str(args.export),
                "volume": args.volume_name,
                "capacity": args.capacity,
                "exportRule": args.export_rule,
                "onRollback": (f"the PersistentVolume {args.volume_name} object goes; the data stays on "
                               f"{args.export.server} (NFS, reclaim Retain)"),
                "images": [args.probe_image.ref],
                **health.props([], preconditions=[health.Precondition(
                    f"{args.export} mountable by pods", args.export_rule)]),
            },
            opts,
        )
        provider = args.provider
        self.volume_name = args.volume_name
        self.export = args.export
        self.volume = k8s.core.v1.PersistentVolume(
            f"{name}-volume",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.volume_name, labels={"blumeops/share": name}),
            spec=k8s.core.v1.PersistentVolumeSpecArgs(
                capacity={"storage": args.capacity},
                access_modes=["ReadWriteMany"],
                persistent_volume_reclaim_policy="Retain",
                storage_class_name="",
                nfs=k8s.core.v1.NFSVolumeSourceArgs(server=args.export.server, path=args.export.path),
            ),
            opts=kubernetes_opts(provider, self),
        )
        self.probe_namespace = namespace(f"{name}-probe-namespace", args.probe_namespace, provider, self)
        self.probe = k8s.batch.v1.Job(
            f"{name}-probe",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="nfs-probe", namespace=self.probe_namespace.metadata.name,
                                                annotations={"blumeops/on-failure": args.export_rule}),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=2,
                active_deadline_seconds=240,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="Never",
                        automount_service_account_token=False,
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_user=PROBE_UID, run_as_group=PROBE_UID, run_as_non_root=True),
                        containers=[k8s.core.v1.ContainerArgs(
                            name="probe",
                            image=args.probe_image.ref,
                            command=["/bin/sh", "-c", PROBE_SCRIPT],
                            env=[k8s.core.v1.EnvVarArgs(name=key, value=value)
                                 for key, value in args.probe_environment().items()],
                            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="share", mount_path="/share",
                                                                       read_only=True)],
                            resources=k8s.core.v1.ResourceRequirementsArgs(
                                requests={"memory": "8Mi", "cpu": "10m"}, limits={"memory": "32Mi", "cpu": "100m"}),
                            security_context=k8s.core.v1.SecurityContextArgs(
                                allow_privilege_escalation=False, read_only_root_filesystem=True,
                                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"])),
                        )],
                        volumes=[k8s.core.v1.VolumeArgs(name="share", nfs=k8s.core.v1.NFSVolumeSourceArgs(
                            server=args.export.server, path=args.export.path, read_only=True))],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                kubernetes_opts(provider, self, [self.volume]),
                pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create=PROBE_TIMEOUT,
                                                                             update=PROBE_TIMEOUT))),
        )
        self.register_outputs({"volume": args.volume_name, "export": str(args.export)})
