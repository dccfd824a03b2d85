"""Phase 0, Foundation: the tailnet (policy, device tags, Tailscale Services) and the host side on indri
(zot with svc:registry, minikube on Docker Desktop with svc:k8s, the metrics agents) and the cluster's
Kubernetes provider, which every later phase uses."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_tailscale as tailscale

from components import health
from components.cluster import KeptState
from components.host import (
    AgentName,
    HealthCheckAgent,
    HealthCheckAgentArgs,
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
from phases import Amendable, Handover, Key, Phase
from phases import settings as s
from phases.settings import HOME, IndriSettings, TailnetSettings

INDRI_TAGS = ("tag:homelab", "tag:blumeops", "tag:registry", "tag:k8s-api")
SIFAKA_TAGS = ("tag:nas", "tag:blumeops")


@s.section("zot")
class ZotSettings:
    """zot, the registry on indri: a pull-through cache of the upstream registries."""

    binary: str = s.setting(s.tool_path, "zot binary built from source",
                            default=f"{HOME}/code/3rd/zot/bin/zot-darwin-arm64")
    config_path: str = s.setting(s.owned_file, "zot config.json", default=f"{HOME}/.config/zot/config.json")
    data_dir: str = s.setting(s.owned_dir, "zot storage root", default=f"{HOME}/zot")
    log_dir: str = s.setting(s.owned_dir, "zot log directory", default=f"{HOME}/Library/Logs")
    # port 5050: macOS AirPlay Receiver holds 5000
    port: int = s.setting(s.port, "zot HTTP port", default=5050, example="5050")
    upstreams: tuple[RegistryMirror, ...] = s.setting(
        s.upstreams, "registries zot mirrors on demand (host -> upstream URL)",
        default={
            "docker.io": "https://registry-1.docker.io",
            "ghcr.io": "https://ghcr.io",
            "quay.io": "https://quay.io",
            "registry.k8s.io": "https://registry.k8s.io",
            "code.forgejo.org": "https://code.forgejo.org",
            "codeberg.org": "https://codeberg.org",
            "data.forgejo.org": "https://data.forgejo.org",
            "ecr-public.aws.com": "https://ecr-public.aws.com",
        },
        example="'{\"docker.io\": \"https://registry-1.docker.io\"}'")
    log_level: str = s.setting(s.one_of("panic", "fatal", "error", "warn", "info", "debug", "trace"),
                               "zot log level", default="info")
    docker_hub_user: str | None = s.setting(s.text, "Docker Hub user for zot's sync (anonymous: 10 pulls an hour)")
    docker_hub_token: pulumi.Output[str] | None = s.setting(s.text, "Docker Hub access token for that user",
                                                            secret=True)

    def __post_init__(self) -> None:
        if (self.docker_hub_user is None) != (self.docker_hub_token is None):
            missing = "dockerHubToken" if self.docker_hub_token is None else "dockerHubUser"
            raise ValueError(f"Docker Hub credentials need both the user and the token: set blumeops:zot.{missing} "
                             "(the token with --secret) or remove the other")


@s.section("minikube")
class MinikubeSettings:
    """minikube on indri, on Docker Desktop."""

    profile: str = s.setting(s.minikube_profile, "minikube profile", default="minikube")
    cpus: int = s.setting(s.count(s.MINIKUBE_MIN_CPUS, 64, " (minikube requires at least 2 CPUs)"),
                          "CPUs of the node", default=6, example="6")
    memory_mb: int = s.setting(
        s.count(s.MINIKUBE_MIN_MEMORY_MB, 1024 * 1024, " (minikube's usable minimum is 1800 MB)"),
        "memory of the node in MB", default=11264, example="11264")
    disk_size: str = s.setting(s.disk_size, "disk of the node", default="200g")
    apiserver_port: int = s.setting(s.port, "API server port inside the node", default=6443, example="6443")
    allow_replace: bool = s.setting(s.boolean, "replace a profile with another driver (deletes the cluster)",
                                    default=False, example="true")
    kubeconfig: pulumi.Output[str] | None = s.setting(
        s.multiline_secret, "kubeconfig to use instead of the one read from indri", secret=True,
        example="< ~/.kube/minikube-indri/config.yml")


@s.section("metrics")
class MetricsSettings:
    """The host metrics agents: where their scripts, textfiles and logs go."""

    textfile_dir: str = s.setting(s.owned_dir, "node_exporter textfile directory",
                                  default="/opt/homebrew/var/node_exporter/textfile")
    log_dir: str = s.setting(s.owned_dir, "log directory of the metrics agents", default="/opt/homebrew/var/log")
    script_dir: str = s.setting(s.owned_dir, "where the metrics scripts are installed", default=f"{HOME}/bin")
    check_agent: bool = s.setting(
        s.boolean, "run the host-side health checks every few minutes (blumeops_check_* gauges for Grafana)",
        default=True, example="false")
    check_interval_seconds: int = s.setting(s.count(60, 3600), "how often the health-check agent runs",
                                            default=300, example="300")

    def paths(self) -> MetricsPaths:
        return MetricsPaths(textfile_dir=self.textfile_dir, log_dir=self.log_dir, script_dir=self.script_dir)


SETTINGS = (ZotSettings, MinikubeSettings, MetricsSettings)

# What phase 0 gives the later phases.
TAILSCALE = Key("tailscale", tailscale.Provider, "the Tailscale provider (the program's OAuth client)")
TAILNET_ACL = Key("tailnet.acl", tailscale.Acl, "the tailnet policy, which defines every tag the program uses")
INDRI = Key("indri", Host, "indri as the host steps reach it over SSH")
KUBERNETES = Key("kubernetes", kubernetes.Provider, "the provider of the minikube cluster on indri")
KEPT_STATE = Key("kubernetes.kept", KeptState, "the provider of the cluster's kept state (upsertExistingObjects): "
                 "what a rollback keeps and raising the target takes back")
METRICS = Key("metrics", MetricsPaths, "where the host metrics agents put scripts, textfiles and logs")

# What a later phase changes here, in its own module: phase 9 drops the legacy service tags from indri.
KEEP_LEGACY_TAGS = Amendable("tailnet.keepLegacyTags", True, "indri keeps blumeops:tailnet.legacyServiceTags")

CHECK_AGENT = AgentName("mcquack.eblume.blumeops-check", "mcquack.blumeops-check")

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


def indri(indri_settings: IndriSettings, tools: HostTools) -> Host:
    return Host(
        address=indri_settings.host,
        port=indri_settings.port,
        user=indri_settings.user,
        uid=indri_settings.uid,
        home=indri_settings.home,
        host_key=indri_settings.host_key,
        private_key=indri_settings.ssh_private_key,
        tools=tools,
    )


def service_host(service: str, tailnet: str) -> str:
    """``svc:registry`` on ``tail8d86e.ts.net`` -> ``registry.tail8d86e.ts.net``."""
    return f"{service.removeprefix('svc:')}.{tailnet}"


def zot_args(zot: ZotSettings, host: Host, metrics: MetricsPaths,
             service: pulumi.Resource | None) -> ZotRegistryArgs:
    return ZotRegistryArgs(
        host=host,
        binary=zot.binary,
        config_path=zot.config_path,
        data_dir=zot.data_dir,
        log_dir=zot.log_dir,
        port=zot.port,
        upstreams=zot.upstreams,
        metrics=metrics,
        agent_name=ZOT_AGENT,
        metrics_agent_name=ZOT_METRICS_AGENT,
        log_level=zot.log_level,
        build_hint=ZOT_BUILD_HINT,
        docker_hub_user=zot.docker_hub_user,
        docker_hub_token=zot.docker_hub_token,
        service=REGISTRY_SERVICE.name,
        tailscale_service=service,
    )


def minikube_args(minikube: MinikubeSettings, zot: ZotSettings, tailnet: TailnetSettings, host: Host,
                  metrics: MetricsPaths, service: pulumi.Resource | None) -> MinikubeDockerClusterArgs:
    api_hostname = service_host(K8S_SERVICE.name, tailnet.name)
    return MinikubeDockerClusterArgs(
        host=host,
        profile=minikube.profile,
        cpus=minikube.cpus,
        memory_mb=minikube.memory_mb,
        disk_size=minikube.disk_size,
        apiserver_port=minikube.apiserver_port,
        api_hostname=api_hostname,
        apiserver_names=(api_hostname, host.address),
        upstreams=zot.upstreams,
        zot_port=zot.port,
        private_registry=service_host(REGISTRY_SERVICE.name, tailnet.name),
        metrics=metrics,
        api_serve_agent_name=K8S_API_SERVE_AGENT,
        metrics_agent_name=MINIKUBE_METRICS_AGENT,
        allow_replace=minikube.allow_replace,
        service=K8S_SERVICE.name,
        tailscale_service=service,
        kubeconfig=minikube.kubeconfig,
    )


def build(phase: Phase, handover: Handover) -> None:
    settings = handover.settings
    tailnet_settings = settings.tailnet
    provider = tailscale.Provider(
        "tailscale",
        oauth_client_id=tailnet_settings.oauth_client_id,
        oauth_client_secret=tailnet_settings.oauth_client_secret,
        opts=pulumi.ResourceOptions(parent=phase),
    )
    handover.give(TAILSCALE, provider)
    tailnet = Tailnet(
        "tailnet",
        TailnetArgs(
            admins=tailnet_settings.admins,
            members=tailnet_settings.members,
            devices=(
                DeviceTagging("indri", tailnet_settings.indri_device,
                              INDRI_TAGS + (tailnet_settings.legacy_service_tags
                                            if handover.amended(KEEP_LEGACY_TAGS) else ())),
                DeviceTagging("sifaka", tailnet_settings.sifaka_device, SIFAKA_TAGS),
            ),
            services=(REGISTRY_SERVICE, K8S_SERVICE),
            provider=provider,
        ),
        opts=pulumi.ResourceOptions(parent=phase),
    )
    handover.give(TAILNET_ACL, tailnet.acl)
    services = tailnet.services

    host = indri(settings.indri, settings.tools)
    handover.give(INDRI, host)
    metrics = handover.section(MetricsSettings).paths()
    handover.give(METRICS, metrics)
    zot = handover.section(ZotSettings)
    on_phase = pulumi.ResourceOptions(parent=phase)
    registry_args = zot_args(zot, host, metrics, services[REGISTRY_SERVICE.name])
    ZotRegistry("zot", registry_args, on_phase)
    cluster_args = minikube_args(handover.section(MinikubeSettings), zot, tailnet_settings, host, metrics,
                                 services[K8S_SERVICE.name])
    cluster = MinikubeDockerCluster("minikube", cluster_args, on_phase)
    metrics_settings = handover.section(MetricsSettings)
    if metrics_settings.check_agent:
        # The host-side checks of what this phase puts on indri (a later phase's own agents are checked by
        # `ops check`, which reads every phase's declarations from the plan).
        declared = [*registry_args.health_checks(), *cluster_args.health_checks()]
        declared += [agent.health_check() for agent in (registry_args.agent(), registry_args.metrics_agent(),
                                                        cluster_args.api_serve_agent(), cluster_args.metrics_agent())]
        HealthCheckAgent("blumeops-check", HealthCheckAgentArgs(
            host=host, checks=[c for c in declared if c.side == health.HOST_SIDE],
            textfile_dir=metrics.textfile_dir, script_dir=metrics.script_dir, log_dir=metrics.log_dir,
            agent_name=CHECK_AGENT, interval_seconds=metrics_settings.check_interval_seconds), on_phase)
    k8s_provider = kubernetes.Provider(
        "minikube",
        kubeconfig=cluster.kubeconfig,
        opts=pulumi.ResourceOptions(parent=phase, depends_on=[cluster]),
    )
    handover.give(KUBERNETES, k8s_provider)
    # The same cluster, for state a rollback keeps (PVCs, their namespaces): retain_on_delete leaves them in
    # the cluster, and upsertExistingObjects lets a later create take them back instead of failing with
    # AlreadyExists (components/cluster/objects.py says why that is safe only for kept objects).
    kept_provider = kubernetes.Provider(
        "minikube-kept",
        kubeconfig=cluster.kubeconfig,
        upsert_existing_objects=True,
        opts=pulumi.ResourceOptions(parent=phase, depends_on=[cluster]),
    )
    handover.give(KEPT_STATE, KeptState(kept_provider))
    handover.endpoints["registry"] = f"https://{service_host(REGISTRY_SERVICE.name, tailnet_settings.name)}"
    handover.endpoints["k8s"] = f"https://{service_host(K8S_SERVICE.name, tailnet_settings.name)}"
