"""Cluster guards: protected state, Tailscale-only exposure, NFS only to the NAS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from rules.kinds import K8sObject, objects, parse_type
from rules.props import Entry, Path, describe, format_path, get_str, is_list, is_mapping, key_of, truthy
from rules.workloads import containers, fields, pod_specs, pod_volumes

TAILSCALE = "tailscale"
DEFAULT_NFS_SERVERS = ("sifaka",)
# The stack's tailnet (`blumeops:tailnet.name`): a short server name allows its MagicDNS name on this tailnet only.
# A policy pack is not given the stack's config, so the pack carries it (config `tailnet`), as images.yaml carries
# the tailnet's registry name.
DEFAULT_TAILNET = "tail8d86e.ts.net"
NFS_CSI_DRIVER = "nfs.csi.k8s.io"
CNPG_GROUP = "postgresql.cnpg.io"
# API groups whose objects expose a workload outside the cluster through something other than the
# Tailscale operator: kind -> None means every kind of the group.
EXPOSURE_GROUPS: dict[str, frozenset[str] | None] = {
    "gateway.networking.k8s.io": None,
    "gateway.networking.x-k8s.io": None,
    "traefik.io": frozenset({"ingressroute", "ingressroutetcp", "ingressrouteudp"}),
    "traefik.containo.us": frozenset({"ingressroute", "ingressroutetcp", "ingressrouteudp"}),
    "networking.istio.io": frozenset({"gateway", "virtualservice"}),
    "projectcontour.io": frozenset({"httpproxy"}),
    "route.openshift.io": frozenset({"route"}),
}
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
FUNNEL_ANNOTATION = "tailscale.com/funnel"


KEPT_ANNOTATION = "blumeops/on-rollback"  # "keep": registered with retain_on_delete (the program's kept state)
HELM_RESOURCE_POLICY = "helm.sh/resource-policy"  # "keep": pulumi-kubernetes' Chart retains the object on delete
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
KEPT = "keep"


def stateful_reason(resource_type: str, props: Any) -> str | None:
    """Why deleting this resource loses data (None when it does not). A *Patch is not the object: deleting a
    patch gives its fields back, the object stays. A PersistentVolume whose reclaim policy is Retain keeps its
    data when the object goes (the NFS share on the NAS); a StatefulSet keeps its claims when it is deleted
    unless its persistentVolumeClaimRetentionPolicy says Delete."""
    for obj in objects(resource_type, props):
        if obj.patch:
            continue
        spec = key_of(obj.props, "spec")
        if obj.is_kind("persistentvolumeclaim"):
            return "a PersistentVolumeClaim holds data"
        if obj.is_kind("persistentvolume") and get_str(spec, "persistentVolumeReclaimPolicy") != "Retain":
            return "a PersistentVolume whose reclaim policy is not Retain deletes its data with it"
        if obj.is_kind("cluster") and obj.in_group(CNPG_GROUP):
            return "the CloudNativePG Cluster owns the databases"
        if obj.is_kind("volumesnapshot") and obj.in_group(SNAPSHOT_GROUP):
            return ("a VolumeSnapshot holds a copy of a volume's data (its content goes with it unless its class's "
                    "deletionPolicy, which the pack cannot see, is Retain)")
        if obj.is_kind("volumesnapshotcontent") and get_str(spec, "deletionPolicy") != "Retain":
            return "a VolumeSnapshotContent whose deletionPolicy is not Retain deletes the snapshot with it"
        deleting = _deleting_policy(spec)
        if deleting is not None:
            return f"its spec.{deleting} is Delete: deleting the object deletes the data it manages"
        if obj.is_kind("statefulset"):
            templates = key_of(spec, "volumeClaimTemplates")
            retention = key_of(spec, "persistentVolumeClaimRetentionPolicy")
            if is_list(templates) and len(templates) > 0 and (
                    get_str(retention, "whenDeleted") == "Delete" or get_str(retention, "whenScaled") == "Delete"):
                return "a StatefulSet whose persistentVolumeClaimRetentionPolicy says Delete deletes its claims"
    return None


SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
# A field saying what deleting the object does to the data behind it: CloudNativePG's Database
# `databaseReclaimPolicy`, a VolumeSnapshotContent's `deletionPolicy`, a PersistentVolume's
# `persistentVolumeReclaimPolicy` (judged above, with its default) and the next CRD's alike.
_DELETING_FIELD = re.compile(r"^(?:[a-z]*reclaimpolicy|deletionpolicy)$")


def _deleting_policy(spec: Any) -> str | None:
    """The spec field that says deleting the object deletes its data (`databaseReclaimPolicy: delete`)."""
    if not is_mapping(spec):
        return None
    for key in list(spec):
        if not isinstance(key, str) or not _DELETING_FIELD.match(key.lower()):
            continue
        try:
            value = spec[key]
        except UnknownValueError:
            continue
        if isinstance(value, str) and value.strip().lower() == "delete":
            return key
    return None


def kept_on_rollback(resource_type: str, props: Any) -> bool:
    """Every object of the resource is marked as kept (``blumeops/on-rollback: keep``, or a chart's
    ``helm.sh/resource-policy: keep``)."""
    for obj in objects(resource_type, props):
        annotations = key_of(key_of(obj.props, "metadata"), "annotations")
        if KEPT not in (get_str(annotations, KEPT_ANNOTATION), get_str(annotations, HELM_RESOURCE_POLICY)):
            return False
    return True


def upserts(provider: Any) -> bool:
    """The Kubernetes provider takes an existing object back on create (``upsertExistingObjects``; the SDK
    sends provider inputs JSON-encoded, so "true")."""
    if provider is None or getattr(provider, "resource_type", None) != KUBERNETES_PROVIDER:
        return False
    value = key_of(provider.props, "upsertExistingObjects")
    return value is True or value == "true"



def validate_protected(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    reason = stateful_reason(args.resource_type, args.props)
    if reason is None or args.opts.protect:
        return
    subject = describe(args.resource_type, args.name, args.props)
    if kept_on_rollback(args.resource_type, args.props):
        if upserts(args.provider):
            return
        report_violation(
            f"{subject} is kept on rollback ({KEPT_ANNOTATION}: keep) but its provider does not set "
            "upsertExistingObjects, so raising the target again fails with AlreadyExists on the kept object: "
            "register it with the kept-state provider (components.cluster.kept_opts).",
            None,
        )
        return
    report_violation(
        f"{subject} is neither protected nor kept on rollback: {reason}, and deleting or replacing it loses "
        "that data. Keep it (components.cluster.kept_opts or kept_claim: retain_on_delete on the kept-state "
        f"provider, annotated {KEPT_ANNOTATION}: keep) or, for state no rollback may remove, "
        "`opts=pulumi.ResourceOptions(protect=True)`.",
        None,
    )


TAILSCALE_FIX = ("expose it through the Tailscale operator instead (Ingress class `tailscale` or a LoadBalancer "
                 "with `loadBalancerClass: tailscale`)")


def _object_exposure(obj: K8sObject) -> Iterator[str]:
    at = f"{format_path(obj.path)}: " if obj.path else ""
    for group, kinds in EXPOSURE_GROUPS.items():
        if obj.in_group(group) and (kinds is None or obj.is_kind(*kinds)):
            yield (f"{at}is {obj.label} ({group}), which exposes workloads without the Tailscale operator: "
                   f"{TAILSCALE_FIX}")
            return
    if obj.is_kind("ingress") and not obj.patch:
        spec = key_of(obj.props, "spec")
        ingress_class = key_of(spec, "ingressClassName")
        annotation = key_of(key_of(key_of(obj.props, "metadata"), "annotations"), INGRESS_CLASS_ANNOTATION)
        if ingress_class is None and annotation is None:
            yield f"{at}is an Ingress with ingressClassName none: set `ingressClassName: tailscale`"


def _field_exposure(entry: Entry) -> str | None:
    value, name, where = entry.value, entry.name, format_path(entry.path)
    if name == "type" and isinstance(value, str):
        if value.lower() == "nodeport":
            return f"{where} is NodePort (every node's address opens a port): {TAILSCALE_FIX}"
        if value.lower() == "loadbalancer":
            lb_class = key_of(entry.parent, "loadBalancerClass")
            if lb_class != TAILSCALE:
                shown = f"`{lb_class}`" if lb_class else "none"
                return (f"{where} is a LoadBalancer with loadBalancerClass {shown}: set "
                        "`loadBalancerClass: tailscale`")
    elif name == "hostnetwork" and truthy(value):
        return f"{where} is true: the pod shares the node's network and every port it opens is exposed"
    elif name == "hostport" and is_mapping(value):  # a chart's `hostPort: {enabled: true, ports: ...}`
        if truthy(key_of(value, "enabled")):
            return f"{where} is enabled: it opens ports on the node's address: {TAILSCALE_FIX}"
    elif name == "hostport" and value not in (None, 0, "0", "") and not isinstance(value, bool):
        port = int(value) if isinstance(value, float) and value.is_integer() else value
        return f"{where} {port} opens the port on the node's address: {TAILSCALE_FIX}"
    elif name == "externalips" and is_list(value) and len(value) > 0:
        return f"{where} makes the Service answer on {', '.join(str(v) for v in value)}: {TAILSCALE_FIX}"
    elif _names_ingress_class(entry) and isinstance(value, str) and value != TAILSCALE:
        return f"{where} is `{value}`: set it to `tailscale`"
    elif name == "ingress" and is_mapping(value) and truthy(key_of(value, "enabled")):
        ingress_class = key_of(value, "ingressClassName") or key_of(value, "className")
        if ingress_class is None:
            return f"{where} is enabled without an ingress class: set `ingressClassName: tailscale`"
    elif name == FUNNEL_ANNOTATION and truthy(value):
        return f"{where} turns on Tailscale Funnel, which publishes the service on the public Internet"
    return None


def _names_ingress_class(entry: Entry) -> bool:
    """`ingressClassName`, the legacy annotation, or a chart's `ingress.className`."""
    return entry.name in ("ingressclassname", INGRESS_CLASS_ANNOTATION) or (
        entry.name == "classname" and _under(entry, "ingress"))


def _under(entry: Entry, key: str) -> bool:
    parent_key = entry.path[-2] if len(entry.path) >= 2 else None
    return isinstance(parent_key, str) and parent_key.lower() == key


EXPOSURE_KEYS = frozenset({"type", "hostnetwork", "hostport", "externalips", "ingressclassname", "classname",
                           "ingress", "loadbalancerclass", INGRESS_CLASS_ANNOTATION, FUNNEL_ANNOTATION})
NFS_KEYS = frozenset({"nfs", "server", "csi", "driver", "volumeattributes", "provisioner", "parameters", "volumes",
                      "mountoptions"})


_FUNNEL_WORD = re.compile(r"\bfunnel\b", re.IGNORECASE)
_FUNNEL_ATTR = re.compile(r"[\"']funnel[\"']", re.IGNORECASE)


def _funnel_problems(resource_type: str, props: Any) -> Iterator[str]:
    """Tailscale Funnel publishes a service on the public Internet: never from a host step (`tailscale
    funnel`, `serve --funnel`), never granted in the tailnet policy (the `funnel` node attribute)."""
    package = parse_type(resource_type).package
    if package not in ("command", "tailscale"):
        return
    pattern = _FUNNEL_WORD if package == "command" else _FUNNEL_ATTR
    for name in list(props):
        try:
            value = props[name]
        except UnknownValueError:
            continue
        if name != "connection" and isinstance(value, str) and pattern.search(value):
            yield (f"`{name}` uses Tailscale Funnel, which publishes a service on the public Internet: serve it "
                   "on the tailnet only (`tailscale serve`, no funnel attribute in the policy)")


def exposure_problems(resource_type: str, props: Any) -> Iterator[str]:
    """What exposes the resource outside the tailnet. An unknown value at a judged key is raised after
    the rest is reported (the engine then says the rule could not run on it during preview)."""
    for obj in objects(resource_type, props):
        yield from _object_exposure(obj)
    yield from _funnel_problems(resource_type, props)
    deferred: UnknownValueError | None = None
    for entry in fields(resource_type, props):
        if entry.unknown is not None:
            if entry.name in EXPOSURE_KEYS:
                deferred = deferred or entry.unknown
            continue
        problem = _field_exposure(entry)
        if problem:
            yield problem
    if deferred is not None:
        raise deferred


def validate_exposure(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for problem in exposure_problems(args.resource_type, args.props):
        report_violation(f"{describe(args.resource_type, args.name, args.props)} {problem}.", None)


def nfs_server_allowed(server: str, allowed: tuple[str, ...], tailnet: str = DEFAULT_TAILNET) -> bool:
    """`sifaka` allows `sifaka` and its MagicDNS name on the stack's tailnet, `sifaka.<tailnet>` (another tailnet's
    `sifaka.evil.ts.net` is another machine)."""
    host = server.strip().lower().rstrip(".")
    suffix = tailnet.strip().lower().strip(".")
    for name in allowed:
        name = name.strip().lower().rstrip(".")
        if host == name or ("." not in name and suffix and host == f"{name}.{suffix}"):
            return True
    return False


def _in_volume_list(path: Path) -> bool:
    return len(path) >= 2 and isinstance(path[-1], int) and str(path[-2]).lower() == "volumes"


def _csi_nfs_server(csi: Any) -> tuple[bool, str | None]:
    """(is the NFS CSI driver, its server) for a `csi` mapping."""
    driver = key_of(csi, "driver")
    if not isinstance(driver, str) or "nfs" not in driver.lower():
        return False, None
    server = key_of(key_of(csi, "volumeAttributes"), "server")
    return True, server if isinstance(server, str) else None


# NFS mount options that send the mount to another address than `server`.
_MOUNT_ADDRESS = re.compile(r"^(addr|mountaddr|mounthost)=(.+)$", re.IGNORECASE)


def nfs_servers(resource_type: str, props: Any) -> Iterator[tuple[str, str | None]]:
    """(where, server) for every NFS mount the resource declares, at any depth: `nfs` volumes, the NFS
    CSI driver (PersistentVolume or inline), StorageClasses of an NFS provisioner and the
    `NFS_SERVER` setting of nfs-subdir-external-provisioner. server None: an NFS mount that names none."""
    deferred: UnknownValueError | None = None
    for entry in fields(resource_type, props):
        if entry.unknown is not None:
            if entry.name in NFS_KEYS:
                deferred = deferred or entry.unknown
            continue
        value, name = entry.value, entry.name
        if name == "volumes" and is_list(value):
            for index, volume in enumerate(value):
                if not is_mapping(volume):
                    continue
                label = f"volume '{get_str(volume, 'name') or f'#{index}'}'"
                server = key_of(key_of(volume, "nfs"), "server")
                if isinstance(server, str):
                    yield label, server
                is_nfs, csi_server = _csi_nfs_server(key_of(volume, "csi"))
                if is_nfs:
                    yield f"{label} (CSI driver {key_of(key_of(volume, 'csi'), 'driver')})", csi_server
        elif name == "nfs" and is_mapping(value) and not _in_volume_list(entry.path[:-1]):
            server = key_of(value, "server")
            if isinstance(server, str):
                yield format_path(entry.path), server
        elif name == "csi" and is_mapping(value) and not _in_volume_list(entry.path[:-1]):
            is_nfs, csi_server = _csi_nfs_server(value)
            if is_nfs:
                yield f"{format_path(entry.path)} ({key_of(value, 'driver')})", csi_server
        elif name == "provisioner" and isinstance(value, str) and "nfs" in value.lower():
            server = key_of(key_of(entry.parent, "parameters"), "server")
            yield f"{format_path(entry.path)} {value}", server if isinstance(server, str) else None
        elif name == "mountoptions":
            options = value.split(",") if isinstance(value, str) else (list(value) if is_list(value) else [])
            for option in options:
                for part in str(option).split(","):
                    match = _MOUNT_ADDRESS.match(part.strip())
                    if match:
                        yield f"{format_path(entry.path)} {match[1]}=", match[2]
        elif name == "name" and isinstance(value, str) and value.upper() == "NFS_SERVER":
            server = key_of(entry.parent, "value")
            if isinstance(server, str):
                yield f"{format_path(entry.path[:-1])} (NFS_SERVER)", server
    if deferred is not None:
        raise deferred


def validate_nfs(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config() or {}
    configured = config.get("allowedServers")
    allowed = tuple(str(s) for s in configured) if configured else DEFAULT_NFS_SERVERS
    tailnet = str(config.get("tailnet") or DEFAULT_TAILNET)
    subject = describe(args.resource_type, args.name, args.props)
    for where, server in nfs_servers(args.resource_type, args.props):
        if server is None:
            report_violation(
                f"{subject}: {where} mounts NFS without naming its server, so it cannot be checked against the "
                f"allowed NFS servers ({', '.join(allowed)}): name the server (`server`).",
                None,
            )
        elif not nfs_server_allowed(server, allowed, tailnet):
            report_violation(
                f"{subject}: {where} mounts NFS from '{server}', which is not an allowed NFS server "
                f"({', '.join(allowed)}, short names also as <name>.{tailnet}): use the NAS, or add the server to "
                "the `nfs-allowed-servers` policy config `allowedServers`.",
                None,
            )


protect_stateful_resources = ResourceValidationPolicy(
    name="protect-stateful-resources",
    description=(
        "What holds data (PersistentVolumeClaims, PersistentVolumes and VolumeSnapshotContents that delete their data, "
        "VolumeSnapshots, the CloudNativePG Cluster, any object whose spec's *ReclaimPolicy/deletionPolicy is Delete, "
        "StatefulSets that delete their claims) is protected, or kept on rollback (annotated "
        "blumeops/on-rollback: keep, on a provider with upsertExistingObjects)."
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
                "description": "NFS servers pods may mount; a short name also allows <name>.<tailnet>.",
            },
            "tailnet": {
                "type": "string",
                "default": DEFAULT_TAILNET,
                "description": "The stack's tailnet (blumeops:tailnet.name): where a short server name's MagicDNS "
                               "name lives.",
            },
        }
    ),
)

# Capabilities that give a container the node (or every other container on it).
DANGEROUS_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "SYS_RAWIO", "NET_ADMIN",
                                    "DAC_READ_SEARCH", "SYS_BOOT", "BPF", "PERFMON"})
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def workload_problems(resource_type: str, props: Any) -> Iterator[str]:
    """What in a resource reaches past its own pod: a host namespace, a privileged or over-capable container,
    a volume of the node's own files, a binding to cluster-admin; at any depth (chart children, List items,
    templates of Deployments, Jobs, CronJobs and custom resources alike)."""
    for path, spec in pod_specs(resource_type, props):
        for key in HOST_NAMESPACES:
            if truthy(key_of(spec, key)):
                yield f"the pod spec at {format_path(path)} shares the node's {key[4:]} namespace ({key}: true)"
    for label, container in containers(resource_type, props):
        context = key_of(container, "securityContext")
        if truthy(key_of(context, "privileged")):
            yield f"{label} runs privileged (securityContext.privileged: true)"
        added = key_of(key_of(context, "capabilities"), "add")
        for capability in (added if is_list(added) else []):
            name = str(capability).upper().removeprefix("CAP_")
            if name in DANGEROUS_CAPABILITIES:
                yield f"{label} adds the capability {name}"
    for name, volume in pod_volumes(resource_type, props):
        host_path = key_of(volume, "hostPath")
        if host_path is not None:
            yield f"the volume '{name}' mounts the node's {get_str(host_path, 'path') or '(unnamed path)'} (hostPath)"
    # the node's files reached otherwise: a PersistentVolume a pod claims, a custom resource's hostPath
    for entry in fields(resource_type, props):
        if entry.unknown is None and entry.name == "hostpath" and not _in_volume_list(entry.path[:-1]):
            node_path = get_str(entry.value, "path") if is_mapping(entry.value) else entry.value
            if isinstance(node_path, str) and node_path.strip():
                yield (f"{format_path(entry.path)} names the node's {node_path} (hostPath): a pod that claims it "
                       "mounts it")
    for obj in objects(resource_type, props):
        if obj.is_kind("persistentvolume") and not obj.patch:
            local = key_of(key_of(obj.props, "spec"), "local")
            if local is not None:
                yield (f"the {obj.label} is a local volume of the node's {get_str(local, 'path') or '(unnamed path)'}:"
                       " a pod that claims it mounts the node's files")
        if obj.is_kind("clusterrolebinding", "rolebinding"):
            role = key_of(obj.props, "roleRef")
            if get_str(role, "name") == "cluster-admin" and get_str(role, "kind") in (None, "ClusterRole"):
                yield f"the {obj.label} binds cluster-admin"
            yield from _everyone_subjects(obj)


# Subjects that are the API server's superusers or everyone: binding a role to them gives it to every client.
EVERYONE_SUBJECTS = frozenset({"system:masters", "system:authenticated", "system:unauthenticated",
                               "system:anonymous"})


def _everyone_subjects(obj: K8sObject) -> Iterator[str]:
    subjects = key_of(obj.props, "subjects")
    for subject in subjects if is_list(subjects) else ():
        name = get_str(subject, "name") if is_mapping(subject) else None
        if name is not None and name.strip().lower() in EVERYONE_SUBJECTS:
            yield (f"the {obj.label} binds {name} ({get_str(subject, 'kind') or 'a subject'}): "
                   "that is every client of the API server, or its superusers")


def wildcard_rules(obj: K8sObject) -> Iterator[str]:
    """A (Cluster)Role rule granting every verb or every resource: cluster-admin by another name."""
    rules = key_of(obj.props, "rules")
    for index, rule in enumerate(rules if is_list(rules) else ()):
        if not is_mapping(rule):
            continue
        verbs = [str(v) for v in key_of(rule, "verbs") or ()] if is_list(key_of(rule, "verbs")) else []
        resources = [str(r) for r in key_of(rule, "resources") or ()] if is_list(key_of(rule, "resources")) else []
        urls = [str(u) for u in key_of(rule, "nonResourceURLs") or ()] \
            if is_list(key_of(rule, "nonResourceURLs")) else []
        if "*" in verbs or "*" in resources or ("*" in urls and any(v not in ("get", "head") for v in verbs)):
            what = "every verb" if "*" in verbs else "every resource" if "*" in resources else "every URL"
            yield f"the {obj.label}'s rules[{index}] grants {what} ('*')"


# Roles that need every verb on every resource, reviewed: Argo CD's application controller applies whatever the
# Applications it syncs hold, and its server deletes and patches what it shows. Pulumi names (the chart's children).
DEFAULT_WILDCARD_ROLES = ("argocd-chart:argocd-application-controller", "argocd-chart:argocd-server")


def validate_workload_security(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config() or {}
    allowed = {str(name) for name in config.get("allowedResources") or ()}
    if args.name in allowed:
        return
    subject = describe(args.resource_type, args.name, args.props)
    for problem in workload_problems(args.resource_type, args.props):
        report_violation(
            f"{subject}: {problem}, which gives it the node or the cluster: drop it; a workload that truly needs it "
            "is named in the `workload-security` policy config `allowedResources` (reviewed by a human).",
            None,
        )
    configured = config.get("wildcardRoles")
    wildcard_roles = {str(name) for name in configured} if configured is not None else set(DEFAULT_WILDCARD_ROLES)
    if args.name in wildcard_roles:
        return
    for obj in objects(args.resource_type, args.props):
        if obj.is_kind("clusterrole", "role"):
            for problem in wildcard_rules(obj):
                report_violation(
                    f"{subject}: {problem}, which is cluster-admin (or all of a namespace) to whatever it is bound "
                    "to: list the verbs and resources it needs; a role that truly needs it is named in the "
                    "`workload-security` policy config `wildcardRoles` (reviewed by a human).",
                    None,
                )


workload_security = ResourceValidationPolicy(
    name="workload-security",
    description=("No workload reaches past its pod: no host network, PID or IPC namespace, no privileged container "
                 "or node-level capability (SYS_ADMIN, NET_ADMIN, ALL, ...), no hostPath volume or local/hostPath "
                 "PersistentVolume, no binding to cluster-admin or system:masters, no wildcard (Cluster)Role."),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_workload_security,
    config_schema=PolicyConfigSchema(properties={
        "allowedResources": {
            "type": "array", "items": {"type": "string"}, "default": [],
            "description": "Pulumi names of resources allowed to (a driver that must, reviewed)."},
        "wildcardRoles": {
            "type": "array", "items": {"type": "string"}, "default": list(DEFAULT_WILDCARD_ROLES),
            "description": "Pulumi names of (Cluster)Roles allowed rules with verbs or resources '*' (reviewed)."}}),
)

POLICIES = [protect_stateful_resources, tailscale_only_exposure, nfs_allowed_servers, workload_security]
