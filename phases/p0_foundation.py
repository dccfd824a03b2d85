"""Phase 0, Foundation: the tailnet (policy, device tags, Tailscale Services) and the host side on indri
(zot with svc:registry, minikube on Docker Desktop with svc:k8s, the metrics agents) and the cluster's
Kubernetes provider, which every later phase uses."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_tailscale as tailscale

from components.host import (
    AgentName,
    Host,
    HostTools,
    MetricsPaths,
    MinikubeDockerCluster,
    MinikubeDockerClusterArgs,
    RegistryMirror,
    ZotRegistry,
    ZotRegistryArgs,
)
from components.tailnet import DeviceTagging, Tailnet, TailnetArgs, TailscaleService
from phases import Deployment, Phase
from phases.settings import Settings

INDRI_TAGS = ("tag:homelab", "tag:blumeops", "tag:registry", "tag:k8s-api")
SIFAKA_TAGS = ("tag:nas", "tag:blumeops")

# The host's LaunchAgents keep the homelab's "mcquack" names (label, and log files <log_dir>/<stem>.*.log).
ZOT_AGENT = AgentName("mcquack.eblume.zot", "mcquack.zot")
ZOT_METRICS_AGENT = AgentName("mcquack.eblume.zot-metrics", "mcquack.zot-metrics")
K8S_API_SERVE_AGENT = AgentName("mcquack.eblume.k8s-api-serve", "mcquack.k8s-api-serve")
MINIKUBE_METRICS_AGENT = AgentName("mcquack.eblume.minikube-metrics", "mcquack.minikube-metrics")
# How zot was built on indri (zot is not in Homebrew): its source is mirrored on the host's forge.
ZOT_BUILD_HINT = (
    "on indri: git clone http://localhost:3001/eblume/zot.git ~/code/3rd/zot && cd ~/code/3rd/zot && "
    "mise use go@1.25 && mise x -- make binary, which writes bin/zot-darwin-arm64"
)

# The Services indri advertises; the program creates them before any `tailscale serve --service` runs.
REGISTRY_SERVICE = TailscaleService("svc:registry", ("tcp:443",), "zot registry on indri (HTTPS 443 -> :5050)")
K8S_SERVICE = TailscaleService("svc:k8s", ("tcp:443",), "minikube API server on indri (TCP passthrough)")


def indri(settings: Settings) -> Host:
    tools = settings.indri.tools
    return Host(
        address=settings.indri.host,
        port=settings.indri.port,
        user=settings.indri.user,
        uid=settings.indri.uid,
        home=settings.indri.home,
        host_key=settings.indri.host_key,
        private_key=settings.indri.private_key,
        tools=HostTools(
            bash=tools.bash,
            curl=tools.curl,
            docker=tools.docker,
            file=tools.file,
            kubectl=tools.kubectl,
            launchctl=tools.launchctl,
            minikube=tools.minikube,
            plutil=tools.plutil,
            tailscale=tools.tailscale,
        ),
    )


def service_host(service: str, tailnet: str) -> str:
    """``svc:registry`` on ``tail8d86e.ts.net`` -> ``registry.tail8d86e.ts.net``."""
    return f"{service.removeprefix('svc:')}.{tailnet}"


def zot_args(settings: Settings, host: Host, service: pulumi.Resource | None) -> ZotRegistryArgs:
    zot = settings.zot
    return ZotRegistryArgs(
        host=host,
        binary=zot.binary,
        config_path=zot.config_path,
        data_dir=zot.data_dir,
        log_dir=zot.log_dir,
        port=zot.port,
        upstreams=tuple(RegistryMirror(u.registry, u.url) for u in zot.upstreams),
        metrics=metrics_paths(settings),
        agent_name=ZOT_AGENT,
        metrics_agent_name=ZOT_METRICS_AGENT,
        log_level=zot.log_level,
        build_hint=ZOT_BUILD_HINT,
        docker_hub_user=zot.docker_hub_user,
        docker_hub_token=zot.docker_hub_token,
        service=REGISTRY_SERVICE.name,
        tailscale_service=service,
    )


def minikube_args(settings: Settings, host: Host, service: pulumi.Resource | None) -> MinikubeDockerClusterArgs:
    minikube = settings.minikube
    api_hostname = service_host(K8S_SERVICE.name, settings.tailnet.name)
    return MinikubeDockerClusterArgs(
        host=host,
        profile=minikube.profile,
        cpus=minikube.cpus,
        memory_mb=minikube.memory_mb,
        disk_size=minikube.disk_size,
        apiserver_port=minikube.apiserver_port,
        api_hostname=api_hostname,
        apiserver_names=(api_hostname, settings.indri.host),
        upstreams=tuple(RegistryMirror(u.registry, u.url) for u in settings.zot.upstreams),
        zot_port=settings.zot.port,
        private_registry=service_host(REGISTRY_SERVICE.name, settings.tailnet.name),
        metrics=metrics_paths(settings),
        api_serve_agent_name=K8S_API_SERVE_AGENT,
        metrics_agent_name=MINIKUBE_METRICS_AGENT,
        allow_replace=minikube.allow_replace,
        service=K8S_SERVICE.name,
        tailscale_service=service,
        kubeconfig=minikube.kubeconfig,
    )


def metrics_paths(settings: Settings) -> MetricsPaths:
    return MetricsPaths(
        textfile_dir=settings.metrics.textfile_dir,
        log_dir=settings.metrics.log_dir,
        script_dir=settings.metrics.script_dir,
    )


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
    deployment.provide("tailnet.acl", tailnet.acl)
    services = tailnet.services

    host = indri(settings)
    on_phase = pulumi.ResourceOptions(parent=phase)
    ZotRegistry("zot", zot_args(settings, host, services[REGISTRY_SERVICE.name]), on_phase)
    cluster = MinikubeDockerCluster("minikube", minikube_args(settings, host, services[K8S_SERVICE.name]), on_phase)
    deployment.provide("cluster.kubeconfig", cluster.kubeconfig)
    k8s_provider = kubernetes.Provider(
        "minikube",
        kubeconfig=cluster.kubeconfig,
        opts=pulumi.ResourceOptions(parent=phase, depends_on=[cluster]),
    )
    deployment.provide("kubernetes", k8s_provider)
    deployment.endpoints["registry"] = f"https://{service_host(REGISTRY_SERVICE.name, settings.tailnet.name)}"
    deployment.endpoints["k8s"] = f"https://{service_host(K8S_SERVICE.name, settings.tailnet.name)}"
