"""LaunchAgent: one launchd job of the host's user, from a plist rendered with ``plistlib``."""

from __future__ import annotations

import plistlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import health
from components.host.connection import Host
from components.host.script import HostStep

LAUNCH_AGENT_TYPE = "blumeops:host:LaunchAgent"
CALENDAR_KEYS = frozenset({"Minute", "Hour", "Day", "Weekday", "Month"})
# The marker a step leaves next to a file a job reads (``restart_marker`` in scripts/lib.sh): the job's
# restart is pending until the LaunchAgent step removes it after a successful restart.
RESTART_MARKER_SUFFIX = ".blumeops-restart-pending"


def restart_marker(path: str) -> str:
    return f"{path}{RESTART_MARKER_SUFFIX}"


@dataclass(frozen=True, slots=True)
class AgentName:
    """A LaunchAgent's label and the stem of its log files (``<log_dir>/<log_stem>.out.log``, ``.err.log``).

    The names are the homelab's convention, so they come from the phase, not from the components."""

    label: str
    log_stem: str

    def out_log(self, log_dir: str) -> str:
        return f"{log_dir}/{self.log_stem}.out.log"

    def err_log(self, log_dir: str) -> str:
        return f"{log_dir}/{self.log_stem}.err.log"


def path_problem(value: str) -> str | None:
    """Why ``value`` is not an absolute path launchd can use (None when it is)."""
    if not value:
        return "is empty"
    if value.startswith("~"):
        return "starts with ~, which launchd does not expand"
    if "$" in value:
        return "uses a $variable, which launchd does not expand"
    if not value.startswith("/"):
        return "is relative"
    return None


def _argument_problem(value: str) -> str | None:
    if value.startswith("~") or "$" in value:
        return path_problem(value)
    if value.startswith(("./", "../")):
        return "is a relative path"
    return None


@dataclass(frozen=True, slots=True)
class LaunchAgentArgs:
    host: Host
    label: str
    program_arguments: Sequence[str]
    standard_out_path: str
    standard_error_path: str
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    working_directory: str | None = None
    run_at_load: bool = True
    keep_alive: bool = False
    start_interval: int | None = None
    start_calendar_interval: Mapping[str, int] | None = None
    # seconds between bootstrap attempts, times the attempt number (bootout finishes asynchronously)
    retry_delay_seconds: int = 1
    # Markers (``restart_marker(path)``) other steps leave when a file the job reads (a config) changed: the
    # step restarts the job once (``kickstart -k``, or the reload a changed plist needs anyway) and removes them.
    restart_markers: Sequence[str] = ()
    # A digest of those files, in the step's preamble only so that their change re-runs the step (Pulumi
    # re-runs a step when its stdin changes). An Output (derived from a secret) is sent as a secret.
    restart_signal: str | pulumi.Output[str] = ""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.label or "/" in self.label or self.label != self.label.strip():
            problems.append(f"label {self.label!r} is not a launchd label")
        if not self.program_arguments:
            problems.append("programArguments is empty: its first element is the program's absolute path")
        else:
            problem = path_problem(self.program_arguments[0])
            if problem:
                problems.append(f"programArguments[0] {self.program_arguments[0]!r} {problem}")
            for index, argument in enumerate(self.program_arguments[1:], start=1):
                problem = _argument_problem(argument)
                if problem:
                    problems.append(f"programArguments[{index}] {argument!r} {problem}")
        paths = {
            "standardOutPath": self.standard_out_path,
            "standardErrorPath": self.standard_error_path,
            "workingDirectory": self.working_directory,
        }
        for key, value in paths.items():
            if value is not None:
                problem = path_problem(value)
                if problem:
                    problems.append(f"{key} {value!r} {problem}")
        for name, value in self.environment_variables.items():
            if name == "PATH":
                for index, entry in enumerate(value.split(":")):
                    problem = path_problem(entry)
                    if problem:
                        problems.append(f"environmentVariables.PATH entry {index} {entry!r} {problem}")
            elif value.startswith("~") or "$" in value:
                problems.append(f"environmentVariables.{name} {value!r} uses ~ or a $variable, which launchd "
                                "does not expand")
        for marker in self.restart_markers:
            problem = path_problem(marker)
            if problem or not marker.endswith(RESTART_MARKER_SUFFIX):
                problems.append(f"restart marker {marker!r} is not restart_marker(<absolute path>)")
        if self.start_interval is not None and self.start_interval <= 0:
            problems.append(f"startInterval {self.start_interval} must be a positive number of seconds")
        if self.start_calendar_interval is not None:
            unknown = set(self.start_calendar_interval) - CALENDAR_KEYS
            if unknown:
                problems.append(f"startCalendarInterval has unknown keys {sorted(unknown)}")
        if problems:
            raise ValueError(
                f"LaunchAgent {self.label}: " + "; ".join(problems)
                + " (launchd runs no shell, expands no ~ or $VAR and has PATH=/usr/bin:/bin:/usr/sbin:/sbin:"
                " write absolute paths)"
            )

    @property
    def plist_path(self) -> str:
        return f"{self.host.launch_agents_dir}/{self.label}.plist"

    def plist(self) -> str:
        """The plist launchd reads, rendered with plistlib (XML, keys sorted)."""
        document: dict[str, Any] = {
            "Label": self.label,
            "ProgramArguments": list(self.program_arguments),
            "RunAtLoad": self.run_at_load,
            "KeepAlive": self.keep_alive,
            "StandardOutPath": self.standard_out_path,
            "StandardErrorPath": self.standard_error_path,
        }
        if self.environment_variables:
            document["EnvironmentVariables"] = dict(self.environment_variables)
        if self.working_directory is not None:
            document["WorkingDirectory"] = self.working_directory
        if self.start_interval is not None:
            document["StartInterval"] = self.start_interval
        if self.start_calendar_interval is not None:
            document["StartCalendarInterval"] = dict(self.start_calendar_interval)
        return plistlib.dumps(document, sort_keys=True).decode().rstrip("\n")

    def health_check(self) -> health.LaunchdJob:
        """Loaded in the user's gui domain, and its last exit status 0 (``ops check``, the periodic agent)."""
        return health.LaunchdJob(health.SshTarget.of(self.host), self.label, self.host.gui_domain,
                                 self.host.tools.launchctl, self.standard_error_path)

    def step(self, name: str) -> HostStep:
        log_dirs = sorted({path.rsplit("/", 1)[0] for path in (self.standard_out_path, self.standard_error_path)})
        variables: dict[str, str | int | bool] = {
            "LABEL": self.label,
            "PLIST_PATH": self.plist_path,
            "PLIST": self.plist(),
            "GUI_DOMAIN": self.host.gui_domain,
            "LAUNCHCTL": self.host.tools.launchctl,
            "PLUTIL": self.host.tools.plutil,
            "LOG_DIRS": "\n".join(log_dirs),
            "RETRY_DELAY": self.retry_delay_seconds,
            "RESTART_MARKERS": "\n".join(self.restart_markers),
        }
        signal = self.restart_signal
        does = f"writes {self.plist_path} and loads the LaunchAgent {self.label} in {self.host.gui_domain}"
        undoes = f"boots {self.label} out and removes its plist (a plist it found there first is put back)"
        if isinstance(signal, pulumi.Output):
            return HostStep(name=name, script="launch-agent", variables=variables, secrets=("RESTART_SIGNAL",),
                            does=does, undoes=undoes)
        return HostStep(name=name, script="launch-agent", variables={**variables, "RESTART_SIGNAL": signal},
                        does=does, undoes=undoes)


class LaunchAgent(pulumi.ComponentResource):
    """Puts ``~/Library/LaunchAgents/<label>.plist`` on the host (written by its absolute path) and loads it
    in ``gui/<uid>``; reloads it (bootout + bootstrap) only when the plist changed, restarts it
    (``kickstart -k``) when a step it depends on left one of ``restart_markers``, and retries a failed
    reload or restart on the next run. A plist that was at that path before the program first wrote it (a
    pre-existing install under the same label) is backed up first.

    Undo: deleting it boots the job out and removes the plist (``<name>-install``'s delete); a backed-up
    plist is put back and loaded again.
    """

    def __init__(self, name: str, args: LaunchAgentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        step = args.step(f"{name}-install")
        super().__init__(
            LAUNCH_AGENT_TYPE,
            name,
            {
                "label": args.label,
                "plistPath": args.plist_path,
                "programArguments": list(args.program_arguments),
                "environmentVariables": dict(args.environment_variables),
                "workingDirectory": args.working_directory,
                "standardOutPath": args.standard_out_path,
                "standardErrorPath": args.standard_error_path,
                "runAtLoad": args.run_at_load,
                "keepAlive": args.keep_alive,
                "startInterval": args.start_interval,
                "startCalendarInterval": (
                    dict(args.start_calendar_interval) if args.start_calendar_interval is not None else None
                ),
                "artifacts": {f"host/launchagents/{args.label}.plist": args.plist() + "\n"},
                **health.props([args.health_check()], [health.Precondition(
                    f"a GUI login of {args.host.user} on the host ({args.host.gui_domain} exists only then)",
                    step.name)]),
            },
            opts,
        )
        self.label = args.label
        self.plist_path = args.plist_path
        secrets: dict[str, pulumi.Output[str]] = {}
        if isinstance(args.restart_signal, pulumi.Output):
            secrets["RESTART_SIGNAL"] = pulumi.Output.secret(args.restart_signal)
        self.install = step.register(
            args.host, secret_values=secrets, identity=(args.label,), opts=pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs({"label": args.label, "plistPath": args.plist_path})


def install_file_step(name: str, path: str, content: str, mode: str = "0755") -> HostStep:
    """The step that puts ``content`` at ``path`` (scripts/install-file.sh); its delete removes it again."""
    return HostStep(name, "install-file", {"FILE_PATH": path, "FILE_MODE": mode, "FILE_CONTENT": content},
                    does=f"writes {path} (mode {mode})",
                    undoes=f"removes {path} (a file it did not write is left, or put back from its backup)")


@dataclass(frozen=True, slots=True)
class PeriodicAgentArgs:
    """A script of ``scripts/`` (its ``step_agent``), installed at ``script_path`` and run by the LaunchAgent
    ``agent_name`` as ``<bash> <script_path> agent`` every ``interval_seconds`` (and at load)."""

    host: Host
    agent_name: AgentName
    script: HostStep  # rendered into the installed file; its name is only used in the script's messages
    script_path: str
    log_dir: str
    interval_seconds: int = 60
    environment_variables: Mapping[str, str] = field(default_factory=dict)

    def install_step(self, name: str) -> HostStep:
        return install_file_step(name, self.script_path, self.script.render())

    def agent(self) -> LaunchAgentArgs:
        return LaunchAgentArgs(
            host=self.host,
            label=self.agent_name.label,
            program_arguments=(self.host.tools.bash, self.script_path, "agent"),
            environment_variables=self.environment_variables,
            standard_out_path=self.agent_name.out_log(self.log_dir),
            standard_error_path=self.agent_name.err_log(self.log_dir),
            run_at_load=True,
            keep_alive=False,
            start_interval=self.interval_seconds,
        )


def periodic_agent(
    name: str, args: PeriodicAgentArgs, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = (),
) -> tuple[Any, LaunchAgent]:
    """The step ``<name>-script`` installing the script, then the LaunchAgent ``name`` running it, loaded
    only once the script (and ``depends_on``) is in place. Undo: both deletes."""
    install = args.install_step(f"{name.removesuffix('-agent')}-script")
    return scripted_agent(name, args.host, install, args.script_path, args.agent(), parent, depends_on)


def scripted_agent(
    name: str,
    host: Host,
    install: HostStep,
    script_path: str,
    agent: LaunchAgentArgs,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
) -> tuple[Any, LaunchAgent]:
    """A script installed at ``script_path`` on ``host`` (step ``install``), then the LaunchAgent ``name``
    that runs it, loaded only once the script (and ``depends_on``) is in place. Undo: both deletes."""
    script = install.register(host, identity=(script_path,), opts=pulumi.ResourceOptions(parent=parent))
    loaded = LaunchAgent(name, agent, pulumi.ResourceOptions(parent=parent, depends_on=[script, *depends_on]))
    return script, loaded
