"""ZotRegistry: the zot OCI registry on the host, a pull-through cache of the upstream registries and the
home of the homelab's own images, served to the tailnet as ``svc:registry``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pulumi

from components import health
from components.host.connection import Host
from components.host.launch_agent import (
    AgentName,
    LaunchAgent,
    LaunchAgentArgs,
    PeriodicAgentArgs,
    periodic_agent,
    restart_marker,
)
from components.host.metrics import ZOT_GAUGES, preamble
from components.host.script import HostStep
from components.host.serve import TailscaleServe, TailscaleServeArgs

ZOT_TYPE = "blumeops:host:ZotRegistry"
DIST_SPEC_VERSION = "1.1.1"
CREDENTIALS_FILE = "sync-credentials.json"


@dataclass(frozen=True, slots=True)
class RegistryMirror:
    """An upstream zot mirrors on demand: ``<registry>/<repo>`` is served as zot's ``/<registry>/<repo>``."""

    registry: str  # "docker.io"
    url: str  # "https://registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class MetricsPaths:
    textfile_dir: str  # node_exporter textfile collector directory
    log_dir: str  # logs of the metrics agents
    script_dir: str  # where the agents' scripts are installed


@dataclass(frozen=True, slots=True)
class ZotRegistryArgs:
    host: Host
    binary: str
    config_path: str
    data_dir: str
    log_dir: str
    port: int
    upstreams: Sequence[RegistryMirror]
    metrics: MetricsPaths
    agent_name: AgentName  # the LaunchAgent that runs zot
    metrics_agent_name: AgentName  # the LaunchAgent that writes zot_up
    log_level: str = "info"
    # How to build the binary on this host, added to the generic "build zot from source" instruction.
    build_hint: str = ""
    docker_hub_user: str | None = None
    docker_hub_token: pulumi.Output[str] | None = None
    service: str = "svc:registry"
    # The tailscale.Service of ``service``: the serve entry waits for it.
    tailscale_service: pulumi.Resource | None = None
    ready_attempts: int = 60
    ready_delay_seconds: int = 2

    def __post_init__(self) -> None:
        if (self.docker_hub_user is None) != (self.docker_hub_token is None):
            raise ValueError("ZotRegistry: Docker Hub credentials need both the user and the token")
        registries = [upstream.registry for upstream in self.upstreams]
        if len(set(registries)) != len(registries):
            raise ValueError(f"ZotRegistry: an upstream registry is listed twice in {registries}")

    @property
    def config_dir(self) -> str:
        return self.config_path.rsplit("/", 1)[0]

    @property
    def credentials_path(self) -> str:
        return f"{self.config_dir}/{CREDENTIALS_FILE}"

    @property
    def has_credentials(self) -> bool:
        return self.docker_hub_user is not None

    @property
    def docker_hub_host(self) -> str:
        """The host zot's credentials file is keyed by: the docker.io upstream's URL host."""
        for upstream in self.upstreams:
            if upstream.registry == "docker.io":
                return urlsplit(upstream.url).netloc
        return "registry-1.docker.io"

    def config(self) -> dict[str, Any]:
        sync: dict[str, Any] = {"enable": True}
        if self.has_credentials:
            sync["credentialsFile"] = self.credentials_path
        sync["registries"] = [
            {
                "urls": [upstream.url],
                "content": [{"prefix": "**", "destination": f"/{upstream.registry}"}],
                "onDemand": True,
                "tlsVerify": True,
                "maxRetries": 3,
                "retryDelay": "10s",
                # with http.compat docker2s2, Docker manifests keep their digests: digest-pinned pulls hit
                "preserveDigest": True,
            }
            for upstream in self.upstreams
        ]
        return {
            "distSpecVersion": DIST_SPEC_VERSION,
            "storage": {"rootDirectory": self.data_dir, "gc": True, "gcDelay": "1h", "gcInterval": "24h"},
            # port 5050 by default: macOS AirPlay Receiver holds 5000
            "http": {"address": "0.0.0.0", "port": str(self.port), "compat": ["docker2s2"]},
            "log": {"level": self.log_level},
            "extensions": {
                "metrics": {"enable": True, "prometheus": {"path": "/metrics"}},
                # search without cve: CVE scanning would download Trivy's databases every day
                "search": {"enable": True},
                "ui": {"enable": True},
                "sync": sync,
            },
        }

    def config_text(self) -> str:
        return json.dumps(self.config(), indent=2)

    @staticmethod
    def credentials_json(host: str, user: str, token: str) -> str:
        return json.dumps({host: {"username": user, "password": token}}, indent=2)

    @property
    def out_log(self) -> str:
        return self.agent_name.out_log(self.log_dir)

    @property
    def err_log(self) -> str:
        return self.agent_name.err_log(self.log_dir)

    @property
    def restart_marker(self) -> str:
        """The marker the config step leaves when config.json or the credentials changed: the agent step
        restarts zot once and removes it."""
        return restart_marker(self.config_path)

    def restart_signal(self, credentials_json: str = "") -> str:
        """A digest of what zot reads besides its plist (config.json and the credentials file). It is in the
        agent step's and the ready step's preambles, so a change of either file re-runs both: one restart,
        then the readiness wait. Derived from the credentials, it travels as a secret."""
        return hashlib.sha256(f"{self.config_text()}\0{credentials_json}".encode()).hexdigest()[:16]

    @property
    def metrics_script_path(self) -> str:
        return f"{self.metrics.script_dir}/zot-metrics"

    def config_step(self, name: str) -> HostStep:
        variables: dict[str, str | int | bool] = {
            "ZOT_BINARY": self.binary,
            "ZOT_CONFIG_PATH": self.config_path,
            "ZOT_CONFIG": self.config_text(),
            "ZOT_DATA_DIR": self.data_dir,
            "CREDENTIALS_PATH": self.credentials_path,
            "FILE_TOOL": self.host.tools.file,
            "BUILD_HINT": self.build_hint,
        }
        does = (f"checks the zot binary, writes {self.config_path} (validated with `zot verify`) and creates "
                f"{self.data_dir}")
        undoes = (f"removes {self.config_path} and the credentials file (files it did not write are kept or put "
                  f"back; zot's image cache in {self.data_dir} stays)")
        if self.has_credentials:
            return HostStep(name, "zot-config", variables, secrets=("CREDENTIALS_JSON",), does=does, undoes=undoes)
        return HostStep(name, "zot-config", {**variables, "CREDENTIALS_JSON": ""}, does=does, undoes=undoes)

    def agent(self, restart_signal: str | pulumi.Output[str] | None = None) -> LaunchAgentArgs:
        """zot's LaunchAgent: the one step that restarts zot (for a changed plist, config or credentials).

        ``restart_signal`` defaults to ``restart_signal()`` (no credentials)."""
        return LaunchAgentArgs(
            host=self.host,
            label=self.agent_name.label,
            program_arguments=(self.binary, "serve", self.config_path),
            standard_out_path=self.out_log,
            standard_error_path=self.err_log,
            run_at_load=True,
            keep_alive=True,
            restart_markers=(self.restart_marker,),
            restart_signal=self.restart_signal() if restart_signal is None else restart_signal,
        )

    def ready_step(self, name: str, restart_signal: str | pulumi.Output[str] | None = None) -> HostStep:
        """The readiness wait; it re-runs whenever the agent step may have restarted zot (same signal, same
        plist). An Output ``restart_signal`` (derived from the credentials) is sent as a secret."""
        plist_digest = hashlib.sha256(self.agent().plist().encode()).hexdigest()[:16]
        variables: dict[str, str | int | bool] = {
            "READY_URL": f"http://localhost:{self.port}/v2/",
            "READY_ATTEMPTS": self.ready_attempts,
            "READY_DELAY": self.ready_delay_seconds,
            "CURL": self.host.tools.curl,
            "AGENT_LABEL": self.agent_name.label,
            "ZOT_ERR_LOG": self.err_log,
            "GUI_DOMAIN": self.host.gui_domain,
            "PLIST_DIGEST": plist_digest,
        }
        signal = self.restart_signal() if restart_signal is None else restart_signal
        does = f"waits until zot answers at http://localhost:{self.port}/v2/"
        undoes = "nothing (a wait changes nothing)"
        if isinstance(signal, pulumi.Output):
            return HostStep(name, "zot-ready", variables, secrets=("RESTART_SIGNAL",), does=does, undoes=undoes)
        return HostStep(name, "zot-ready", {**variables, "RESTART_SIGNAL": signal}, does=does, undoes=undoes)

    def metrics_job(self) -> PeriodicAgentArgs:
        """The metrics agent: every 60 s it probes zot's catalog and writes the gauge ``zot_up``."""
        script = HostStep(
            "zot-metrics",
            "zot-metrics",
            {
                "CURL": self.host.tools.curl,
                "PROBE_URL": f"http://localhost:{self.port}/v2/_catalog",
                "TEXTFILE": f"{self.metrics.textfile_dir}/zot.prom",
                **preamble(ZOT_GAUGES),
            },
            does=f"probes zot's catalog and writes zot_up to {self.metrics.textfile_dir}/zot.prom (each run)",
            undoes="nothing (the agent that runs it is removed with its LaunchAgent)",
        )
        return PeriodicAgentArgs(self.host, self.metrics_agent_name, script, self.metrics_script_path,
                                 self.metrics.log_dir)

    def metrics_script(self) -> str:
        """The script the metrics agent runs (installed at ``metrics_script_path``)."""
        return self.metrics_job().script.render()

    def metrics_script_step(self, name: str) -> HostStep:
        return self.metrics_job().install_step(name)

    def metrics_agent(self) -> LaunchAgentArgs:
        return self.metrics_job().agent()

    def health_checks(self) -> list[health.HealthCheck]:
        """zot answers ``/v2/`` on the host and as ``https://<service>.<tailnet>/v2/``; its gauge file is fresh."""
        ssh = health.SshTarget.of(self.host)
        interval = self.metrics_agent().start_interval or 60
        return [
            health.HttpEndpoint(
                name="zot /v2/ on localhost", url=f"http://localhost:{self.port}/v2/", side=health.HOST_SIDE,
                host=ssh, curl=self.host.tools.curl,
                fix=f"zot is down: read {self.err_log} (`launchd {self.agent_name.label}` above says if it runs)"),
            health.HttpEndpoint(
                name=f"zot /v2/ via {self.service}",
                url=f"https://{self.service.removeprefix('svc:')}.{health.TAILNET}/v2/",
                fix=f"`tailscale serve status` on the host: {self.service} must forward to "
                    f"http://localhost:{self.port} (the host step {self.service} re-points it on `make up`)"),
            health.Textfile(ssh, f"{self.metrics.textfile_dir}/zot.prom", 3 * interval, self.metrics_agent_name.label),
        ]

    def preconditions(self, config_step: str) -> list[health.Precondition]:
        return [health.Precondition(
            f"the zot binary built from source at {self.binary} (arm64; Homebrew has no zot)", config_step)]

    def serve(self) -> TailscaleServeArgs:
        return TailscaleServeArgs(
            host=self.host,
            service=self.service,
            protocol="https",
            port=443,
            target=f"http://localhost:{self.port}",
            tailscale_service=self.tailscale_service,
        )


class ZotRegistry(pulumi.ComponentResource):
    """Puts zot on the host: its config.json (and the Docker Hub credentials file, 0600, when configured),
    the LaunchAgent ``agent_name`` that runs it (the only step that restarts zot: once, when its plist, the
    config or the credentials changed), a readiness wait on ``/v2/`` after every such change, the
    ``svc:registry`` serve entry (HTTPS 443 -> ``http://localhost:<port>``) and the metrics agent.

    The binary is built from source by hand (the config step checks it exists and is arm64). A config.json,
    credentials file or plist of a pre-existing install is backed up before the program first writes it.
    Undo: deleting it clears the serve entry, unloads and removes both agents and the metrics script,
    and removes config.json and the credentials file, putting back (and loading) what a pre-existing install
    had there; the image cache in ``data_dir`` stays.
    """

    def __init__(self, name: str, args: ZotRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        secrets: dict[str, pulumi.Output[str]] = {}
        signal: str | pulumi.Output[str] = args.restart_signal()
        if args.docker_hub_user is not None and args.docker_hub_token is not None:
            user, host = args.docker_hub_user, args.docker_hub_host
            credentials: pulumi.Output[str] = pulumi.Output.secret(
                args.docker_hub_token.apply(lambda token: ZotRegistryArgs.credentials_json(host, user, token))
            )
            secrets["CREDENTIALS_JSON"] = credentials
            # a digest of the secret: kept secret too (it travels only inside secret stdins)
            digest: pulumi.Output[str] = credentials.apply(args.restart_signal)
            signal = pulumi.Output.secret(digest)
        config_step = args.config_step(f"{name}-config")
        ready_step = args.ready_step(f"{name}-ready", signal)
        super().__init__(
            ZOT_TYPE,
            name,
            {
                "binary": args.binary,
                "configPath": args.config_path,
                "dataDir": args.data_dir,
                "port": str(args.port),
                "label": args.agent_name.label,
                "upstreams": {upstream.registry: upstream.url for upstream in args.upstreams},
                "dockerHubCredentials": args.has_credentials,
                "service": args.service,
                "artifacts": {"host/zot/config.json": args.config_text() + "\n"},
                **health.props(args.health_checks(), args.preconditions(config_step.name)),
            },
            opts,
        )
        child = pulumi.ResourceOptions(parent=self)
        self.config = config_step.register(
            args.host, secret_values=secrets, identity=(args.config_path,), opts=child
        )
        # after the config step: it leaves the restart marker this step acts on
        self.agent = LaunchAgent(
            f"{name}-agent", args.agent(signal), pulumi.ResourceOptions(parent=self, depends_on=[self.config])
        )
        ready_secrets = {"RESTART_SIGNAL": signal} if isinstance(signal, pulumi.Output) else {}
        self.ready = ready_step.register(
            args.host, secret_values=ready_secrets, opts=pulumi.ResourceOptions(parent=self, depends_on=[self.agent])
        )
        self.serve = TailscaleServe(
            f"{name}-serve", args.serve(), pulumi.ResourceOptions(parent=self, depends_on=[self.ready])
        )
        self.metrics_script, self.metrics_agent = periodic_agent(f"{name}-metrics-agent", args.metrics_job(), self)
        self.register_outputs({"label": args.agent_name.label, "service": args.service})
