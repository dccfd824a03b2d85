"""Phase 0, Foundation: the tailnet (policy, device tags, Tailscale Services).

The host side of phase 0 (zot, minikube, serve entries, metrics agents, the cluster's k8s provider)
joins this module with the host components.
"""

from __future__ import annotations

import pulumi
import pulumi_tailscale as tailscale

from components.tailnet import DeviceTagging, Tailnet, TailnetArgs, TailscaleService
from phases import Deployment, Phase

INDRI_TAGS = ("tag:homelab", "tag:blumeops", "tag:registry", "tag:k8s-api")
SIFAKA_TAGS = ("tag:nas", "tag:blumeops")

# The Services indri advertises; the program creates them before any `tailscale serve --service` runs.
REGISTRY_SERVICE = TailscaleService("svc:registry", ("tcp:443",), "zot registry on indri (HTTPS 443 -> :5050)")
K8S_SERVICE = TailscaleService("svc:k8s", ("tcp:443",), "minikube API server on indri (TCP passthrough)")


def build(phase: Phase, deployment: Deployment) -> None:
    settings = deployment.settings
    provider = tailscale.Provider(
        "tailscale",
        oauth_client_id=settings.tailnet.oauth_client_id,
        oauth_client_secret=settings.tailnet.oauth_client_secret,
        opts=pulumi.ResourceOptions(parent=phase),
    )
    deployment.provide("tailscale", provider)
    tailnet = Tailnet(
        "tailnet",
        TailnetArgs(
            admins=settings.tailnet.admins,
            members=settings.tailnet.members,
            devices=(
                DeviceTagging("indri", settings.tailnet.indri_device,
                              INDRI_TAGS + settings.tailnet.legacy_service_tags),
                DeviceTagging("sifaka", settings.tailnet.sifaka_device, SIFAKA_TAGS),
            ),
            services=(REGISTRY_SERVICE, K8S_SERVICE),
            provider=provider,
        ),
        opts=pulumi.ResourceOptions(parent=phase),
    )
    deployment.provide("tailnet.services", tailnet.services)
