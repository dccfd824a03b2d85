"""The cluster side of blumeops: the Tailscale operator, Argo CD, CloudNativePG and the objects every app
builds the same way (namespace, Secret from config secrets, Tailscale Ingress and LoadBalancer)."""

from components.cluster.argocd import ArgoCD, ArgoCDArgs, ArgoCDImages, GitRepoCredentials
from components.cluster.cloudnative_pg import (
    CloudNativePG,
    CloudNativePGArgs,
    ComputeResources,
    ManagedRole,
    PostgresCluster,
    PostgresClusterArgs,
)
from components.cluster.objects import (
    ImageRef,
    KeptState,
    ProxyClassRef,
    kept_claim,
    kept_opts,
    kubernetes_opts,
    namespace,
    secret_from_config,
    tailscale_ingress,
    tailscale_load_balancer,
)
from components.cluster.tailscale_operator import (
    OauthCredentials,
    TailnetEgress,
    TailscaleOperator,
    TailscaleOperatorArgs,
)

__all__ = [
    "ArgoCD",
    "ArgoCDArgs",
    "ArgoCDImages",
    "CloudNativePG",
    "CloudNativePGArgs",
    "ComputeResources",
    "GitRepoCredentials",
    "ImageRef",
    "KeptState",
    "ManagedRole",
    "OauthCredentials",
    "PostgresCluster",
    "PostgresClusterArgs",
    "ProxyClassRef",
    "TailnetEgress",
    "TailscaleOperator",
    "TailscaleOperatorArgs",
    "kept_claim",
    "kept_opts",
    "kubernetes_opts",
    "namespace",
    "secret_from_config",
    "tailscale_ingress",
    "tailscale_load_balancer",
]
