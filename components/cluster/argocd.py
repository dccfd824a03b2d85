"""Argo CD, reading its applications from the forge over SSH and served on the tailnet."""

from __future__ import annotations

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
    tailscale_ingress,
)

CHART = "argo-cd"
CHART_REPOSITORY = "https://argoproj.github.io/argo-helm"
RELEASE = "argocd"  # with fullnameOverride: the objects are argocd-server, argocd-repo-server, ...
PINNED = PinnedChart(CHART, CHART_REPOSITORY, RELEASE)
SERVER_SERVICE = f"{RELEASE}-server"
REPO_CREDS_LABEL = "argocd.argoproj.io/secret-type"
ARGOCD_IMAGE = ImageRef("quay.io/argoproj/argocd", "v3.4.4")  # chart 10.1.1's appVersion
DEX_IMAGE = ImageRef("ghcr.io/dexidp/dex", "v2.45.1")  # what chart 10.1.1 ships (dex.image.tag)
REDIS_IMAGE = ImageRef("ecr-public.aws.com/docker/library/redis", "8.2.3-alpine")


@dataclass(frozen=True, slots=True)
class ArgoCDImages:
    """Every image the argo-cd chart runs with its default components (redis-ha and the redis exporter
    are off), pinned; the chart's default tags follow its appVersion, which a chart bump would move."""

    argocd: ImageRef = ARGOCD_IMAGE
    dex: ImageRef = DEX_IMAGE
    redis: ImageRef = REDIS_IMAGE

    @property
    def refs(self) -> tuple[str, ...]:
        return (self.argocd.ref, self.dex.ref, self.redis.ref)


@dataclass(frozen=True, slots=True)
class GitRepoCredentials:
    """A repository credential template: every repository under ``url_prefix`` uses this SSH key."""

    name: str  # Secret name
    url_prefix: str  # e.g. ssh://git@forge.example:2222/owner/
    ssh_private_key: pulumi.Input[str]
    known_hosts: tuple[str, ...]  # "[host]:port <type> <base64>" lines of the repository's SSH server


@dataclass(frozen=True, slots=True)
class ArgoCDArgs:
    provider: pulumi.ProviderResource
    chart_version: str
    proxy_class: ProxyClassRef  # from the TailscaleOperator
    hostname: str = "argocd"  # https://<hostname>.<tailnet>
    namespace: str = "argocd"
    repo_credentials: tuple[GitRepoCredentials, ...] = ()
    images: ArgoCDImages = field(default_factory=ArgoCDImages)
    # What the credentials (and so the chart, whose known hosts follow them) wait for: the forge they point at
    # proven serving (phase 7's clone check, given through phases.Later).
    credentials_after: pulumi.Output[list[pulumi.Resource]] | None = None


def _with_final_newline(key: str) -> str:
    # An OpenSSH private key without its final newline is rejected by Argo CD's ssh client.
    return key if key.endswith("\n") else key + "\n"


class ArgoCD(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``argocd``; one repo-credential template Secret per
    ``GitRepoCredentials`` (label ``argocd.argoproj.io/secret-type: repo-creds``), created before Argo CD
    so its first sync can read the forge; the ``argo-cd`` chart with pinned images, ``server.insecure``
    (TLS ends at the Tailscale proxy) and the repositories' host keys added to its known hosts; and the
    Tailscale Ingress ``<hostname>`` to ``argocd-server:80``.

    Undo: destroying it removes the Ingress (and its tailnet device), the chart (Argo CD's CRDs go with it,
    and with them any Application objects: the workloads those Applications deployed stay), the Secrets
    and the namespace.
    """

    def __init__(self, name: str, args: ArgoCDArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        image_refs = args.images.refs
        super().__init__(
            "blumeops:cluster:ArgoCD",
            name,
            {
                "namespace": args.namespace,
                "chartVersion": args.chart_version,
                "hostname": args.hostname,
                "repositories": [creds.url_prefix for creds in args.repo_credentials],
                "knownHosts": [line for creds in args.repo_credentials for line in creds.known_hosts],
                "images": list(image_refs),
                **health.props([health.ingress(
                    "argocd /healthz", args.hostname, "/healthz",
                    f"`kubectl -n {args.namespace} get pods,ingress`: the argocd-server pod or the Tailscale "
                    f"proxy of the Ingress {args.hostname} is not ready")]),
            },
            opts,
        )
        # (after super().__init__, which turns the props above into Output attributes)
        self.images: tuple[str, ...] = image_refs
        provider = args.provider
        self.hostname = args.hostname
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self)
        ns = self.namespace.metadata.name

        self.repo_credentials: dict[str, k8s.core.v1.Secret] = {}
        for creds in args.repo_credentials:
            self.repo_credentials[creds.name] = secret_from_config(
                f"{name}-{creds.name}",
                name=creds.name,
                namespace=ns,
                labels={REPO_CREDS_LABEL: "repo-creds"},
                string_data={
                    "type": "git",
                    "url": creds.url_prefix,
                    "sshPrivateKey": pulumi.Output.from_input(creds.ssh_private_key).apply(_with_final_newline),
                },
                provider=provider,
                parent=self,
                depends_on=args.credentials_after if args.credentials_after is not None else (),
            )

        images = args.images
        known_hosts = "\n".join(line for creds in args.repo_credentials for line in creds.known_hosts)
        self.chart = helm_chart(
            f"{name}-chart",
            PINNED,
            args.chart_version,
            ns,
            {
                "fullnameOverride": RELEASE,
                "global": {"image": {"repository": images.argocd.repository, "tag": images.argocd.tag}},
                "dex": {"image": {"repository": images.dex.repository, "tag": images.dex.tag}},
                "redis": {"image": {"repository": images.redis.repository, "tag": images.redis.tag}},
                "configs": {
                    "params": {"server.insecure": True},
                    "ssh": {"extraHosts": known_hosts},
                },
            },
            opts=kubernetes_opts(provider, self, list(self.repo_credentials.values())),
        )

        self.ingress = tailscale_ingress(
            f"{name}-ingress",
            name=f"{SERVER_SERVICE}-tailscale",  # the homelab's own name for it (ops adopt imports it)
            namespace=ns,
            hostname=args.hostname,
            service_name=SERVER_SERVICE,
            service_port=80,
            proxy_class=args.proxy_class,
            provider=provider,
            parent=self,
            depends_on=[self.chart],
        )
        self.register_outputs({"namespace": ns, "hostname": args.hostname, "images": list(image_refs)})
