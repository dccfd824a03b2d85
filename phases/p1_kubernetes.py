"""Phase 1, Kubernetes infrastructure: the Tailscale operator, Argo CD, CloudNativePG and ``blumeops-pg``.

Takes from phase 0 the cluster's Kubernetes provider, the Tailscale provider and the tailnet's policy (which
defines and owns the operator's tags). Gives ``PROXY_CLASS`` (every later Ingress and LoadBalancer names it
and depends on it) and ``POSTGRES`` (the PostgresCluster: its namespace, ``-app`` Secret, ``-rw`` Service).
Later phases amend, in their own modules, the PostgreSQL tailnet name (``PG_HOSTNAME``, phase 4, which also
retires phase 1's own LoadBalancer ``k8s-pg``: ``PG_OWN_LOAD_BALANCER``), the roles applications log in as
(``PG_APP_ROLES``, phase 4 and later) and the forge ArgoCD reads (``FORGE_REPOSITORY``, phase 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.cluster import (
    ArgoCD,
    ArgoCDArgs,
    CloudNativePG,
    CloudNativePGArgs,
    GitRepoCredentials,
    ManagedRole,
    OauthCredentials,
    PostgresCluster,
    PostgresClusterArgs,
    ProxyClassRef,
    TailnetEgress,
    TailscaleOperator,
    TailscaleOperatorArgs,
)
from phases import Amendable, Handover, Key, Later, Phase
from phases import settings as s
from phases.p0_foundation import KUBERNETES, TAILNET_ACL, TAILSCALE

FORGE_WEB_PORT = 3001
FORGE_SSH_PORT = 2200
FORGE_OWNER = "eblume"


@s.section("operator")
class OperatorSettings:
    """The Tailscale operator: its chart, and its OAuth client (given, or created by the program)."""

    chart_version: str = s.setting(s.chart_version, "tailscale-operator chart (and image) version",
                                   default="1.102.3")
    create_oauth_client: bool = s.setting(
        s.boolean, "create the operator's OAuth client with the program instead of using operator.oauthClient*",
        default=False, example="true")
    oauth_client_id: str | None = s.setting(
        s.text, "OAuth client id of the Tailscale operator", required=True, unless="createOauthClient",
        stand_in="offline-operator-client-id", example="<client-id>")
    oauth_client_secret: pulumi.Output[str] | None = s.setting(
        s.text, "OAuth client secret of the Tailscale operator", secret=True, required=True,
        unless="createOauthClient", example="<client-secret>")

    def __post_init__(self) -> None:
        if not self.create_oauth_client and (self.oauth_client_id is None or self.oauth_client_secret is None):
            raise ValueError("the operator needs oauthClientId and oauthClientSecret unless createOauthClient is true")


@s.section("argocd")
class ArgoCDSettings:
    """Argo CD: its chart and how it reads the forge."""

    chart_version: str = s.setting(s.chart_version, "argo-cd chart version", default="10.1.1")
    forge_ssh_private_key: pulumi.Output[str] = s.setting(
        s.multiline_secret, "SSH key (a Forgejo user key) ArgoCD reads the forge with", secret=True, required=True,
        example="< forge-argocd-key")
    # The forge's built-in SSH server offered an RSA key in the original (its known-hosts entry was ssh-rsa):
    # ask ssh-keyscan for every type and take the first line it prints.
    forge_host_key: str = s.setting(
        s.host_key, "SSH host key of the forge on indri:2200", required=True,
        stand_in="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9mZmxpbmUtc3RhbmQtaW4tbm90LWZvcmdlcy1rZXkh",
        example="\"$(ssh-keyscan -p 2200 indri.tail8d86e.ts.net 2>/dev/null | grep -v '^#' | head -n 1 "
                "| cut -d' ' -f2-)\"")


@s.section("cnpg")
class CloudNativePGSettings:
    """The CloudNativePG operator."""

    chart_version: str = s.setting(s.chart_version, "cloudnative-pg chart version", default="0.29.0")


@s.section("postgres")
class PostgresSettings:
    """blumeops-pg, the cluster's PostgreSQL, and its roles."""

    eblume_password: pulumi.Output[str] = s.setting(
        s.text, "password of the eblume superuser role", secret=True, required=True, example="<password>")
    borgmatic_password: pulumi.Output[str] = s.setting(
        s.text, "password of the borgmatic (read-only) role", secret=True, required=True, example="<password>")
    instances: int = s.setting(s.count(1, 9), "PostgreSQL instances of blumeops-pg", default=1, example="1")
    storage_size: str = s.setting(s.storage_quantity, "volume size of each blumeops-pg instance", default="10Gi",
                                  example="10Gi")
    storage_class: str = s.setting(s.dns_label, "StorageClass of the blumeops-pg volumes", default="standard",
                                   example="standard")


SETTINGS = (OperatorSettings, ArgoCDSettings, CloudNativePGSettings, PostgresSettings)

# What phase 1 gives the later phases.
PROXY_CLASS = Key("cluster.proxy_class", ProxyClassRef, "the ProxyClass every Tailscale Ingress/LoadBalancer names")
POSTGRES = Key("postgres.cluster", PostgresCluster, "blumeops-pg: its namespace, -app Secret and -rw Service")

# What later phases change here, in their own modules.
# The cluster's PostgreSQL is `k8s-pg` on the tailnet (phase 1's LoadBalancer) until phase 4 retires the host's
# PostgreSQL, releases `pg` and gives the cluster that name with a LoadBalancer of its own, created after the
# release; phase 1's `k8s-pg` then goes at the end of that update (Pulumi deletes what the program no longer
# declares last), so the database is never without a tailnet name, and whatever still reaches `k8s-pg` during
# the update (phase 4's final sync) finds it. Why not the same Service with a new annotation: the operator does
# not rename a device, so the Service must be replaced, and a replacement of phase 1's object cannot wait for
# phase 4's release (phase 3's import, which phase 4's steps wait for, itself waits for this LoadBalancer).
K8S_PG = "k8s-pg"  # the name of phase 1's LoadBalancer, the one phase 3's import reached the cluster at
PG_HOSTNAME = Amendable("postgres.hostname", K8S_PG, "the tailnet name blumeops-pg answers at")
PG_OWN_LOAD_BALANCER = Amendable("postgres.k8sPgLoadBalancer", True,
                                 "phase 1's own LoadBalancer k8s-pg serves blumeops-pg on the tailnet")
# Roles of the applications, their passwords from the later phases' settings (phase 4: miniflux).
PG_APP_ROLES: Amendable[tuple[ManagedRole, ...]] = Amendable(
    "postgres.appRoles", (), "roles the applications log in as, managed by CloudNativePG")


@dataclass(frozen=True, slots=True)
class ForgeRepository:
    """Where ArgoCD reads the homelab's repositories over SSH."""

    host: str
    port: int
    egress: bool  # the forge is outside the cluster: reached through the operator's egress Service ``forge``


# Until phase 7 moves Forgejo into the cluster, the forge is the brew Forgejo on indri (SSH on 2200), reached
# through an egress Service; None here means exactly that.
FORGE_REPOSITORY: Amendable[ForgeRepository | None] = Amendable(
    "argocd.forge", None, "where ArgoCD reads the forge (None: the brew Forgejo on indri, port 2200)")
# ArgoCD's credentials move to the forge FORGE_REPOSITORY names only once it serves (phase 7's clone check): no
# cycle, as nothing of phase 7 waits for ArgoCD.
ARGOCD_FORGE_WAITS = Later("argocd.forgeWaitsFor", "what ArgoCD's repository credentials wait for")


def known_host(host: str, port: int, key: str) -> str:
    """A known_hosts line: OpenSSH writes (and looks up) port 22 as the bare host, any other as [host]:port."""
    return f"{host} {key}" if port == 22 else f"[{host}]:{port} {key}"


def repository_prefix(host: str, port: int) -> str:
    return f"ssh://forgejo@{host}/{FORGE_OWNER}/" if port == 22 else f"ssh://forgejo@{host}:{port}/{FORGE_OWNER}/"


def build(phase: Phase, handover: Handover) -> None:
    kubernetes = handover.take(KUBERNETES)
    child = pulumi.ResourceOptions(parent=phase)
    tailnet = handover.settings.tailnet
    # Serve hostnames (forge.<tailnet>) are virtual: the brew forge is reached at the device itself.
    forge = handover.amended(FORGE_REPOSITORY) or ForgeRepository(tailnet.indri_device, FORGE_SSH_PORT, egress=True)
    egress = (TailnetEgress("forge", forge.host, (FORGE_WEB_PORT, forge.port)),) if forge.egress else ()

    operator_settings = handover.section(OperatorSettings)
    if operator_settings.create_oauth_client:
        operator_args = TailscaleOperatorArgs(
            provider=kubernetes,
            version=operator_settings.chart_version,
            tailscale_provider=handover.take(TAILSCALE),
            # The client carries tag:k8s-operator, which only exists once the policy defining it is applied.
            oauth_client_after=(handover.take(TAILNET_ACL),),
            egress=egress,
        )
    else:
        assert operator_settings.oauth_client_id is not None and operator_settings.oauth_client_secret is not None
        operator_args = TailscaleOperatorArgs(
            provider=kubernetes,
            version=operator_settings.chart_version,
            oauth=OauthCredentials(operator_settings.oauth_client_id, operator_settings.oauth_client_secret),
            egress=egress,
        )
    operator = TailscaleOperator("tailscale-operator", operator_args, opts=child)
    handover.give(PROXY_CLASS, operator.proxy_class)

    argocd_settings = handover.section(ArgoCDSettings)
    argocd = ArgoCD(
        "argocd",
        ArgoCDArgs(
            provider=kubernetes,
            chart_version=argocd_settings.chart_version,
            proxy_class=operator.proxy_class,
            repo_credentials=(
                GitRepoCredentials(
                    name="repo-creds-forge",
                    url_prefix=repository_prefix(forge.host, forge.port),
                    ssh_private_key=argocd_settings.forge_ssh_private_key,
                    known_hosts=(known_host(forge.host, forge.port, argocd_settings.forge_host_key),),
                ),
            ),
            credentials_after=handover.later(ARGOCD_FORGE_WAITS),
        ),
        opts=child,
    )
    handover.endpoints["argocd"] = f"https://{argocd.hostname}.{tailnet.name}"

    postgres = handover.section(PostgresSettings)
    cnpg = CloudNativePG(
        "cloudnative-pg",
        CloudNativePGArgs(provider=kubernetes, chart_version=handover.section(CloudNativePGSettings).chart_version),
        opts=child,
    )
    pg_hostname = handover.amended(PG_HOSTNAME)
    cluster = PostgresCluster(
        "blumeops-pg",
        PostgresClusterArgs(
            provider=kubernetes,
            operator=cnpg.chart,
            proxy_class=operator.proxy_class,
            hostname=K8S_PG if handover.amended(PG_OWN_LOAD_BALANCER) else None,
            database="miniflux",
            owner="miniflux",
            instances=postgres.instances,
            storage_size=postgres.storage_size,
            storage_class=postgres.storage_class,
            roles=(
                ManagedRole("eblume", postgres.eblume_password, superuser=True, createdb=True, createrole=True),
                # read-only role for borgmatic's pg_dump (phase 3)
                ManagedRole("borgmatic", postgres.borgmatic_password, in_roles=("pg_read_all_data",)),
                *handover.amended(PG_APP_ROLES),
            ),
        ),
        opts=child,
    )
    handover.give(POSTGRES, cluster)
    handover.endpoints["postgres"] = f"postgresql://{pg_hostname}.{tailnet.name}:5432"
