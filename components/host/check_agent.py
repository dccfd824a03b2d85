"""HealthCheckAgent: the periodic mode of ``ops check`` on the host itself, and the script both share.

``host_probe_step`` renders ``scripts/health-probes.sh`` for a list of host-side checks (components/health.py):
``ops check`` sends it over one SSH session (action ``check``), the agent runs it every ``interval_seconds``
(action ``agent``) and writes the ``blumeops_check_*`` gauges to the textfile collector, so Grafana shows
what ``ops check`` would say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components import health
from components.host.connection import Host
from components.host.launch_agent import AgentName, LaunchAgentArgs, install_file_step, scripted_agent
from components.host.script import HostStep

CHECK_AGENT_TYPE = "blumeops:host:HealthCheckAgent"


def host_probe_step(name: str, checks: Sequence[health.HealthCheck], metrics_textfile: str = "") -> HostStep:
    """The host-side ``checks`` as one run of ``health-probes.sh``: all in parallel, each under its timeout."""
    variables: dict[str, str | int | bool] = {"PROBE_COUNT": len(checks), "METRICS_TEXTFILE": metrics_textfile}
    for index, check in enumerate(checks, start=1):
        prefix = f"PROBE_{index}_"
        variables[prefix + "NAME"] = check.name
        variables[prefix + "KIND"] = check.kind
        variables[prefix + "TIMEOUT"] = check.timeout
        if isinstance(check, health.LaunchdJob):
            tool, target, limit = check.launchctl, f"{check.domain}/{check.label}", ""
        elif isinstance(check, health.Textfile):
            tool, target, limit = "", check.path, str(check.max_age_seconds)
        elif isinstance(check, health.HttpEndpoint) and check.side == health.HOST_SIDE and check.curl:
            tool, target, limit = check.curl, check.url, " ".join(str(code) for code in check.expect)
        else:
            raise ValueError(f"{check.name} is not a host-side check")
        variables[prefix + "TOOL"] = tool
        variables[prefix + "TARGET"] = target
        variables[prefix + "LIMIT"] = limit
    return HostStep(name, "health-probes", variables,
                    does=f"probes {len(checks)} host-side health checks"
                         + (f" and writes blumeops_check_* to {metrics_textfile}" if metrics_textfile else ""),
                    undoes="nothing (a probe changes nothing)")


@dataclass(frozen=True, slots=True)
class HealthCheckAgentArgs:
    host: Host
    checks: Sequence[health.HealthCheck]  # the host-side checks of the components deployed on ``host``
    textfile_dir: str
    script_dir: str
    log_dir: str
    agent_name: AgentName  # the homelab names it (the phase), like every agent
    interval_seconds: int = 300

    def __post_init__(self) -> None:
        outside = [check.name for check in self.checks if check.side != health.HOST_SIDE]
        if outside:
            raise ValueError(f"HealthCheckAgent: {outside} are not host-side checks (they run from the operator)")
        if not self.checks:
            raise ValueError("HealthCheckAgent: no checks to run")
        if self.interval_seconds < 60:
            raise ValueError(f"HealthCheckAgent: interval {self.interval_seconds}s is below 60s")

    @property
    def textfile(self) -> str:
        return f"{self.textfile_dir}/blumeops-check.prom"

    @property
    def script_path(self) -> str:
        return f"{self.script_dir}/blumeops-check"

    def script(self) -> str:
        return host_probe_step("blumeops-check", self.checks, self.textfile).render()

    def install_step(self, name: str) -> HostStep:
        return install_file_step(name, self.script_path, self.script())

    def agent(self) -> LaunchAgentArgs:
        return LaunchAgentArgs(
            host=self.host,
            label=self.agent_name.label,
            program_arguments=(self.host.tools.bash, self.script_path, "agent"),
            standard_out_path=self.agent_name.out_log(self.log_dir),
            standard_error_path=self.agent_name.err_log(self.log_dir),
            run_at_load=True,
            start_interval=self.interval_seconds,
        )

    def own_check(self) -> health.Textfile:
        return health.Textfile(health.SshTarget.of(self.host), self.textfile, 3 * self.interval_seconds,
                               self.agent_name.label)


class HealthCheckAgent(pulumi.ComponentResource):
    """Puts on the host: the script ``<script_dir>/blumeops-check`` (the host-side checks of the deployed
    components) and the LaunchAgent ``agent_name`` that runs it every ``interval_seconds`` and writes
    ``blumeops_check_up{check,kind}`` and ``blumeops_check_last_run_timestamp_seconds`` to
    ``<textfile_dir>/blumeops-check.prom``.

    Undo: deleting it unloads the agent and removes the plist and the script (the textfile stays until the
    textfile collector's directory is cleaned; its timestamp shows it is stale).
    """

    def __init__(self, name: str, args: HealthCheckAgentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        install = args.install_step(f"{name}-script")
        super().__init__(
            CHECK_AGENT_TYPE,
            name,
            {
                "label": args.agent_name.label,
                "intervalSeconds": args.interval_seconds,
                "textfile": args.textfile,
                "checks": [check.name for check in args.checks],
                **health.props([args.own_check()]),
            },
            opts,
        )
        self.script, self.agent = scripted_agent(f"{name}-agent", args.host, install, args.script_path,
                                                 args.agent(), self)
        self.register_outputs({"label": args.agent_name.label, "textfile": args.textfile})
