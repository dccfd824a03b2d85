"""CloudNativePG: the operator, and the PostgreSQL clusters it runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import health
from components.cluster.objects import (
    ImageRef,
    PinnedChart,
    ProxyClassRef,
    helm_chart,
    kubernetes_opts,
    namespace,
    secret_from_config,
    tailscale_load_balancer,
)

CHART = "cloudnative-pg"
CHART_REPOSITORY = "https://cloudnative-pg.github.io/charts"
RELEASE = "cloudnative-pg"  # the operator Deployment and its webhook Service are named after the release
PINNED = PinnedChart(CHART, CHART_REPOSITORY, RELEASE)
API_VERSION = "postgresql.cnpg.io/v1"
OPERATOR_IMAGE = ImageRef("ghcr.io/cloudnative-pg/cloudnative-pg", "1.30.0")  # chart 0.29.0's appVersion
# Plain major tags (":18") are deprecated bullseye "system" images; use <major>-standard-<os>.
POSTGRES_IMAGE = ImageRef("ghcr.io/cloudnative-pg/postgresql", "18-standard-trixie")
PRIMARY_SELECTOR_LABEL = "cnpg.io/instanceRole"  # CNPG >= 1.18; the bare `role` label is deprecated
POSTGRES_PORT = 5432
# Pulumi's Service await waits for a Pod behind the selector: the first primary needs its image pulled
# through zot's pull-through cache (a few hundred MB from ghcr.io) and initdb run; 10 min (the default)
# is tight on a cold cache.
LOAD_BALANCER_TIMEOUT = "20m"
LOAD_BALANCER_TIMEOUTS = pulumi.CustomTimeouts(create=LOAD_BALANCER_TIMEOUT, update=LOAD_BALANCER_TIMEOUT)


@dataclass(frozen=True, slots=True)
class CloudNativePGArgs:
    provider: pulumi.ProviderResource
    chart_version: str
    namespace: str = "cnpg-system"
    image: ImageRef = OPERATOR_IMAGE


class CloudNativePG(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``cnpg-system`` and the ``cloudnative-pg`` chart (operator Deployment,
    webhooks, the ``postgresql.cnpg.io`` CRDs) with its image pinned.

    The CRDs are too large for client-side apply's ``last-applied-configuration`` annotation (256 KiB);
    they go in by server-side apply, which Pulumi's Kubernetes provider uses by default since v4 (its
    ``enableServerSideApply`` must stay unset or true on the provider this component is given).

    Undo: remove every PostgresCluster first (protected: unprotect deliberately, it owns the databases);
    destroying this then removes the operator and its CRDs.
    """

    def __init__(self, name: str, args: CloudNativePGArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        image_refs = (args.image.ref,)
        super().__init__(
            "blumeops:cluster:CloudNativePG",
            name,
            {"namespace": args.namespace, "chartVersion": args.chart_version, "images": list(image_refs)},
            opts,
        )
        # (after super().__init__, which turns the props above into Output attributes)
        self.images: tuple[str, ...] = image_refs
        self.namespace = namespace(f"{name}-namespace", args.namespace, args.provider, self)
        self.chart = helm_chart(
            f"{name}-chart",
            PINNED,
            args.chart_version,
            self.namespace.metadata.name,
            {
                "image": {"repository": args.image.repository, "tag": args.image.tag},
                "crds": {"create": True},
                "config": {"clusterWide": True},
            },
            opts=kubernetes_opts(args.provider, self),
        )
        self.register_outputs({"namespace": self.namespace.metadata.name, "images": list(image_refs)})


@dataclass(frozen=True, slots=True)
class ManagedRole:
    """A PostgreSQL role the operator keeps as declared, its password in the Secret ``<cluster>-<name>``."""

    name: str
    password: pulumi.Input[str]
    login: bool = True
    superuser: bool = False
    createdb: bool = False
    createrole: bool = False
    inherit: bool = True
    connection_limit: int = -1
    in_roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ComputeResources:
    requests_memory: str = "256Mi"
    requests_cpu: str = "100m"
    limits_memory: str = "1Gi"
    limits_cpu: str = "500m"


DEFAULT_PARAMETERS: Mapping[str, str] = {
    "max_connections": "50",
    "shared_buffers": "128MB",
    "password_encryption": "scram-sha-256",
}
# Reaching the database is gated by the tailnet (ACL grants to tag:k8s:5432), so any address may try.
DEFAULT_PG_HBA: tuple[str, ...] = (
    "host all all 0.0.0.0/0 scram-sha-256",
    "host all all ::/0 scram-sha-256",
)


@dataclass(frozen=True, slots=True)
class PostgresClusterArgs:
    provider: pulumi.ProviderResource
    operator: pulumi.Resource  # what installs the Cluster CRD and runs the operator (CloudNativePG.chart)
    proxy_class: ProxyClassRef  # from the TailscaleOperator
    # Tailnet device name of the LoadBalancer (changing it replaces the Service); None: no LoadBalancer here (a
    # later phase serves the database under another name, ``AppLoadBalancer``).
    hostname: str | None
    database: str  # created by bootstrap.initdb, owned by `owner` (password: see owner_secret)
    owner: str
    namespace: str = "databases"
    instances: int = 1
    image: ImageRef = POSTGRES_IMAGE
    storage_size: str = "10Gi"
    storage_class: str = "standard"
    # A role named like ``owner`` among them manages the database owner: CloudNativePG sets the owner's password
    # from the application secret (``bootstrap.initdb.secret``, else the ``-app`` Secret it generated) again
    # after every instance restart, so that role's Secret becomes the application secret (``owner_secret``):
    # the program's password is then the only one (phase 4).
    roles: tuple[ManagedRole, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PARAMETERS))
    pg_hba: tuple[str, ...] = DEFAULT_PG_HBA
    resources: ComputeResources = field(default_factory=ComputeResources)

    def owner_secret(self, cluster: str) -> str | None:
        """The managed owner role's Secret (``<cluster>-<owner>``), or None: the operator's ``-app`` Secret."""
        return f"{cluster}-{self.owner}" if any(role.name == self.owner for role in self.roles) else None


class PostgresCluster(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``<namespace>``; one basic-auth Secret ``<name>-<role>`` per managed
    role; the CloudNativePG ``Cluster`` ``<name>`` (protected: it owns the databases and their volumes);
    and, with a ``hostname``, the Tailscale LoadBalancer ``<name>-tailscale`` that serves its primary at
    ``<hostname>:5432``.
    The operator adds ``<name>-rw``/``-ro``/``-r`` Services and the Secret ``<name>-app`` (key ``uri``).

    Backups: none in the cluster. CNPG backs up only to an object store (Barman Cloud plugin) or CSI
    volume snapshots, and the homelab has neither (minikube's ``standard`` class cannot snapshot; the NAS
    speaks NFS). Dump the databases from outside (``pg_dump`` through the LoadBalancer).

    Undo: the Cluster is protected. Dump the databases, then ``pulumi state unprotect`` its URN; destroying
    it then deletes the Cluster (the operator removes its pods and PVCs, i.e. the data), the Secrets, the
    LoadBalancer (and its tailnet device) and the namespace.
    """

    def __init__(self, name: str, args: PostgresClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        image_refs = (args.image.ref,)
        super().__init__(
            "blumeops:cluster:PostgresCluster",
            name,
            {
                "namespace": args.namespace,
                "instances": args.instances,
                "imageName": args.image.ref,
                "storage": {"size": args.storage_size, "storageClass": args.storage_class},
                "database": args.database,
                "owner": args.owner,
                "roles": [role.name for role in args.roles],
                "hostname": args.hostname,
                **health.props([health.PostgresEndpoint(
                    f"postgres {args.hostname}:{POSTGRES_PORT}", f"{args.hostname}.{health.TAILNET}", POSTGRES_PORT,
                    f"`kubectl -n {args.namespace} get cluster {name}` (the primary must be ready) and the "
                    f"LoadBalancer {name}-tailscale's proxy pod in namespace tailscale")]
                    if args.hostname is not None else []),
            },
            opts,
        )
        # (after super().__init__, which turns the props above into Output attributes)
        self.images: tuple[str, ...] = image_refs
        provider = args.provider
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self)
        ns = self.namespace.metadata.name

        self.role_secrets: dict[str, k8s.core.v1.Secret] = {}
        for role in args.roles:
            self.role_secrets[role.name] = secret_from_config(
                f"{name}-{role.name}",
                name=f"{name}-{role.name}",
                namespace=ns,
                secret_type="kubernetes.io/basic-auth",
                string_data={"username": role.name, "password": role.password},
                provider=provider,
                parent=self,
            )

        self.cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=API_VERSION,
            kind="Cluster",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=ns),
            spec=cluster_spec(name, args),
            # The operator must run (its webhook validates the Cluster) and each role's Secret must exist
            # before the operator reconciles the role.
            opts=kubernetes_opts(provider, self, [args.operator, *self.role_secrets.values()], protect=True),
        )

        # The selector matches the Cluster's primary, which only exists once the Cluster does.
        self.primary_selector: dict[str, str] = {"cnpg.io/cluster": name, PRIMARY_SELECTOR_LABEL: "primary"}
        self.load_balancer: k8s.core.v1.Service | None = None
        if args.hostname is not None:
            self.load_balancer = tailscale_load_balancer(
                f"{name}-tailscale",
                name=f"{name}-tailscale",
                namespace=ns,
                hostname=args.hostname,
                selector=self.primary_selector,
                port=POSTGRES_PORT,
                proxy_class=args.proxy_class,
                provider=provider,
                parent=self,
                depends_on=[self.cluster],
                custom_timeouts=LOAD_BALANCER_TIMEOUTS,
            )
        self.namespace_name = args.namespace
        self.cluster_name = name
        # written by the operator (username, password, uri, ...), or the owner's managed-role Secret
        self.app_secret_name = args.owner_secret(name) or f"{name}-app"
        self.rw_service = f"{name}-rw"
        self.register_outputs({
            "namespace": ns,
            "cluster": name,
            "appSecret": self.app_secret_name,
            "rwService": self.rw_service,
            "hostname": args.hostname,
        })


def _role(cluster: str, role: ManagedRole) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": role.name,
        "ensure": "present",
        "login": role.login,
        "superuser": role.superuser,
        "createdb": role.createdb,
        "createrole": role.createrole,
        "inherit": role.inherit,
        "connectionLimit": role.connection_limit,
        "passwordSecret": {"name": f"{cluster}-{role.name}"},
    }
    if role.in_roles:
        spec["inRoles"] = list(role.in_roles)
    return spec


def cluster_spec(name: str, args: PostgresClusterArgs) -> dict[str, object]:
    """The ``spec`` of the CNPG Cluster (``postgresql.cnpg.io/v1``)."""
    resources = args.resources
    spec: dict[str, object] = {
        "instances": args.instances,
        "imageName": args.image.ref,
        "storage": {"size": args.storage_size, "storageClass": args.storage_class},
        "bootstrap": {"initdb": {"database": args.database, "owner": args.owner,
                                 **({"secret": {"name": owner}} if (owner := args.owner_secret(name)) else {})}},
        "postgresql": {"parameters": dict(args.parameters), "pg_hba": list(args.pg_hba)},
        "resources": {
            "requests": {"memory": resources.requests_memory, "cpu": resources.requests_cpu},
            "limits": {"memory": resources.limits_memory, "cpu": resources.limits_cpu},
        },
    }
    if args.roles:
        spec["managed"] = {"roles": [_role(name, role) for role in args.roles]}
    return spec
