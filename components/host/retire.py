"""LegacyServiceRetirement: a service the host runs natively (a Homebrew service or a LaunchAgent of its user)
and its ``tailscale serve`` entry, stopped as the create step of a resource whose delete brings both back.

Where the record lives: pulumi-command runs ``delete`` with the stdin of the last create, so the delete knows
the preamble (names, paths) but nothing the create found on the host. The create's stdout is an output, but
the delete command cannot read outputs (``add_previous_output_in_env`` is off for every host step, so a
kubeconfig never travels as an environment variable). So the create writes the record on the host itself,
under ``<state_root>/<service>/`` (0700), before it changes anything: what ran (brew status / agent loaded),
the plist it moved aside, the serve entry exactly as ``tailscale serve status --json`` printed it and the
``tailscale serve`` calls that recreate it. The create also prints the record as JSON (``record``, for
``pulumi stack output`` and reviews). The record survives reboots and is removed by the delete once the
service and its entry are back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components import health
from components.host.connection import Host
from components.host.script import HostStep, Value

RETIREMENT_TYPE = "blumeops:host:LegacyServiceRetirement"
_FORMULA = re.compile(r"^[a-z0-9][a-z0-9@._+-]*$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True, slots=True)
class BrewService:
    """A Homebrew service (``brew services``), retired with ``brew services stop`` (which also keeps it from
    starting at login) and restored with ``brew services start --file=<the plist it had>``."""

    formula: str  # "grafana", "postgresql@18"
    brew: str  # absolute path of brew on the host (blumeops:tools.brew)

    @property
    def kind(self) -> str:
        return "brew"

    @property
    def name(self) -> str:
        return self.formula

    def problems(self) -> list[str]:
        found = []
        if not _FORMULA.match(self.formula):
            found.append(f"formula {self.formula!r} is not a Homebrew formula name")
        if not self.brew.startswith("/"):
            found.append(f"brew {self.brew!r} must be an absolute path (a non-interactive SSH shell has no Homebrew"
                         " on its PATH)")
        return found


@dataclass(frozen=True, slots=True)
class LegacyLaunchAgent:
    """A LaunchAgent of the host's user (a legacy agent such as ``<prefix>.devpi``), retired with ``launchctl
    bootout`` and its plist moved into the record (so it does not load at login), restored by putting it back
    and bootstrapping."""

    label: str

    @property
    def kind(self) -> str:
        return "agent"

    @property
    def name(self) -> str:
        return self.label

    def problems(self) -> list[str]:
        return [] if _LABEL.match(self.label) else [f"label {self.label!r} is not a launchd label"]


@dataclass(frozen=True, slots=True)
class RetirementPrecondition:
    """A check on the host that must pass before the service is retired, e.g. "a borgmatic archive of the last
    day holds <path>" (phase 3 and later). The retirement runs it as its own step ``<name>-precondition``
    and its retire step depends on it, so a failing check stops the update before anything is stopped.

    ``script`` names a script of ``components/host/scripts`` written like every host step: it defines
    ``step_create`` (the check: exit non-zero with a message that says what to do, change nothing) and
    ``step_delete`` (nothing to undo: log and return) and ends in ``run_action "$@"``; ``variables`` is its
    preamble. The check runs again whenever its preamble or script changes (a new path, a new threshold).
    """

    script: str
    variables: Mapping[str, Value] = field(default_factory=dict)
    does: str = ""  # what it checks, in words ("checks that a borgmatic archive ... holds ..."): required


LegacyService = BrewService | LegacyLaunchAgent


@dataclass(frozen=True, slots=True)
class LegacyServiceRetirementArgs:
    host: Host
    service: LegacyService
    # The Tailscale Service the legacy service was served as ("svc:grafana"), or None when it had none.
    serve_service: str | None
    # Where records are kept on the host (absolute); default <home>/.local/state/blumeops/retired.
    state_root: str | None = None
    precondition: RetirementPrecondition | None = None
    # Resources that must be in place first (a check that is its own resource, a backup step).
    after: Sequence[pulumi.Resource] = ()

    def __post_init__(self) -> None:
        problems = self.service.problems()
        if self.serve_service is not None and not re.match(r"^svc:[a-z0-9][a-z0-9-]*$", self.serve_service):
            problems.append(f"serve_service {self.serve_service!r} is not a Tailscale Service name (svc:<name>)")
        if self.state_root is not None and (not self.state_root.startswith("/") or "~" in self.state_root):
            problems.append(f"state_root {self.state_root!r} must be an absolute path")
        if problems:
            raise ValueError(f"retirement of {self.service.kind} {self.service.name}: " + "; ".join(problems))

    @property
    def record_dir(self) -> str:
        root = self.state_root or f"{self.host.home}/.local/state/blumeops/retired"
        return f"{root.rstrip('/')}/{self.service.kind}-{self.service.name}"

    @property
    def plist_path(self) -> str:
        """The agent's plist; for a brew service, the one ``brew services start`` installs (and the step keeps)."""
        return f"{self.host.launch_agents_dir}/{self.launchd_label}.plist"

    @property
    def described(self) -> str:
        return (f"brew service {self.service.name}" if isinstance(self.service, BrewService)
                else f"the LaunchAgent {self.service.name}")

    def step(self, name: str) -> HostStep:
        tools = self.host.tools
        brew = self.service.brew if isinstance(self.service, BrewService) else ""
        served = f" and clears the serve entry of {self.serve_service}" if self.serve_service else ""
        back = f" and serves {self.serve_service} from the host again" if self.serve_service else ""
        return HostStep(
            name,
            "retire",
            {
                "KIND": self.service.kind,
                "NAME": self.service.name,
                "PLIST_PATH": self.plist_path,
                "BREW": brew,
                "STATE_DIR": self.record_dir,
                "SERVE_SERVICE": self.serve_service or "",
                "GUI_DOMAIN": self.host.gui_domain,
                "LAUNCHCTL": tools.launchctl,
                "TAILSCALE": tools.tailscale,
                "PLUTIL": tools.plutil,
            },
            does=f"records and stops {self.described}{served} (record: {self.record_dir})",
            undoes=f"restarts {self.described} as recorded{back}",
        )

    @property
    def launchd_label(self) -> str:
        """The launchd job the legacy service runs as (``brew services`` labels its own homebrew.mxcl.<formula>)."""
        return f"homebrew.mxcl.{self.service.name}" if isinstance(self.service, BrewService) else self.service.name

    def restored_check(self) -> health.LaunchdJob:
        """What proves the rollback brought the legacy service back: its launchd job loaded, exited 0."""
        return health.LaunchdJob(health.SshTarget.of(self.host), self.launchd_label, self.host.gui_domain,
                                 self.host.tools.launchctl, f"the StandardErrorPath of {self.plist_path}")

    def precondition_step(self, name: str) -> HostStep | None:
        if self.precondition is None:
            return None
        return HostStep(name, self.precondition.script, self.precondition.variables, does=self.precondition.does,
                        undoes="nothing (a check changes nothing)")


class LegacyServiceRetirement(pulumi.ComponentResource):
    """Retires a legacy service on the host: records what ran (under ``record_dir``: brew's status, loaded and
    registered, its installed plist byte for byte; or the agent's launchd domain), stops it (``brew services
    stop <formula>`` whenever it is loaded or registered, or ``launchctl bootout`` from the domain it is in,
    with the plist moved into the record) and clears its ``tailscale serve`` entry; after the precondition
    step, when one is given. A brew service started as root is refused with the commands to take.

    Undo: deleting it brings the service back as it was (``brew services start --file=<its own plist>``,
    ``brew services run`` for one that ran unregistered, or the agent's plist put back and bootstrapped in its
    domain; nothing for one that was stopped) and recreates the serve entry exactly as recorded (checked
    against the recorded JSON), then removes the record. The Tailscale Service must exist again by then: a
    release of the name (``TailnetNameRelease``) depends on this retirement, so its rollback runs first.
    """

    def __init__(self, name: str, args: LegacyServiceRetirementArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        step = args.step(f"{name}-retire")
        check = args.precondition_step(f"{name}-precondition")
        super().__init__(
            RETIREMENT_TYPE,
            name,
            {
                "kind": args.service.kind,
                "service": args.service.name,
                "serveService": args.serve_service,
                "recordDir": args.record_dir,
                "precondition": args.precondition.script if args.precondition else None,
                **health.props([], restored=[args.restored_check()]),
            },
            opts,
        )
        depends: list[pulumi.Resource] = list(args.after)
        self.precondition: Any = None
        if check is not None:
            self.precondition = check.register(
                args.host, opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after) or None))
            depends.append(self.precondition)
        self.retire = step.register(
            args.host,
            identity=(args.service.kind, args.service.name, args.serve_service or "", args.record_dir),
            # Another service or entry: restore the old one first (its delete reads the record the new
            # create would otherwise find and keep), then retire the new one.
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends or None, delete_before_replace=True),
        )
        # The record as JSON: {"kind", "name", "state", "serveService", "serveEntry"}.
        self.record: pulumi.Output[str] = self.retire.stdout
        self.register_outputs({"service": args.service.name, "recordDir": args.record_dir})
