"""HostScript: the one building block that runs a step on a host, as ``command.remote.Command``.

The shell of each step lives in ``components/host/scripts/<script>.sh``. Python only renders a preamble of
``readonly NAME='value'`` assignments (values quoted with ``shlex.quote``); the text sent on **stdin** to
``<bash> -euo pipefail -s -- <action>`` is::

    #!/bin/bash                      (a comment for bash -s; tells shellcheck the dialect)
    readonly NAME='value' ...        (the preamble, sorted by name)
    <scripts/lib.sh>                 (shared helpers: log/die, atomic writes, launchd and serve helpers)
    <scripts/<script>.sh>            (defines step_create / step_delete [/ step_agent], ends in run_action)

The action travels in the command string (``create`` or ``delete``); nothing else does, so the command
string never carries a value. pulumi-command runs ``delete`` with the stdin of the last create/update
(it keeps the inputs in state), which is why one stdin carries both actions.

Secrets are preamble values too, but: the stdin that carries them is a secret Output, the step's logging is
off, and the rendering for reviewers (``artifacts``) shows ``<secret: ...>`` instead of the value.
A change of script or of a value changes stdin, which makes pulumi-command re-run ``create`` (its update
runs ``create`` when no ``update`` command is set): every script is idempotent, so re-running converges.
``triggers`` carry only a step's identity (what ``delete`` would undo), so a replacement happens only when
the thing itself changes (another label, another profile).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_command as command

from components.host.connection import Host

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
LIBRARY = "lib"
ACTIONS = ("create", "delete")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Numbered variables (MIRROR_1_TOML, ...) are lists the script walks with indirect expansion.
_INDIRECT = re.compile(r"^[A-Z]+_[0-9]+_[A-Z0-9_]+$")

Value = str | int | bool


def secret_placeholder(name: str) -> str:
    return f"<secret {name}: sent on stdin at run time, never rendered>"


def _shell_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def script_text(script: str) -> str:
    path = SCRIPTS_DIR / f"{script}.sh"
    if not path.is_file():
        raise ValueError(f"no host script {path}")
    return path.read_text()


@dataclass(frozen=True, slots=True)
class HostStep:
    """What one step runs: a script of ``scripts/`` and the values of its preamble.

    ``secrets`` names preamble variables whose values are secrets (given at render time).
    """

    name: str  # the step's resource name; the preamble's STEP (used in messages)
    script: str
    variables: Mapping[str, Value] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in (*self.variables, *self.secrets):
            if not _NAME.match(key) or key == "STEP":
                raise ValueError(f"host step {self.name}: {key!r} is not an upper-case shell variable name")
        both = set(self.variables) & set(self.secrets)
        if both:
            raise ValueError(f"host step {self.name}: {sorted(both)} are both plain and secret")

    def render(self, secret_values: Mapping[str, str] | None = None) -> str:
        """The exact text sent on stdin. Without ``secret_values`` secrets render as placeholders."""
        values: dict[str, str] = {key: _shell_value(value) for key, value in self.variables.items()}
        for key in self.secrets:
            if secret_values is None:
                values[key] = secret_placeholder(key)
            elif key not in secret_values:
                raise ValueError(f"host step {self.name}: no value for secret {key}")
            else:
                values[key] = secret_values[key]
        lines = [
            "#!/bin/bash",
            f"# blumeops host step {self.name} (components/host/scripts/{self.script}.sh);",
            "# run as: bash -euo pipefail -s -- create|delete   (this text arrives on stdin)",
            f"readonly STEP={shlex.quote(self.name)}",
        ]
        for key in sorted(values):
            quoted = shlex.quote(values[key])
            if "$" in quoted or "`" in quoted:
                lines.append("# shellcheck disable=SC2016  # a literal value: single quotes on purpose")
            if _INDIRECT.match(key):
                lines.append("# shellcheck disable=SC2034  # numbered: the script reads it as ${!name}")
            lines.append(f"readonly {key}={quoted}")
        return "\n".join(lines) + "\n\n" + script_text(LIBRARY) + "\n" + script_text(self.script)


def step_command(bash: str, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return f"{bash} -euo pipefail -s -- {action}"


@dataclass(frozen=True, slots=True)
class HostScriptArgs:
    host: Host
    step: HostStep
    secret_values: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)
    # The step's identity: a change replaces it (create the new one, then delete the old one).
    identity: Sequence[Value] = ()
    # The step prints a secret on stdout (a kubeconfig): stdout becomes a secret output, logging off.
    secret_stdout: bool = False


def host_script(name: str, args: HostScriptArgs, opts: pulumi.ResourceOptions | None = None) -> Any:
    """Register the ``command.remote.Command`` that runs ``args.step`` on ``args.host``."""
    step = args.step
    if step.name != name:
        raise ValueError(f"host step {step.name!r} registered as {name!r}")
    missing = set(step.secrets) - set(args.secret_values)
    if missing:
        raise ValueError(f"host step {name}: no Output for secret(s) {sorted(missing)}")
    stdin: pulumi.Input[str]
    if step.secrets:
        secrets = {key: args.secret_values[key] for key in step.secrets}
        stdin = pulumi.Output.secret(
            pulumi.Output.all(**secrets).apply(lambda values: step.render(dict(values)))
        )
    else:
        stdin = step.render({})
    quiet = bool(step.secrets) or args.secret_stdout
    extra = pulumi.ResourceOptions(additional_secret_outputs=["stdout"]) if args.secret_stdout else None
    return command.remote.Command(
        name,
        connection=args.host.connection(),
        create=step_command(args.host.tools.bash, "create"),
        delete=step_command(args.host.tools.bash, "delete"),
        stdin=stdin,
        triggers=[_shell_value(value) for value in args.identity] or None,
        logging=command.remote.Logging.NONE if quiet else command.remote.Logging.STDOUT_AND_STDERR,
        # The previous stdout (a kubeconfig, for one step) must not travel as an environment variable.
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions.merge(opts, extra),
    )
