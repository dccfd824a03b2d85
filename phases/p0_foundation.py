"""Phase 0, Foundation: the tailnet (policy, device tags, Tailscale Services) and the host side on indri
(zot with svc:registry, minikube on Docker Desktop with svc:k8s, the metrics agents) and the cluster's
Kubernetes provider, which every later phase uses."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as kubernetes
import pulumi_tailscale as tailscale

from components import health
from components.apps.base import LegacyClaim
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
from components.host.borgmatic import BorgmaticDatabase, BorgRepository
from components.host.minikube import ALLOW_REPLACE_KEY, CONFIRM_ARCHIVE_KEY, ClusterBackup, archive_name_problem
from components.host.minikube import DRIVER as MINIKUBE_DRIVER
from components.host.retire import LegacyService, LegacyServiceRetirementArgs
from components.tailnet import DeviceTagging, Tailnet, TailnetArgs, TailnetNameReleaseArgs, TailscaleService
from components.tailnet.acl import PolicyPart
from phases import Amendable, Handover, Key, Phase, setting_specs
from phases import settings as s
from phases.parsers import passcommand
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


def _archive_name(raw: Any) -> str:
    """A borg archive's name, exactly as `borg list` prints it."""
    value = s.text(raw)
    problem = archive_name_problem(value)
    if problem:
        raise s.InvalidValueError(problem)
    return value


def _borg_repository(raw: Any) -> str:
    """An absolute directory written with its trailing slash, as borgmatic's repository path is."""
    return s.absolute_path(raw).rstrip("/") + "/"


def _passcommand(raw: Any) -> str:
    """A command that reads the passphrase, its program an absolute path (the SSH shell has no Homebrew on PATH)."""
    return passcommand(raw)


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
    allow_replace: bool = s.setting(s.boolean, "replace a profile with a legacy driver, podman or qemu2 (deletes "
                                    "the cluster; also needs replaceConfirmArchive)", default=False, example="true")
    replace_confirm_archive: str | None = s.setting(
        _archive_name, "the borgmatic archive the cluster database will be restored from: confirms allowReplace "
        "(checked to exist and hold the database's dump before anything is deleted)",
        example="indri-2026-01-21T02:00:03.512006")
    replace_borg_repository: str | None = s.setting(
        _borg_repository, "the borg repository of replaceConfirmArchive (unset: blumeops:borgmatic.repository, "
        "phase 3's, or its default below target 3)", example="/Volumes/backups/borg/")
    replace_borg_passcommand: str | None = s.setting(
        _passcommand, "command printing that repository's passphrase (unset: blumeops:borgmatic."
        "encryptionPasscommand, phase 3's, or its default below target 3)",
        example="'/bin/cat /Users/erichblume/.borg/config.yaml'")
    kubeconfig: pulumi.Output[str] | None = s.setting(
        s.multiline_secret, "kubeconfig to use instead of the one read from indri", secret=True,
        example="< ~/.kube/minikube-indri/config.yml")

    def __post_init__(self) -> None:
        if self.replace_confirm_archive is not None and not self.allow_replace:
            raise ValueError(
                f"{CONFIRM_ARCHIVE_KEY} is set but {ALLOW_REPLACE_KEY} is not true: the archive confirms a "
                f"replacement, which allowReplace allows. Set `pulumi config set {ALLOW_REPLACE_KEY} true` to "
                f"replace a legacy profile, or `pulumi config rm {CONFIRM_ARCHIVE_KEY}`")
        unused = [key for key, value in (("replaceBorgRepository", self.replace_borg_repository),
                                         ("replaceBorgPasscommand", self.replace_borg_passcommand))
                  if value is not None]
        if unused and self.replace_confirm_archive is None:
            raise ValueError(
                f"blumeops:minikube.{unused[0]} is set without {CONFIRM_ARCHIVE_KEY}: it only says where that "
                f"archive is. Set `pulumi config set {CONFIRM_ARCHIVE_KEY} <archive>` (with {ALLOW_REPLACE_KEY} "
                f"true), or `pulumi config rm blumeops:minikube.{unused[0]}`")


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
# What the later phases add to the tailnet policy (each its PolicyPart, in its own module's AMENDS).
TAILNET_POLICY: Amendable[tuple[PolicyPart, ...]] = Amendable(
    "tailnet.policyParts", (), "the policy parts the phases of the chain declare")
_OWNED = ("autogroup:admin", "tag:blumeops")
_MEMBERS = "autogroup:member"
# indri's legacy world, as the homelab runs it before the migration: its native services' tags (indri carries
# them), the Tailscale Services they were served as, the grants members have on them, and the cluster reading
# the brew forge (HTTP 3001, SSH 2200: ArgoCD's egress from phase 1 until phase 7). Phase 9 leaves it out.
INDRI_LEGACY_POLICY = PolicyPart(
    "P0 legacy",
    tag_owners={tag: _OWNED for tag in ("tag:grafana", "tag:kiwix", "tag:forge", "tag:devpi", "tag:pg", "tag:feed")},
    services={"svc:grafana": ("tag:grafana",), "svc:feed": ("tag:feed",), "svc:pg": ("tag:pg",),
              "svc:pypi": ("tag:devpi",)},
    grants=({"src": [_MEMBERS], "dst": ["tag:kiwix"], "ip": ["tcp:443"]},
            {"src": [_MEMBERS], "dst": ["tag:forge"], "ip": ["tcp:443", "tcp:22"]},
            {"src": [_MEMBERS], "dst": ["tag:devpi"], "ip": ["tcp:443"]},
            {"src": [_MEMBERS], "dst": ["tag:feed"], "ip": ["tcp:443"]},
            {"src": [_MEMBERS], "dst": ["tag:pg"], "ip": ["tcp:5432"]},
            {"src": ["tag:k8s"], "dst": ["tag:homelab"], "ip": ["tcp:3001", "tcp:2200"]}),
    tests=({"src": "tag:k8s", "accept": ["tag:homelab:3001", "tag:homelab:2200"]},
           {"src": "<admin-user>", "accept": ["tag:grafana:443", "tag:kiwix:443", "tag:feed:443", "tag:pg:5432"]},
           {"src": "<member-user>", "accept": ["tag:kiwix:443", "tag:forge:443", "tag:feed:443", "tag:pg:5432"],
            "deny": ["tag:grafana:443"]}),
    legacy=True,
)


def proxy_tag_part(phase: str, tag: str, *grants: dict[str, Any], tests: tuple[dict[str, Any], ...] = ()) -> PolicyPart:
    """A cutover's part: the name's tag, owned by the operator too (it tags the proxy with it), and the grants
    that keep reaching the service through it."""
    return PolicyPart(phase, tag_owners={tag: (*_OWNED, "tag:k8s-operator")}, grants=grants, tests=tests)


KEEP_LEGACY_TAGS = Amendable("tailnet.keepLegacyTags", True,
                             "indri keeps blumeops:tailnet.legacyServiceTags, the policy its legacy lines")

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


def legacy_name_claim(handover: Handover, service: LegacyService, tailscale_service: str,
                      after: Sequence[pulumi.Resource] = ()) -> LegacyClaim:
    """What holds a tailnet name on indri before a cutover: ``service`` (a brew service or a LaunchAgent) with
    its serve entry of ``tailscale_service``, and that Tailscale Service, released with the program's OAuth
    client (phases 2, 5, 6, 7); ``after``: what the retirement waits for (a backup check)."""
    host, tailnet = handover.take(INDRI), handover.settings.tailnet
    return LegacyClaim(
        retirement=LegacyServiceRetirementArgs(host=host, service=service, serve_service=tailscale_service,
                                               after=tuple(after)),
        release=TailnetNameReleaseArgs(host=host, service=tailscale_service, oauth_client_id=tailnet.oauth_client_id,
                                       oauth_client_secret=tailnet.oauth_client_secret))


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


def later_setting(handover: Handover, key: str) -> Any:
    """A later phase's setting, read at phase 0: the stack's value when the target reaches that phase (its
    section is loaded), else the setting's default."""
    spec = setting_specs()[key]
    module, _, name = spec.section.rpartition(".")
    try:
        return getattr(handover.section(getattr(importlib.import_module(module), name)), spec.field)
    except s.SettingsError:
        return spec.parse(spec.default)


def cluster_backup(handover: Handover, minikube: MinikubeSettings, host: Host) -> ClusterBackup:
    """What replacing a legacy minikube profile is checked against: phase 3's borg repository (or the one the
    minikube settings name) and the cluster database's dump under each tailnet name blumeops-pg has had."""
    # phase 1 and 3 import this module: their names are read when the phase is built, not at import
    from phases.p1_kubernetes import K8S_PG, PG_HOSTNAME
    from phases.p3_postgres_data import EBLUME, PG_PORT

    tools, tailnet = host.tools, handover.settings.tailnet.name
    repository = BorgRepository(
        minikube.replace_borg_repository or later_setting(handover, "borgmatic.repository"),
        later_setting(handover, "borgmatic.repositoryLabel"),
        minikube.replace_borg_passcommand or later_setting(handover, "borgmatic.encryptionPasscommand"))
    problems = repository.problems()
    if problems:  # phase 3's passcommand is plain text in its section: said here, naming where it came from
        raise ValueError(
            "the borg repository a minikube replacement is checked in (blumeops:minikube.replaceBorgRepository/"
            "replaceBorgPasscommand, or else blumeops:borgmatic.repository/encryptionPasscommand): "
            + "; ".join(problems))
    database, owner = later_setting(handover, "pgImport.database"), later_setting(handover, "pgImport.owner")
    names = dict.fromkeys((K8S_PG, handover.amended(PG_HOSTNAME), later_setting(handover, "pgName.hostname")))
    dumps = tuple(BorgmaticDatabase(database, f"{name}.{tailnet}", PG_PORT).archive_path for name in names)
    archive = minikube.replace_confirm_archive or "<archive>"
    server = f"{handover.amended(PG_HOSTNAME)}.{tailnet}"
    restore = (
        f"the program does not restore it (phase 3's import copies the legacy brew PostgreSQL, never an archive): "
        f"restore it by hand from the archive {archive} once blumeops-pg runs again (phase 1), before Miniflux "
        f"(phase 4) writes to it: in an empty directory on the host, `BORG_PASSCOMMAND='"
        f"{repository.encryption_passcommand}' {tools.borg} extract {repository.path}::{archive} <the dump's "
        f"path>`, then `{tools.pg_restore} --clean --if-exists --no-owner --no-acl -h {server} -p {PG_PORT} "
        f"-U {EBLUME} -d {database} <the dump's path>`, and give every table, sequence and type of public to "
        f"{owner} (ALTER ... OWNER TO {owner})")
    return ClusterBackup(borg=tools.borg, jq=tools.jq, repository=repository, dump_paths=dumps, restore=restore)


def minikube_args(minikube: MinikubeSettings, zot: ZotSettings, tailnet: TailnetSettings, host: Host,
                  metrics: MetricsPaths, service: pulumi.Resource | None,
                  backup: ClusterBackup | None = None) -> MinikubeDockerClusterArgs:
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
        replace_archive=minikube.replace_confirm_archive,
        backup=backup,
        service=K8S_SERVICE.name,
        tailscale_service=service,
        kubeconfig=minikube.kubeconfig,
    )


def build(phase: Phase, handover: Handover) -> None:
    settings = handover.settings
    tailnet_settings = settings.tailnet
    host = indri(settings.indri, settings.tools)
    minikube = handover.section(MinikubeSettings)
    # before any resource: what a replacement of a legacy profile is checked against (a bad value stops here)
    backup = cluster_backup(handover, minikube, host)
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
            policy_parts=(INDRI_LEGACY_POLICY, *handover.amended(TAILNET_POLICY)),
            legacy=handover.amended(KEEP_LEGACY_TAGS),
        ),
        opts=pulumi.ResourceOptions(parent=phase),
    )
    handover.give(TAILNET_ACL, tailnet.acl)
    services = tailnet.services

    handover.give(INDRI, host)
    metrics = handover.section(MetricsSettings).paths()
    handover.give(METRICS, metrics)
    zot = handover.section(ZotSettings)
    on_phase = pulumi.ResourceOptions(parent=phase)
    registry_args = zot_args(zot, host, metrics, services[REGISTRY_SERVICE.name])
    ZotRegistry("zot", registry_args, on_phase)
    cluster_args = minikube_args(minikube, zot, tailnet_settings, host, metrics, services[K8S_SERVICE.name],
                                 backup)
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
    # The kubeconfig is the output of a host step: whenever that step changes (its script shares lib.sh with every
    # step) the preview cannot know it yet, and pulumi-kubernetes replaces a provider whose kubeconfig is unknown,
    # and with it every object of the cluster (DiffConfig, provider/pkg/provider/provider.go at 94977969d). With
    # clusterIdentifier set, the provider is replaced only when the identifier changes: the profile and driver of
    # the cluster on indri, which change only when the cluster itself is another one.
    identity = f"minikube/{minikube.profile}/{MINIKUBE_DRIVER}@{settings.indri.host}"
    # Adopting the live homelab (blumeops:adopt), a chart's objects already exist and cannot be imported one by
    # one: the provider takes them over (server-side apply of the chart's fields) instead of failing with
    # AlreadyExists, for as long as the setting is set (phases/adoption.py); removing it is an update of the
    # provider, not a replacement.
    k8s_provider = kubernetes.Provider(
        "minikube",
        kubeconfig=cluster.kubeconfig,
        cluster_identifier=identity,
        upsert_existing_objects=True if handover.settings.adoption else None,
        opts=pulumi.ResourceOptions(parent=phase, depends_on=[cluster]),
    )
    handover.give(KUBERNETES, k8s_provider)
    # The same cluster, for state a rollback keeps (PVCs, their namespaces): retain_on_delete leaves them in
    # the cluster, and upsertExistingObjects lets a later create take them back instead of failing with
    # AlreadyExists (components/cluster/objects.py says why that is safe only for kept objects).
    kept_provider = kubernetes.Provider(
        "minikube-kept",
        kubeconfig=cluster.kubeconfig,
        cluster_identifier=identity,
        upsert_existing_objects=True,
        opts=pulumi.ResourceOptions(parent=phase, depends_on=[cluster]),
    )
    handover.give(KEPT_STATE, KeptState(kept_provider))
    handover.endpoints["registry"] = f"https://{service_host(REGISTRY_SERVICE.name, tailnet_settings.name)}"
    handover.endpoints["k8s"] = f"https://{service_host(K8S_SERVICE.name, tailnet_settings.name)}"
