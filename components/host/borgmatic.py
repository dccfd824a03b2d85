"""Borgmatic: the host's nightly borg backup (files and PostgreSQL dumps) to the NAS, its metrics, and the
"a recent archive holds this path" precondition that steps retiring a stateful service require."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import yaml

from components import health
from components.host.connection import SYSTEM_PATH, Host
from components.host.launch_agent import (
    AgentName,
    LaunchAgent,
    LaunchAgentArgs,
    install_file_step,
    path_problem,
    scripted_agent,
)
from components.host.script import HostStep, script_text
from components.host.zot import MetricsPaths

BORGMATIC_TYPE = "blumeops:host:Borgmatic"
PGPASS_BLOCK = "blumeops borgmatic"  # the marked block of ~/.pgpass this component owns
ARCHIVE_CHECK_SCRIPT = "borgmatic-archive-check"
_FUNCTION_END = "# ---- end of require_recent_archive ----"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _command_problem(key: str, command: str) -> str | None:
    program = command.split(" ", 1)[0]
    problem = path_problem(program)
    return f"{key} {command!r}: its program {problem} (launchd has no Homebrew on PATH)" if problem else None


@dataclass(frozen=True, slots=True)
class BorgmaticDatabase:
    """One ``postgresql_databases`` entry: database ``name`` dumped from ``hostname:port`` as ``username``."""

    name: str
    hostname: str
    port: int = 5432
    username: str = "borgmatic"

    @property
    def archive_path(self) -> str:
        """Where borgmatic 2 keeps this database's dump inside an archive."""
        return f"borgmatic/postgresql_databases/{self.hostname}:{self.port}/{self.name}"

    def problems(self) -> list[str]:
        problems = []
        if not _NAME.match(self.name) or not _NAME.match(self.username):
            problems.append(f"database {self.name!r} / user {self.username!r} must be plain names")
        if not _HOSTNAME.match(self.hostname):
            problems.append(f"database host {self.hostname!r} is not a hostname")
        if not 1 <= self.port <= 65535:
            problems.append(f"database port {self.port} is not a TCP port")
        return problems


@dataclass(frozen=True, slots=True)
class BorgRepository:
    """The borg repository and how borg opens it (``encryption_passcommand`` prints the passphrase)."""

    path: str  # "/Volumes/backups/borg/"
    label: str  # the NAS's name for it
    encryption_passcommand: str  # "/bin/cat <home>/.borg/config.yaml": an absolute program
    encryption: str = "repokey"
    # borgmatic passes it to `borg repo-create --append-only` when it creates the repository (borgmatic's
    # actions/repo_create.py); an existing repository keeps the mode it has (`borg config <repo> append_only`),
    # which this setting neither reads nor changes.
    append_only: bool = True

    def problems(self) -> list[str]:
        problems = []
        problem = path_problem(self.path)
        if problem:
            problems.append(f"repository {self.path!r} {problem}")
        if not _NAME.match(self.label):
            problems.append(f"repository label {self.label!r} must be a plain name")
        command = _command_problem("encryption_passcommand", self.encryption_passcommand)
        if command:
            problems.append(command)
        return problems


@dataclass(frozen=True, slots=True)
class Retention:
    keep_daily: int = 7
    keep_monthly: int = 12
    keep_yearly: int = 1000


@dataclass(frozen=True, slots=True)
class RecentBorgmaticArchive:
    """A data precondition: an archive newer than ``max_age_hours`` in ``repository`` contains ``path``.

    Two ways to use it (both run ``require_recent_archive`` from ``scripts/borgmatic-archive-check.sh``):

    - its own step, ``check.step(name).register(host)``, which the retiring step
      ``depends_on``: the retirement waits for it, and fails with it;
    - inside another step's script: put ``check.variables()`` into that step's preamble and
      ``check.shell_function()`` into its script text, then call ``require_recent_archive`` before stopping
      the service. It calls ``log``, ``die``, ``bounded`` and ``blumeops_tmpdir`` of ``lib.sh`` (a step's stdin
      carries the helpers its text calls).
    """

    borg: str
    jq: str
    repository: BorgRepository
    path: str  # inside the archive, no leading "/": "borgmatic/postgresql_databases/localhost:5432/miniflux"
    max_age_hours: int = 26  # a daily backup plus slack

    def __post_init__(self) -> None:
        problems = [*self.repository.problems()]
        for key, value in (("borg", self.borg), ("jq", self.jq)):
            problem = path_problem(value)
            if problem:
                problems.append(f"{key} {value!r} {problem}")
        if not self.path or self.path.startswith("/"):
            problems.append(f"archive path {self.path!r} must be relative (borg stores paths without the leading /)")
        if self.max_age_hours <= 0:
            problems.append(f"max_age_hours {self.max_age_hours} must be positive")
        if problems:
            raise ValueError("RecentBorgmaticArchive: " + "; ".join(problems))

    def variables(self) -> dict[str, str | int | bool]:
        return {
            "ARCHIVE_BORG": self.borg,
            "ARCHIVE_JQ": self.jq,
            "ARCHIVE_REPOSITORY": self.repository.path,
            "ARCHIVE_PASSCOMMAND": self.repository.encryption_passcommand,
            "ARCHIVE_PATH": self.path,
            "ARCHIVE_MAX_AGE_HOURS": self.max_age_hours,
        }

    @staticmethod
    def shell_function() -> str:
        """The text defining ``require_recent_archive`` (to embed in another step's script)."""
        text = script_text(ARCHIVE_CHECK_SCRIPT)
        return text[: text.index(_FUNCTION_END) + len(_FUNCTION_END)] + "\n"

    @property
    def does(self) -> str:
        return (f"checks that a borgmatic archive of the last {self.max_age_hours} hours in "
                f"{self.repository.path} holds {self.path}, and stops the update if not")

    def step(self, name: str) -> HostStep:
        return HostStep(name, ARCHIVE_CHECK_SCRIPT, self.variables(), does=self.does,
                        undoes="nothing (a check changes nothing)")


@dataclass(frozen=True, slots=True)
class BorgmaticArgs:
    host: Host
    borgmatic: str  # absolute paths on the host: launchd has no Homebrew on PATH
    borg: str  # borgmatic's local_path
    pg_dump: str
    pg_restore: str
    psql: str
    jq: str  # the metrics script reads borg's JSON with it
    config_path: str  # ~/.config/borgmatic/config.yaml (0600, its directory 0700)
    pgpass_path: str  # ~/.pgpass: the borgmatic role's lines, in a marked block
    source_directories: Sequence[str]
    repository: BorgRepository
    databases: Sequence[BorgmaticDatabase]
    borgmatic_password: pulumi.Output[str]  # of the borgmatic role, the same on every database server
    agent_name: AgentName  # the nightly backup
    metrics_agent_name: AgentName  # writes borgmatic.prom
    log_dir: str  # the backup agent's logs
    metrics: MetricsPaths
    retention: Retention = field(default_factory=Retention)
    schedule: Mapping[str, int] = field(default_factory=lambda: {"Hour": 2, "Minute": 0})
    metrics_interval_seconds: int = 3600
    # borg waits this long for the repository lock the nightly run holds
    metrics_lock_wait_seconds: int = 60

    def __post_init__(self) -> None:
        problems = [*self.repository.problems()]
        paths = {"borgmatic": self.borgmatic, "borg": self.borg, "pg_dump": self.pg_dump,
                 "pg_restore": self.pg_restore, "psql": self.psql, "jq": self.jq, "config_path": self.config_path,
                 "pgpass_path": self.pgpass_path, "log_dir": self.log_dir}
        for index, directory in enumerate(self.source_directories):
            paths[f"source_directories[{index}]"] = directory
        for key, value in paths.items():
            problem = path_problem(value)
            if problem:
                problems.append(f"{key} {value!r} {problem}")
        if not self.source_directories:
            problems.append("source_directories is empty")
        if not self.databases:
            problems.append("databases is empty: list the PostgreSQL databases to dump")
        for database in self.databases:
            problems.extend(database.problems())
        identities = [(d.hostname, d.port, d.name) for d in self.databases]
        if len(set(identities)) != len(identities):
            problems.append(f"a database is listed twice in {identities}")
        if problems:
            raise ValueError("Borgmatic: " + "; ".join(problems))

    @property
    def config_dir(self) -> str:
        return self.config_path.rsplit("/", 1)[0]

    def config(self) -> dict[str, object]:
        """borgmatic 2's configuration, every program by its absolute path."""
        repository = self.repository
        return {
            "source_directories": list(self.source_directories),
            "source_directories_must_exist": True,
            "repositories": [{
                "path": repository.path,
                "label": repository.label,
                "encryption": repository.encryption,
                "append_only": repository.append_only,
            }],
            "local_path": self.borg,
            "encryption_passcommand": repository.encryption_passcommand,
            "keep_daily": self.retention.keep_daily,
            "keep_monthly": self.retention.keep_monthly,
            "keep_yearly": self.retention.keep_yearly,
            "postgresql_databases": [
                {
                    "name": database.name,
                    "hostname": database.hostname,
                    "port": database.port,
                    "username": database.username,
                    "format": "custom",
                    "pg_dump_command": self.pg_dump,
                    "pg_restore_command": self.pg_restore,
                    "psql_command": self.psql,
                }
                for database in self.databases
            ],
        }

    def config_text(self) -> str:
        header = "# Written by blumeops (components/host/borgmatic.py); changes here are overwritten.\n"
        return header + yaml.safe_dump(self.config(), sort_keys=False, default_flow_style=False).rstrip("\n")

    def pgpass_lines(self, password: str) -> str:
        """The borgmatic role's ~/.pgpass lines (host:port:*:user:password, with : and \\ escaped)."""
        escaped = password.replace("\\", "\\\\").replace(":", "\\:")
        lines = dict.fromkeys(f"{d.hostname}:{d.port}:*:{d.username}:{escaped}" for d in self.databases)
        return "\n".join(lines)

    def config_step(self, name: str) -> HostStep:
        return HostStep(
            name,
            "borgmatic-config",
            {
                "BORGMATIC": self.borgmatic,
                "CONFIG_PATH": self.config_path,
                "CONFIG": self.config_text(),
                "PGPASS_PATH": self.pgpass_path,
                "PGPASS_BLOCK": PGPASS_BLOCK,
                # the nightly pg_dump against each database server's major (checked when it answers)
                "PG_DUMP": self.pg_dump,
                "PSQL": self.psql,
                "DATABASE_COUNT": len(self.databases),
                **{key: value for index, database in enumerate(self.databases, start=1)
                   for key, value in ((f"DATABASE_{index}_HOST", database.hostname),
                                      (f"DATABASE_{index}_PORT", database.port),
                                      (f"DATABASE_{index}_NAME", database.name),
                                      (f"DATABASE_{index}_USER", database.username))},
            },
            secrets=("PGPASS_LINES",),
            does=(f"writes {self.config_path} (0600, validated with `borgmatic config validate`) and the "
                  f"borgmatic role's lines in {self.pgpass_path}"),
            undoes=f"removes {self.config_path} and its lines from {self.pgpass_path} (the repository stays)",
        )

    def agent_path(self) -> str:
        directories: list[str] = []
        for tool in (self.borgmatic, self.borg, self.pg_dump):
            directory = tool.rsplit("/", 1)[0] or "/"
            if directory not in directories and directory not in SYSTEM_PATH:
                directories.append(directory)
        return ":".join((*directories, *SYSTEM_PATH))

    def agent(self) -> LaunchAgentArgs:
        """The nightly run: create an archive (files + database dumps), prune with the retention, compact."""
        return LaunchAgentArgs(
            host=self.host,
            label=self.agent_name.label,
            program_arguments=(self.borgmatic, "--config", self.config_path, "--verbosity", "1",
                               "create", "prune", "compact"),
            standard_out_path=self.agent_name.out_log(self.log_dir),
            standard_error_path=self.agent_name.err_log(self.log_dir),
            environment_variables={"PATH": self.agent_path()},
            run_at_load=False,
            keep_alive=False,
            start_calendar_interval=dict(self.schedule),
        )

    @property
    def metrics_script_path(self) -> str:
        return f"{self.metrics.script_dir}/borgmatic-metrics"

    def metrics_script(self) -> str:
        """The script the metrics agent runs (installed at ``metrics_script_path``)."""
        return HostStep(
            "borgmatic-metrics",
            "borgmatic-metrics",
            {
                "BORG": self.borg,
                "JQ": self.jq,
                "REPOSITORY": self.repository.path,
                "PASSCOMMAND": self.repository.encryption_passcommand,
                "LOCK_WAIT": self.metrics_lock_wait_seconds,
                "TEXTFILE": f"{self.metrics.textfile_dir}/borgmatic.prom",
            },
            does=f"reads the last archive of {self.repository.path} and writes borgmatic_* to "
                 f"{self.metrics.textfile_dir}/borgmatic.prom (each run)",
            undoes="nothing (the agent that runs it is removed with its LaunchAgent)",
        ).render()

    def metrics_script_step(self, name: str) -> HostStep:
        """Installs the metrics script (the same ``install-file`` step zot's metrics script uses)."""
        return install_file_step(name, self.metrics_script_path, self.metrics_script())

    def metrics_agent(self) -> LaunchAgentArgs:
        """Runs the installed metrics script every ``metrics_interval_seconds`` (and at load)."""
        agent, logs = self.metrics_agent_name, self.metrics.log_dir
        return LaunchAgentArgs(
            host=self.host, label=agent.label, start_interval=self.metrics_interval_seconds,
            program_arguments=(self.host.tools.bash, self.metrics_script_path, "agent"),
            standard_out_path=agent.out_log(logs), standard_error_path=agent.err_log(logs),
        )

    def recent_archive(self, path: str, max_age_hours: int = 26) -> RecentBorgmaticArchive:
        """The precondition "an archive of this repository newer than ``max_age_hours`` contains ``path``"."""
        return RecentBorgmaticArchive(self.borg, self.jq, self.repository, path, max_age_hours)


class Borgmatic(pulumi.ComponentResource):
    """Puts borgmatic's configuration on the host: ``config_path`` (0600, directory 0700; validated with
    ``borgmatic config validate`` before it replaces the previous one, which is kept once in
    ``~/.blumeops/adopted``), the borgmatic role's lines in a marked block at the top of ``~/.pgpass``
    (0600), the LaunchAgent ``agent_name`` (``borgmatic create prune compact`` on ``schedule``) and the metrics
    agent writing ``borgmatic.prom`` (borgmatic_up, last archive time and sizes) every hour.

    borgmatic and borg themselves are Homebrew's (``brew install borgmatic borgbackup``); the repository exists.
    Undo: deleting it unloads and removes both agents and the metrics script, removes the ~/.pgpass block
    and puts the configuration found before back (or removes it); the repository and its archives stay.
    """

    def __init__(self, name: str, args: BorgmaticArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        config_step = args.config_step(f"{name}-config")
        metrics_step = args.metrics_script_step(f"{name}-metrics-script")
        super().__init__(
            BORGMATIC_TYPE,
            name,
            {
                "configPath": args.config_path,
                "repository": args.repository.path,
                "label": args.agent_name.label,
                "databases": [f"{d.hostname}:{d.port}/{d.name}" for d in args.databases],
                "sourceDirectories": list(args.source_directories),
                # the steps' scripts are rendered from what each command receives on stdin (ops plan)
                "artifacts": {"host/borgmatic/config.yaml": args.config_text() + "\n"},
                **health.props([health.Textfile(
                    health.SshTarget.of(args.host), f"{args.metrics.textfile_dir}/borgmatic.prom",
                    3 * args.metrics_interval_seconds, args.metrics_agent_name.label)]),
            },
            opts,
        )
        password = args.borgmatic_password
        self.config = config_step.register(
            args.host,
            secret_values={"PGPASS_LINES": pulumi.Output.secret(password.apply(args.pgpass_lines))},
            identity=(args.config_path,),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.agent = LaunchAgent(
            f"{name}-agent", args.agent(), pulumi.ResourceOptions(parent=self, depends_on=[self.config])
        )
        self.metrics_script, self.metrics_agent = scripted_agent(
            f"{name}-metrics-agent", args.host, metrics_step, args.metrics_script_path, args.metrics_agent(), self,
        )
        self.register_outputs({"label": args.agent_name.label, "configPath": args.config_path})
