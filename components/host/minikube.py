"""MinikubeDockerCluster: minikube on Docker Desktop (docker driver, containerd runtime), its registry
mirrors, the ``svc:k8s`` entry that follows the API server's dynamic port, and the kubeconfig."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import health
from components.host.borgmatic import BorgRepository
from components.host.connection import Host
from components.host.launch_agent import (
    AgentName,
    LaunchAgentArgs,
    PeriodicAgentArgs,
    install_file_step,
    path_problem,
    periodic_agent,
)
from components.host.metrics import MINIKUBE_GAUGES, preamble
from components.host.script import HostStep
from components.host.zot import MetricsPaths, RegistryMirror

CLUSTER_TYPE = "blumeops:host:MinikubeDockerCluster"
DRIVER = "docker"
CONTAINER_RUNTIME = "containerd"
# Drivers of the profiles the step may replace (delete and recreate) when allowReplace is set; any other
# driver is refused, and a docker profile is never deleted by the program.
LEGACY_DRIVERS = ("podman", "qemu2", "qemu", "hyperkit", "virtualbox", "vfkit")
# The settings that allow and confirm a replacement, named in the step's messages (the phase declares them).
ALLOW_REPLACE_KEY = "blumeops:minikube.allowReplace"
CONFIRM_ARCHIVE_KEY = "blumeops:minikube.replaceConfirmArchive"
# A borg archive name as borgmatic writes them ("<host>-2026-01-19T02:00:01.123456"): no "/" (borg refuses it),
# no "::" (borg's repository::archive separator), nothing a shell or a log line would read otherwise.
_ARCHIVE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+@-]{0,199}$")
# Host name of the Mac as seen from the node and pods (minikube adds it to /etc/hosts and CoreDNS).
HOST_ALIAS = "host.minikube.internal"
# The first line of every hosts.toml the program writes: the step removes only files that carry it (the ones
# of registries it no longer mirrors), never the operator's own.
MANAGED_MARK = "# managed by blumeops"
_DISK = re.compile(r"^([1-9][0-9]*)(m|mb|g|gb)$")


def disk_size_mb(size: str) -> int:
    """minikube's ``--disk-size`` in MB, as its profile config.json records it (``200g`` -> 204800)."""
    match = _DISK.match(size.lower())
    if not match:
        raise ValueError(f"{size!r} is not a disk size like 200g")
    number = int(match.group(1))
    return number * 1024 if match.group(2).startswith("g") else number


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mirror_hosts_toml(upstream: RegistryMirror, zot_port: int) -> str:
    """containerd's hosts.toml for ``upstream``: pull through zot's ``/v2/<registry>`` namespace first."""
    mirror = f"http://{HOST_ALIAS}:{zot_port}/v2/{upstream.registry}"
    return (
        f"{MANAGED_MARK}\n"
        f"# {upstream.registry}: pull through zot's /{upstream.registry} namespace on the Mac, then the upstream.\n"
        f"server = {_toml_string(upstream.url)}\n\n"
        f"[host.{_toml_string(mirror)}]\n"
        '  capabilities = ["pull", "resolve"]\n'
        "  # zot serves the upstream under /v2/<registry>: the path is used as written, not with /v2 appended\n"
        "  override_path = true\n"
    )


def private_hosts_toml(zot_port: int) -> str:
    """containerd's hosts.toml for the private registry name: straight to zot on the Mac (plain HTTP)."""
    zot = f"http://{HOST_ALIAS}:{zot_port}"
    return (
        f"{MANAGED_MARK}\n"
        "# the homelab's own images: zot on the Mac, reached from the node without the tailnet.\n"
        f"server = {_toml_string(zot)}\n\n"
        f"[host.{_toml_string(zot)}]\n"
        '  capabilities = ["pull", "resolve", "push"]\n'
    )


def archive_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a borg archive name the replacement is confirmed with (None: it can)."""
    if name.lower() in ("latest", "last"):
        return (f"{name!r} is not an archive's name (borgmatic's 'latest' is a moving target, not a confirmation): "
                "name the archive itself, as `borg list <repository>` prints it")
    if not _ARCHIVE.match(name) or "::" in name:
        return (f"{name!r} is not a borg archive name (letters, digits and ._:+@- only, no '/' and no '::'; "
                "as `borg list <repository>` prints it)")
    return None


@dataclass(frozen=True, slots=True)
class ClusterBackup:
    """Where the cluster database's dumps are kept: what the replacement of a legacy profile is checked
    against before ``minikube delete`` (the archive the operator names must exist and hold one of
    ``dump_paths``), and how the database comes back afterwards (``restore``, printed before the delete)."""

    borg: str
    jq: str
    repository: BorgRepository
    # inside an archive, without the leading "/" (also matched below a prefix, as RecentBorgmaticArchive does):
    # the cluster database's dump under each name the database server has had
    dump_paths: tuple[str, ...]
    restore: str  # in words and commands: who restores the database from the archive, and how
    # borg waits this long for the lock of a running backup (its call is bounded at this plus 120 s)
    lock_wait_seconds: int = 600

    def __post_init__(self) -> None:
        problems = [*self.repository.problems()]
        if self.lock_wait_seconds <= 0:
            problems.append(f"lock_wait_seconds {self.lock_wait_seconds} must be positive")
        for key, value in (("borg", self.borg), ("jq", self.jq)):
            problem = path_problem(value)
            if problem:
                problems.append(f"{key} {value!r} {problem}")
        if not self.dump_paths:
            problems.append("dump_paths is empty: name the path of the cluster database's dump in an archive")
        for path in self.dump_paths:
            if not path or path.startswith("/") or "\n" in path:
                problems.append(f"dump path {path!r} must be one relative path (borg stores paths without the /)")
        if not self.restore.strip():
            problems.append("restore is empty: say how the database comes back")
        if problems:
            raise ValueError("ClusterBackup: " + "; ".join(problems))


def kubeconfig_path(host: Host) -> str:
    """Where minikube writes the profile's kubeconfig on the host (and the host steps read it)."""
    return f"{host.home}/.kube/config"


@dataclass(frozen=True, slots=True)
class MinikubeDockerClusterArgs:
    host: Host
    profile: str
    cpus: int
    memory_mb: int
    disk_size: str
    apiserver_port: int  # inside the node; the host port Docker publishes it on is dynamic
    api_hostname: str  # "k8s.<tailnet>.ts.net": the Tailscale Service name clients use
    apiserver_names: Sequence[str]  # extra certificate SANs (api_hostname among them)
    upstreams: Sequence[RegistryMirror]
    zot_port: int
    private_registry: str  # "registry.<tailnet>.ts.net"
    metrics: MetricsPaths
    api_serve_agent_name: AgentName  # the LaunchAgent that re-points the API serve entry
    metrics_agent_name: AgentName  # the LaunchAgent that writes the minikube gauges
    allow_replace: bool = False
    # The borg archive the cluster database will be restored from: with allow_replace, the second setting a
    # replacement of a legacy profile needs (checked against ``backup`` before anything is deleted).
    replace_archive: str | None = None
    # The repository and dump the replacement is checked against (and the refusals' instructions name).
    backup: ClusterBackup | None = None
    listen_address: str = "0.0.0.0"
    service: str = "svc:k8s"
    # The tailscale.Service of ``service``: the serve step waits for it.
    tailscale_service: pulumi.Resource | None = None
    # A kubeconfig given in settings (previews from a machine that cannot reach the host): used instead of
    # the one the kubeconfig step reads.
    kubeconfig: pulumi.Output[str] | None = field(default=None)
    # seconds between the (at most three) `minikube status` reads when one gives no known state
    status_retry_delay_seconds: int = 5
    # Pulumi's timeout of the cluster step: above the bounds of a legacy delete plus a first start (30 min each)
    cluster_timeout_minutes: int = 70

    def __post_init__(self) -> None:
        disk_size_mb(self.disk_size)
        if self.status_retry_delay_seconds < 0 or self.cluster_timeout_minutes <= 0:
            raise ValueError("MinikubeDockerCluster: status_retry_delay_seconds must be >= 0 and "
                             "cluster_timeout_minutes > 0")
        if self.replace_archive is not None:
            problem = archive_name_problem(self.replace_archive)
            if problem:
                raise ValueError(f"MinikubeDockerCluster: replace_archive {problem}")
            if not self.allow_replace or self.backup is None:
                raise ValueError("MinikubeDockerCluster: replace_archive needs allow_replace and the backup it is "
                                 "checked against")
        if self.api_hostname not in self.apiserver_names:
            raise ValueError(f"MinikubeDockerCluster: {self.api_hostname} must be among the apiserver names "
                             "(the API server's certificate must name it for TCP passthrough)")

    @property
    def kubeconfig_path(self) -> str:
        return kubeconfig_path(self.host)

    @property
    def api_server_url(self) -> str:
        return f"https://{self.api_hostname}"

    def mirrors(self) -> dict[str, str]:
        """registry host -> hosts.toml, for every upstream and the private registry name."""
        files = {upstream.registry: mirror_hosts_toml(upstream, self.zot_port) for upstream in self.upstreams}
        files[self.private_registry] = private_hosts_toml(self.zot_port)
        return dict(sorted(files.items()))

    def mirror_path(self, registry: str) -> str:
        return f"{self.host.minikube_home}/files/etc/containerd/certs.d/{registry}/hosts.toml"

    def start_flags(self) -> list[str]:
        """``minikube start`` flags, for reading (the script builds the same list from its preamble)."""
        return [
            f"--driver={DRIVER}", f"--container-runtime={CONTAINER_RUNTIME}", f"--cpus={self.cpus}",
            f"--memory={self.memory_mb}", f"--disk-size={self.disk_size}",
            *(f"--apiserver-names={name}" for name in self.apiserver_names),
            f"--apiserver-port={self.apiserver_port}", f"--listen-address={self.listen_address}",
        ]

    def replace_variables(self) -> dict[str, str | int | bool]:
        """The preamble of the replacement guard (empty values when no backup is known)."""
        backup = self.backup
        return {
            "ALLOW_REPLACE_KEY": ALLOW_REPLACE_KEY,
            "CONFIRM_ARCHIVE_KEY": CONFIRM_ARCHIVE_KEY,
            "REPLACE_ARCHIVE": self.replace_archive or "",
            "REPLACE_BORG": backup.borg if backup else "",
            "REPLACE_JQ": backup.jq if backup else "",
            "REPLACE_REPOSITORY": backup.repository.path if backup else "",
            "REPLACE_PASSCOMMAND": backup.repository.encryption_passcommand if backup else "",
            "REPLACE_DUMP_PATHS": "\n".join(backup.dump_paths) if backup else "",
            "REPLACE_RESTORE": backup.restore if backup else "",
            "REPLACE_LOCK_WAIT": backup.lock_wait_seconds if backup else 600,
        }

    def cluster_step(self, name: str) -> HostStep:
        variables: dict[str, str | int | bool] = {
            "PROFILE": self.profile,
            "DRIVER": DRIVER,
            "CONTAINER_RUNTIME": CONTAINER_RUNTIME,
            "CPUS": self.cpus,
            "MEMORY_MB": self.memory_mb,
            "DISK_SIZE": self.disk_size,
            "DISK_SIZE_MB": disk_size_mb(self.disk_size),
            "APISERVER_NAMES": "\n".join(self.apiserver_names),
            "APISERVER_PORT": self.apiserver_port,
            "LISTEN_ADDRESS": self.listen_address,
            "ALLOW_REPLACE": self.allow_replace,
            "LEGACY_DRIVERS": "\n".join(LEGACY_DRIVERS),
            **self.replace_variables(),
            "MANAGED_MARK": MANAGED_MARK,
            "MINIKUBE_HOME": self.host.minikube_home,
            "MINIKUBE": self.host.tools.minikube,
            "DOCKER": self.host.tools.docker,
            "PLUTIL": self.host.tools.plutil,
            "STATUS_RETRY_DELAY": self.status_retry_delay_seconds,
        }
        mirrors = self.mirrors()
        variables["MIRROR_COUNT"] = len(mirrors)
        for index, (registry, toml) in enumerate(mirrors.items(), start=1):
            variables[f"MIRROR_{index}_REGISTRY"] = registry
            variables[f"MIRROR_{index}_TOML"] = toml.rstrip("\n")
        return HostStep(
            name, "minikube-cluster", variables,
            does=(f"writes the containerd mirror files and starts the minikube profile {self.profile} "
                  f"({DRIVER} driver, {CONTAINER_RUNTIME}, {self.cpus} CPUs, {self.memory_mb} MB, {self.disk_size}) "
                  "unless it is running; a profile of a legacy driver is refused, or deleted first only with "
                  f"{ALLOW_REPLACE_KEY} and {CONFIRM_ARCHIVE_KEY} naming an archive that holds the database's dump"),
            undoes=f"runs `minikube delete -p {self.profile}`: every cluster object and volume goes",
        )

    def api_serve_script(self, name: str = "k8s-api-serve") -> HostStep:
        return HostStep(
            name,
            "k8s-api-serve",
            {
                "PROFILE": self.profile,
                "APISERVER_PORT": self.apiserver_port,
                "SERVICE": self.service,
                "SERVE_PORT": 443,
                "DOCKER": self.host.tools.docker,
                "TAILSCALE": self.host.tools.tailscale,
                "PLUTIL": self.host.tools.plutil,
            },
            does=(f"points `tailscale serve --service={self.service}` tcp:443 at the API server's current host "
                  "port"),
            undoes=f"clears the serve entry of {self.service}",
        )

    @property
    def api_serve_script_path(self) -> str:
        return f"{self.metrics.script_dir}/k8s-api-serve"

    @property
    def metrics_script_path(self) -> str:
        return f"{self.metrics.script_dir}/minikube-metrics"

    def install_step(self, name: str, path: str, content: str) -> HostStep:
        return install_file_step(name, path, content)

    def kubeconfig_step(self, name: str) -> HostStep:
        return HostStep(
            name,
            "minikube-kubeconfig",
            {
                "PROFILE": self.profile,
                "KUBECTL": self.host.tools.kubectl,
                "KUBECONFIG_PATH": self.kubeconfig_path,
                "API_SERVER_URL": self.api_server_url,
            },
            does=f"prints the profile's kubeconfig for {self.api_server_url} (a secret output; changes nothing)",
            undoes="nothing (it changed nothing)",
        )

    def metrics_script_step(self) -> HostStep:
        return HostStep(
            "minikube-metrics",
            "minikube-metrics",
            {
                "PROFILE": self.profile,
                "MINIKUBE": self.host.tools.minikube,
                "KUBECTL": self.host.tools.kubectl,
                "DOCKER": self.host.tools.docker,
                "KUBECONFIG_PATH": self.kubeconfig_path,
                "MINIKUBE_HOME": self.host.minikube_home,
                "TEXTFILE": f"{self.metrics.textfile_dir}/minikube.prom",
                **preamble(MINIKUBE_GAUGES),
            },
            does=f"probes minikube and its API server and writes minikube_* to "
                 f"{self.metrics.textfile_dir}/minikube.prom (each run)",
            undoes="nothing (the agent that runs it is removed with its LaunchAgent)",
        )

    def health_checks(self) -> list[health.HealthCheck]:
        """The API server answers ``/readyz`` through ``svc:k8s``; the gauge file is fresh."""
        interval = self.metrics_agent().start_interval or 60
        return [
            health.HttpEndpoint(
                name=f"k8s API /readyz via {self.service}", url=f"{self.api_server_url}/readyz", tls="cluster",
                fix=f"`minikube status -p {self.profile}` on the host; `launchd {self.api_serve_agent_name.label}` "
                    f"re-points {self.service} at the API server's port every minute"),
            health.Textfile(health.SshTarget.of(self.host), f"{self.metrics.textfile_dir}/minikube.prom",
                            3 * interval, self.metrics_agent_name.label),
        ]

    def preconditions(self, cluster_step: str) -> list[health.Precondition]:
        return [health.Precondition(
            f"Docker Desktop installed through its GUI and running, with at least {self.memory_mb} MB of memory "
            "(Settings > Resources) and its own Kubernetes off", cluster_step)]

    def metrics_script(self) -> str:
        return self.metrics_script_step().render()

    def _periodic(self, name: AgentName, script: HostStep, path: str) -> PeriodicAgentArgs:
        # minikube and docker read ~/.minikube and ~/.docker; minikube runs `docker` by name.
        environment = {"HOME": self.host.home, "PATH": self.host.tools.search_path()}
        return PeriodicAgentArgs(self.host, name, script, path, self.metrics.log_dir,
                                 environment_variables=environment)

    def api_serve_job(self) -> PeriodicAgentArgs:
        """The agent that re-points svc:k8s at the API server's current host port every 60 s."""
        return self._periodic(self.api_serve_agent_name, self.api_serve_script(), self.api_serve_script_path)

    def metrics_job(self) -> PeriodicAgentArgs:
        """The agent that writes the minikube gauges every 60 s."""
        return self._periodic(self.metrics_agent_name, self.metrics_script_step(), self.metrics_script_path)

    def api_serve_agent(self) -> LaunchAgentArgs:
        return self.api_serve_job().agent()

    def metrics_agent(self) -> LaunchAgentArgs:
        return self.metrics_job().agent()


class MinikubeDockerCluster(pulumi.ComponentResource):
    """Puts on the host: the minikube profile (docker driver, containerd runtime; started only when not
    Running), containerd ``hosts.toml`` mirrors into zot via minikube's file sync (marked as managed; the
    ones of registries no longer mirrored are removed, from the node too), the ``svc:k8s`` serve entry
    pointing at the API server's current host port, the LaunchAgents ``api_serve_agent_name`` (re-points it
    every 60 s) and ``metrics_agent_name``, and reads the kubeconfig (``kubeconfig``, a secret: server
    ``https://<api_hostname>``, certificates embedded).

    The cluster step is protected: destroying it deletes the cluster and its data, so Pulumi refuses until
    it is unprotected (``pulumi state unprotect``). Its delete runs ``minikube delete`` and removes every
    managed mirror file; the other steps' deletes clear the serve entry, unload the agents, remove their scripts.
    """

    def __init__(self, name: str, args: MinikubeDockerClusterArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        cluster_step = args.cluster_step(f"{name}-cluster")
        serve_step = args.api_serve_script(f"{name}-api-serve")
        kubeconfig_step = args.kubeconfig_step(f"{name}-kubeconfig")
        artifacts: dict[str, str] = {
            f"host/containerd/certs.d/{registry}/hosts.toml": toml for registry, toml in args.mirrors().items()
        }
        props: dict[str, Any] = {
            "profile": args.profile,
            "driver": DRIVER,
            "containerRuntime": CONTAINER_RUNTIME,
            "cpus": args.cpus,
            "memoryMb": args.memory_mb,
            "diskSize": args.disk_size,
            "apiserverNames": list(args.apiserver_names),
            "apiserverPort": args.apiserver_port,
            "listenAddress": args.listen_address,
            "allowReplace": args.allow_replace,
            "replaceConfirmArchive": args.replace_archive,
            "mirrors": sorted(args.mirrors()),
            "service": args.service,
            "apiServer": args.api_server_url,
            "artifacts": artifacts,
            **health.props(args.health_checks(), args.preconditions(cluster_step.name)),
        }
        super().__init__(CLUSTER_TYPE, name, props, opts)
        self.cluster = cluster_step.register(
            args.host, identity=(args.profile,), timeout_minutes=args.cluster_timeout_minutes,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        serve_depends: list[pulumi.Resource] = [self.cluster]
        if args.tailscale_service is not None:
            serve_depends.append(args.tailscale_service)
        self.api_serve = serve_step.register(
            args.host, identity=(args.service,), opts=pulumi.ResourceOptions(parent=self, depends_on=serve_depends)
        )
        self.api_serve_script, self.api_serve_agent = periodic_agent(
            f"{name}-api-serve-agent", args.api_serve_job(), self, depends_on=[self.api_serve]
        )
        self.metrics_script, self.metrics_agent = periodic_agent(f"{name}-metrics-agent", args.metrics_job(), self)
        self.kubeconfig: pulumi.Output[str]
        if args.kubeconfig is not None:
            self.kubeconfig_command = None
            self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        else:
            self.kubeconfig_command = kubeconfig_step.register(
                args.host, secret_stdout=True, opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster])
            )
            self.kubeconfig = pulumi.Output.secret(self.kubeconfig_command.stdout)
        self.register_outputs({"apiServer": args.api_server_url, "profile": args.profile})
