"""The Tailscale Kubernetes operator: every exposure of the cluster to the tailnet goes through it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tailscale as tailscale

from components.cluster.objects import (
    PROXY_CLASS_KEY,
    ImageRef,
    PinnedChart,
    ProxyClassRef,
    helm_chart,
    kubernetes_opts,
    namespace,
    secret_from_config,
)

CHART = "tailscale-operator"
CHART_REPOSITORY = "https://pkgs.tailscale.com/helmcharts"
RELEASE = "tailscale-operator"
PINNED = PinnedChart(CHART, CHART_REPOSITORY, RELEASE)
API_VERSION = "tailscale.com/v1alpha1"
# The OAuth client's API scopes: the operator creates devices (auth keys) and Tailscale Services.
OAUTH_SCOPES = ("devices:core", "auth_keys", "services")
OAUTH_SECRET = "operator-oauth"  # the name the chart mounts at /oauth when it creates no Secret itself


# Tailscale's API accepts an OAuth client description of letters, digits, hyphens and spaces, at most 50.
OAUTH_DESCRIPTION = re.compile(r"[A-Za-z0-9 -]{1,50}")


def oauth_client_description(name: str) -> str:
    """The description of the OAuth client the component creates, as Tailscale's API accepts it."""
    description = f"Kubernetes operator {name}"
    if not OAUTH_DESCRIPTION.fullmatch(description):
        raise ValueError(f"TailscaleOperator name {name!r} makes the OAuth client description {description!r}, which "
                         "Tailscale refuses: use letters, digits, hyphens and spaces, at most 30 characters")
    return description


def operator_images(version: str) -> dict[str, ImageRef]:
    """The images of one operator release, fully qualified (CRI-O and zot's mirror need the registry)."""
    tag = f"v{version}"
    return {
        "operator": ImageRef("docker.io/tailscale/k8s-operator", tag),
        "proxy": ImageRef("docker.io/tailscale/tailscale", tag),
        "nameserver": ImageRef("docker.io/tailscale/k8s-nameserver", tag),
    }


@dataclass(frozen=True, slots=True)
class OauthCredentials:
    """An existing OAuth client of the operator (client id and secret from stack config)."""

    client_id: pulumi.Input[str]
    client_secret: pulumi.Input[str]


@dataclass(frozen=True, slots=True)
class TailnetEgress:
    """An egress Service in the operator's namespace that reaches a tailnet device from the cluster."""

    name: str
    tailnet_fqdn: str  # a device's MagicDNS name (Serve hostnames are virtual and cannot be targeted)
    ports: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TailscaleOperatorArgs:
    provider: pulumi.ProviderResource  # the cluster's Kubernetes provider
    version: str  # chart version = operator release (images are tagged v<version>)
    # Either existing credentials, or a Tailscale provider with which the component creates the client.
    oauth: OauthCredentials | None = None
    tailscale_provider: pulumi.ProviderResource | None = None
    # What the created OAuth client must wait for (the tailnet policy that defines its tags).
    oauth_client_after: tuple[pulumi.Resource, ...] = ()
    operator_tags: tuple[str, ...] = ("tag:k8s-operator",)
    proxy_tags: tuple[str, ...] = ("tag:k8s",)
    namespace: str = "tailscale"
    proxy_class: str = "default"
    dns_config: str = "ts-dns"
    egress: tuple[TailnetEgress, ...] = ()


class TailscaleOperator(pulumi.ComponentResource):
    """Puts on the cluster: namespace ``tailscale``; the OAuth Secret ``operator-oauth`` (from the given
    credentials, or from a ``tailscale.OauthClient`` it creates on the tailnet); the ``tailscale-operator``
    chart (operator Deployment, CRDs, IngressClass ``tailscale``) with every image pinned; the ProxyClass
    that pins the proxy images; the DNSConfig whose nameserver resolves tailnet names in the cluster; and
    one egress Service per ``TailnetEgress``.

    Undo: destroying it deletes the custom resources first (the operator removes the proxies' devices
    while it still runs), then the chart, the Secret (and the OAuth client it created) and the
    namespace. Delete every Ingress and LoadBalancer that names the ProxyClass before it: they depend on
    it, so Pulumi does so when they are removed in the same run.
    """

    def __init__(self, name: str, args: TailscaleOperatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        if (args.oauth is None) == (args.tailscale_provider is None):
            raise ValueError("TailscaleOperator needs exactly one of oauth credentials or a tailscale_provider")
        description = oauth_client_description(name)
        images = operator_images(args.version)
        image_refs = tuple(image.ref for image in images.values())
        super().__init__(
            "blumeops:cluster:TailscaleOperator",
            name,
            {
                "namespace": args.namespace,
                "version": args.version,
                "operatorTags": list(args.operator_tags),
                "proxyTags": list(args.proxy_tags),
                "proxyClass": args.proxy_class,
                "oauthClientCreated": args.oauth is None,
                "egress": {e.name: {"tailnetFqdn": e.tailnet_fqdn, "ports": list(e.ports)} for e in args.egress},
                "images": list(image_refs),
            },
            opts,
        )
        # (after super().__init__, which turns the props above into Output attributes)
        self.images: tuple[str, ...] = image_refs
        provider = args.provider
        self.namespace = namespace(f"{name}-namespace", args.namespace, provider, self)
        ns = self.namespace.metadata.name

        self.oauth_client: tailscale.OauthClient | None = None
        if args.oauth is not None:
            credentials = args.oauth
        else:
            self.oauth_client = tailscale.OauthClient(
                f"{name}-oauth-client",
                description=description,
                scopes=list(OAUTH_SCOPES),
                tags=list(args.operator_tags),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.tailscale_provider,
                    depends_on=list(args.oauth_client_after) or None,
                ),
            )
            credentials = OauthCredentials(self.oauth_client.id, self.oauth_client.key)
        self.oauth_secret = secret_from_config(
            f"{name}-oauth",
            name=OAUTH_SECRET,
            namespace=ns,
            string_data={"client_id": credentials.client_id, "client_secret": credentials.client_secret},
            provider=provider,
            parent=self,
        )

        self.chart = helm_chart(
            f"{name}-chart",
            PINNED,
            args.version,
            ns,
            {
                # No credentials in values: the chart would render them into a Secret of its own.
                "oauth": {"clientId": "", "clientSecret": "", "audience": ""},
                "oauthSecretVolume": {"secret": {"secretName": OAUTH_SECRET}},
                "installCRDs": True,
                "operatorConfig": {
                    "defaultTags": list(args.operator_tags),
                    "image": {"repository": images["operator"].repository, "tag": images["operator"].tag,
                              "digest": ""},
                },
                "proxyConfig": {
                    "defaultTags": ",".join(args.proxy_tags),
                    "defaultProxyClass": args.proxy_class,
                    "image": {"repository": images["proxy"].repository, "tag": images["proxy"].tag,
                              "digest": ""},
                },
                "ingressClass": {"name": "tailscale", "enabled": True},
                "apiServerProxyConfig": {"mode": "false", "allowImpersonation": "false"},
            },
            # The operator mounts the OAuth Secret: it must exist before the Deployment starts.
            opts=kubernetes_opts(provider, self, [self.oauth_secret]),
        )

        after_chart = kubernetes_opts(provider, self, [self.chart])
        proxy_image = images["proxy"].ref
        proxy_class = k8s.apiextensions.CustomResource(
            f"{name}-proxy-class",
            api_version=API_VERSION,
            kind="ProxyClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.proxy_class),
            spec={
                "statefulSet": {
                    "pod": {
                        "tailscaleContainer": {"image": proxy_image},
                        "tailscaleInitContainer": {"image": proxy_image},
                    },
                },
            },
            opts=after_chart,
        )
        self.proxy_class = ProxyClassRef(args.proxy_class, proxy_class)

        self.dns_config = k8s.apiextensions.CustomResource(
            f"{name}-dns-config",
            api_version=API_VERSION,
            kind="DNSConfig",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.dns_config),
            spec={"nameserver": {"image": {"repo": images["nameserver"].repository, "tag": images["nameserver"].tag}}},
            opts=after_chart,
        )

        self.egress: dict[str, k8s.core.v1.Service] = {}
        for egress in args.egress:
            self.egress[egress.name] = k8s.core.v1.Service(
                f"{name}-egress-{egress.name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=egress.name,
                    namespace=ns,
                    labels={PROXY_CLASS_KEY: args.proxy_class},
                    annotations={"tailscale.com/tailnet-fqdn": egress.tailnet_fqdn, PROXY_CLASS_KEY: args.proxy_class},
                ),
                spec=k8s.core.v1.ServiceSpecArgs(
                    type="ExternalName",
                    external_name="placeholder",  # the operator rewrites it to its egress proxy
                    ports=[
                        k8s.core.v1.ServicePortArgs(name=f"tcp-{port}", port=port, target_port=port, protocol="TCP")
                        for port in egress.ports
                    ],
                ),
                opts=kubernetes_opts(provider, self, [proxy_class], ignore_changes=["spec.externalName"]),
            )

        self.register_outputs({"namespace": ns, "proxyClass": args.proxy_class, "images": list(image_refs)})
