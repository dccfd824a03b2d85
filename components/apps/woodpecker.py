"""Woodpecker CI in the cluster: the woodpecker chart (server and agent with the Kubernetes backend) logging in
through the forge's OAuth2 application, at ``ci``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.apps.base import AppIngress, AppIngressArgs, IngressBackend
from components.cluster.objects import (
    ImageRef,
    KeptState,
    PinnedChart,
    ProxyClassRef,
    helm_chart,
    namespace,
    secret_from_config,
)

WOODPECKER_TYPE = "blumeops:app:Woodpecker"
CHART = "woodpecker"
CHART_REPOSITORY = "oci://ghcr.io/woodpecker-ci/helm"
RELEASE = "woodpecker"  # the chart's objects: StatefulSets woodpecker-server and woodpecker-agent
PINNED = PinnedChart(CHART, CHART_REPOSITORY, RELEASE)
# chart 3.6.5 ships v3.16.0 by default: the homelab's release is v3.17.0 (domain-notes), pinned here
SERVER_IMAGE = ImageRef("docker.io/woodpeckerci/woodpecker-server", "v3.17.0")
AGENT_IMAGE = ImageRef("docker.io/woodpeckerci/woodpecker-agent", "v3.17.0")
AGENT_SECRET = "woodpecker-agent-secret"
FORGE_SECRET = "woodpecker-forgejo"
SERVER_PORT = 80


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The forge's OAuth2 application Woodpecker logs in with (secret Outputs)."""

    client_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]
    made_by: tuple[pulumi.Resource, ...] = ()  # the step that made it on the forge, when the program did


@dataclass(frozen=True, slots=True)
class WoodpeckerArgs:
    provider: pulumi.ProviderResource
    kept: KeptState  # the namespace: the server's and agent's claims (volumeClaimTemplates) live in it
    proxy_class: ProxyClassRef
    tailnet: str
    chart_version: str
    forge_url: str  # https://forge.<tailnet>
    oauth: OAuthClient
    agent_secret: pulumi.Output[str]
    admins: tuple[str, ...] = ("eblume",)
    hostname: str = "ci"
    namespace: str = "woodpecker"
    storage_size: str = "10Gi"
    server_image: ImageRef = SERVER_IMAGE
    agent_image: ImageRef = AGENT_IMAGE
    tags: tuple[str, ...] = ("tag:ci",)

    def __post_init__(self) -> None:
        if not self.admins or any(not a or "," in a for a in self.admins):
            raise ValueError("Woodpecker: admins must be forge logins (one at least, no commas)")

    @property
    def host_url(self) -> str:
        return f"https://{self.hostname}.{self.tailnet}"

    @property
    def redirect_uri(self) -> str:
        return f"{self.host_url}/authorize"


def _image(image: ImageRef) -> dict[str, str]:
    registry, repository = image.repository.split("/", 1)
    return {"registry": registry, "repository": repository, "tag": image.tag}


def chart_values(args: WoodpeckerArgs) -> dict[str, Any]:
    """One server (its claim from the StatefulSet's template, storage class standard) and one agent with the
    Kubernetes backend in ``woodpecker`` (RWX off: one node); the agent secret and the OAuth client from the
    program's Secrets, never the chart's randomly generated one (it would change on every render)."""
    return {
        "server": {
            "image": _image(args.server_image),
            "createAgentSecret": False,
            "extraSecretNamesForEnvFrom": [AGENT_SECRET, FORGE_SECRET],
            "env": {"WOODPECKER_HOST": args.host_url, "WOODPECKER_OPEN": "false",
                    "WOODPECKER_ADMIN": ",".join(args.admins), "WOODPECKER_FORGEJO": "true",
                    "WOODPECKER_FORGEJO_URL": args.forge_url},
            "persistentVolume": {"enabled": True, "size": args.storage_size, "storageClass": "standard"},
        },
        "agent": {
            "replicaCount": 1,
            "image": _image(args.agent_image),
            "mapAgentSecret": False,
            "extraSecretNamesForEnvFrom": [AGENT_SECRET],
            "env": {"WOODPECKER_SERVER": "woodpecker-server:9000", "WOODPECKER_BACKEND": "kubernetes",
                    "WOODPECKER_BACKEND_K8S_NAMESPACE": args.namespace,
                    "WOODPECKER_BACKEND_K8S_STORAGE_CLASS": "standard",
                    "WOODPECKER_BACKEND_K8S_STORAGE_RWX": False, "WOODPECKER_BACKEND_K8S_VOLUME_SIZE": "10G"},
            "persistence": {"enabled": True, "size": "1Gi", "storageClass": "standard"},
        },
    }


class Woodpecker(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``woodpecker`` (kept by a rollback: the server's claim
    ``data-woodpecker-server-0``, made by its StatefulSet, lives in it and holds the CI's database), the Secrets
    ``woodpecker-agent-secret`` (from config) and ``woodpecker-forgejo`` (the OAuth client), the woodpecker chart
    (server, agent, the agent's Role in its namespace for pipeline pods), and the Tailscale Ingress ``ci``
    (``tag:ci``).

    Undo: destroying it removes the Ingress, the chart and the Secrets; the namespace and the claims stay (a
    StatefulSet's claims outlive it), so raising the target again finds the CI's history.
    """

    def __init__(self, name: str, args: WoodpeckerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(WOODPECKER_TYPE, name, {
            "namespace": args.namespace, "hostname": args.hostname, "host": args.host_url,
            "forge": args.forge_url, "images": [args.server_image.ref, args.agent_image.ref]}, opts)
        provider = args.provider
        self.host_url = args.host_url
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self, kept=args.kept)
        ns = self.namespace.metadata.name
        self.agent_secret = secret_from_config(f"{name}-agent-secret", name=AGENT_SECRET, namespace=ns,
                                               string_data={"WOODPECKER_AGENT_SECRET": args.agent_secret},
                                               provider=provider, parent=self)
        self.forge_secret = secret_from_config(
            f"{name}-forgejo", name=FORGE_SECRET, namespace=ns,
            string_data={"WOODPECKER_FORGEJO_CLIENT": args.oauth.client_id,
                         "WOODPECKER_FORGEJO_SECRET": args.oauth.client_secret},
            provider=provider, parent=self, depends_on=list(args.oauth.made_by))
        self.chart = helm_chart(f"{name}-chart", PINNED, args.chart_version, ns, chart_values(args),
                                pulumi.ResourceOptions(provider=provider, parent=self,
                                                       depends_on=[self.agent_secret, self.forge_secret]))
        self.ingress = AppIngress(name, AppIngressArgs(
            provider=provider, namespace=ns, hostname=args.hostname,
            backend=IngressBackend("woodpecker-server", SERVER_PORT), proxy_class=args.proxy_class,
            ready=(self.chart,), health_path="/healthz", tags=args.tags), pulumi.ResourceOptions(parent=self))
        self.register_outputs({"namespace": ns, "host": args.host_url})
