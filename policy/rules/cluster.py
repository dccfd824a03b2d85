"""Cluster guards: protected state, Tailscale-only exposure, NFS only to the NAS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from rules.props import describe, get, get_str, is_list, is_mapping
from rules.workloads import CNPG_CLUSTER, pod_volumes

PVC = "kubernetes:core/v1:PersistentVolumeClaim"
PV = "kubernetes:core/v1:PersistentVolume"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
TAILSCALE = "tailscale"
DEFAULT_NFS_SERVERS = ("sifaka",)
NFS_CSI_DRIVER = "nfs.csi.k8s.io"


def stateful_reason(resource_type: str, props: Any) -> str | None:
    """Why this resource holds state worth protecting (None when it does not)."""
    if resource_type == PVC:
        return "a PersistentVolumeClaim holds data"
    if resource_type == PV:
        return "a PersistentVolume points at data"
    if resource_type == CNPG_CLUSTER:
        return "the CloudNativePG Cluster owns the databases"
    if resource_type == STATEFUL_SET:
        templates = get(props, "spec", "volumeClaimTemplates")
        if is_list(templates) and len(templates) > 0:
            return "a StatefulSet with volumeClaimTemplates owns its claims"
    return None


def validate_protected(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    reason = stateful_reason(args.resource_type, args.props)
    if reason is None or args.opts.protect:
        return
    report_violation(
        f"{describe(args.resource_type, args.name, args.props)} is not protected: {reason}, and deleting or "
        "replacing it loses that data. Register it with `opts=pulumi.ResourceOptions(protect=True)`.",
        None,
    )


def exposure_problems(resource_type: str, props: Any) -> Iterator[str]:
    if resource_type == SERVICE:
        service_type = get_str(props, "spec", "type") or "ClusterIP"
        if service_type == "NodePort":
            yield "is a NodePort Service: expose it through the Tailscale operator instead (Ingress class " \
                  "`tailscale` or a LoadBalancer with `loadBalancerClass: tailscale`)"
        elif service_type == "LoadBalancer":
            lb_class = get_str(props, "spec", "loadBalancerClass")
            if lb_class != TAILSCALE:
                shown = f"`{lb_class}`" if lb_class else "none"
                yield f"is a LoadBalancer Service with loadBalancerClass {shown}: set `loadBalancerClass: tailscale`"
    elif resource_type == INGRESS:
        ingress_class = get_str(props, "spec", "ingressClassName")
        if ingress_class != TAILSCALE:
            shown = f"`{ingress_class}`" if ingress_class else "none"
            yield f"is an Ingress with ingressClassName {shown}: set `ingressClassName: tailscale`"


def validate_exposure(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in exposure_problems(args.resource_type, args.props):
        report_violation(f"{describe(args.resource_type, args.name, args.props)} {problem}.", None)


def nfs_server_allowed(server: str, allowed: tuple[str, ...]) -> bool:
    """`sifaka` allows `sifaka` and its MagicDNS name `sifaka.<tailnet>.ts.net`."""
    host = server.strip().lower().rstrip(".")
    for name in allowed:
        name = name.lower()
        if host == name:
            return True
        if "." not in name and host.startswith(name + ".") and host.endswith(".ts.net"):
            return True
    return False


def nfs_servers(resource_type: str, props: Any) -> Iterator[tuple[str, str]]:
    """(where, server) for every NFS mount the resource declares."""
    if resource_type == PV:
        server = get_str(props, "spec", "nfs", "server")
        if server is not None:
            yield "spec.nfs", server
        csi = get(props, "spec", "csi")
        if is_mapping(csi) and get_str(csi, "driver") == NFS_CSI_DRIVER:
            csi_server = get_str(csi, "volumeAttributes", "server")
            if csi_server is not None:
                yield "spec.csi (nfs.csi.k8s.io)", csi_server
    for name, volume in pod_volumes(resource_type, props):
        server = get_str(volume, "nfs", "server")
        if server is not None:
            yield f"volume '{name}'", server


def validate_nfs(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config() or {}
    configured = config.get("allowedServers")
    allowed = tuple(str(s) for s in configured) if configured else DEFAULT_NFS_SERVERS
    for where, server in nfs_servers(args.resource_type, args.props):
        if not nfs_server_allowed(server, allowed):
            report_violation(
                f"{describe(args.resource_type, args.name, args.props)}: {where} mounts NFS from '{server}', "
                f"which is not an allowed NFS server ({', '.join(allowed)}): use the NAS, or add the server to "
                "the `nfs-allowed-servers` policy config `allowedServers`.",
                None,
            )


protect_stateful_resources = ResourceValidationPolicy(
    name="protect-stateful-resources",
    description=(
        "PersistentVolumeClaims, PersistentVolumes, the CloudNativePG Cluster and StatefulSets with "
        "volumeClaimTemplates are registered with protect=True."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_protected,
)

tailscale_only_exposure = ResourceValidationPolicy(
    name="tailscale-only-exposure",
    description=(
        "Services leave the cluster only through the Tailscale operator: LoadBalancers have "
        "loadBalancerClass tailscale, Ingresses ingressClassName tailscale, and there are no NodePorts."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_exposure,
)

nfs_allowed_servers = ResourceValidationPolicy(
    name="nfs-allowed-servers",
    description="NFS volumes (PersistentVolumes and pod volumes) mount only from allowed servers (the NAS sifaka).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_nfs,
    config_schema=PolicyConfigSchema(
        properties={
            "allowedServers": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(DEFAULT_NFS_SERVERS),
                "description": "NFS servers pods may mount; a short name also allows <name>.<tailnet>.ts.net.",
            }
        }
    ),
)

POLICIES = [protect_stateful_resources, tailscale_only_exposure, nfs_allowed_servers]
