"""Phase 1, Kubernetes infrastructure: the Tailscale operator, Argo CD, CloudNativePG and ``blumeops-pg``.

Needs from phase 0 the cluster's Kubernetes provider (``kubernetes``), the Tailscale provider
(``tailscale``) and the tailnet's policy (``tailnet.acl``, which defines and owns the operator's tags).
Provides ``cluster.proxy_class`` (every later Ingress and LoadBalancer names it and depends on it) and
``postgres.cluster`` (the PostgresCluster: its namespace, ``-app`` Secret, ``-rw`` Service).
"""

from __future__ import annotations

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
    TailnetEgress,
    TailscaleOperator,
    TailscaleOperatorArgs,
)
from phases import Deployment, Phase, PhaseError

FORGE_WEB_PORT = 3001
FORGE_SSH_PORT = 2200
FORGE_OWNER = "eblume"
# The cluster's PostgreSQL is `k8s-pg` on the tailnet until phase 4 retires the host's PostgreSQL and
# releases `pg`; from then on the LoadBalancer takes `pg` (the Service is replaced).
PG_HOSTNAME_BEFORE_CUTOVER = "k8s-pg"
PG_HOSTNAME = "pg"
PG_CUTOVER_PHASE = "4"


def _required(value: pulumi.Output[str] | None, key: str) -> pulumi.Output[str]:
    if value is None:  # settings.load() refuses a phase-1 target without it; this guards other callers
        raise PhaseError(f"blumeops:{key} is missing: phase 1 needs it")
    return value


def build(phase: Phase, deployment: Deployment) -> None:
    settings = deployment.settings
    kubernetes = deployment.provider("kubernetes")
    child = pulumi.ResourceOptions(parent=phase)
    tailnet = settings.tailnet
    forge_host = tailnet.indri_device  # Serve hostnames (forge.<tailnet>) are virtual: reach the device

    operator_settings = settings.operator
    forge_egress = TailnetEgress("forge", forge_host, (FORGE_WEB_PORT, FORGE_SSH_PORT))
    if operator_settings.create_oauth_client:
        operator_args = TailscaleOperatorArgs(
            provider=kubernetes,
            version=operator_settings.chart_version,
            tailscale_provider=deployment.provider("tailscale"),
            # The client carries tag:k8s-operator, which only exists once the policy defining it is applied.
            oauth_client_after=(deployment.output("tailnet.acl"),),
            egress=(forge_egress,),
        )
    else:
        if operator_settings.oauth_client_id is None:
            raise PhaseError("blumeops:operator.oauthClientId is missing: phase 1 needs it")
        operator_args = TailscaleOperatorArgs(
            provider=kubernetes,
            version=operator_settings.chart_version,
            oauth=OauthCredentials(
                operator_settings.oauth_client_id,
                _required(operator_settings.oauth_client_secret, "operator.oauthClientSecret"),
            ),
            egress=(forge_egress,),
        )
    operator = TailscaleOperator("tailscale-operator", operator_args, opts=child)
    deployment.provide("cluster.proxy_class", operator.proxy_class)

    argocd_settings = settings.argocd
    if argocd_settings.forge_host_key is None:
        raise PhaseError("blumeops:argocd.forgeHostKey is missing: phase 1 needs it")
    argocd = ArgoCD(
        "argocd",
        ArgoCDArgs(
            provider=kubernetes,
            chart_version=argocd_settings.chart_version,
            proxy_class=operator.proxy_class,
            repo_credentials=(
                GitRepoCredentials(
                    name="repo-creds-forge",
                    url_prefix=f"ssh://forgejo@{forge_host}:{FORGE_SSH_PORT}/{FORGE_OWNER}/",
                    ssh_private_key=_required(argocd_settings.forge_ssh_private_key, "argocd.forgeSshPrivateKey"),
                    known_hosts=(f"[{forge_host}]:{FORGE_SSH_PORT} {argocd_settings.forge_host_key}",),
                ),
            ),
        ),
        opts=child,
    )
    deployment.endpoints["argocd"] = f"https://{argocd.hostname}.{tailnet.name}"

    postgres = settings.postgres
    cnpg = CloudNativePG(
        "cloudnative-pg",
        CloudNativePGArgs(provider=kubernetes, chart_version=postgres.cnpg_chart_version),
        opts=child,
    )
    cut_over = PG_CUTOVER_PHASE in settings.phases
    pg_hostname = PG_HOSTNAME if cut_over else PG_HOSTNAME_BEFORE_CUTOVER
    cluster = PostgresCluster(
        "blumeops-pg",
        PostgresClusterArgs(
            provider=kubernetes,
            operator=cnpg.chart,
            proxy_class=operator.proxy_class,
            hostname=pg_hostname,
            database="miniflux",
            owner="miniflux",
            instances=postgres.instances,
            storage_size=postgres.storage_size,
            storage_class=postgres.storage_class,
            roles=(
                ManagedRole(
                    "eblume",
                    _required(postgres.eblume_password, "postgres.eblumePassword"),
                    superuser=True,
                    createdb=True,
                    createrole=True,
                ),
                # read-only role for borgmatic's pg_dump (phase 3)
                ManagedRole(
                    "borgmatic",
                    _required(postgres.borgmatic_password, "postgres.borgmaticPassword"),
                    in_roles=("pg_read_all_data",),
                ),
            ),
        ),
        opts=child,
    )
    deployment.provide("postgres.cluster", cluster)
    deployment.endpoints["postgres"] = f"postgresql://{pg_hostname}.{tailnet.name}:5432"
