"""HostStep: the one building block that runs a step on a host, as ``command.remote.Command``.

A host step is one script plus one declaration. The shell lives in ``components/host/scripts/<script>.sh``;
the declaration is a ``HostStep`` (its name, its script, the values of its preamble, which of them are
secret), registered on a host with ``HostStep.register``. The text sent on **stdin** is::

    #!/bin/bash                      (a comment for bash -s; tells shellcheck the dialect)
    # does: / # undo:                (what the step does and what its delete undoes, in words)
    readonly NAME='value' ...        (the preamble, sorted by name; a secret is one line after a marker)
    <the blocks of scripts/lib.sh the script uses, found by name, transitively>
    <scripts/<script>.sh>            (defines step_create / step_delete [/ step_agent], ends in run_action)

The command string is a constant, ``/bin/bash -euo pipefail -s -- create`` (or ``delete``): no setting, no
value, no path the operator chose ever reaches it (sshd runs it through the login shell). Host steps are
written for macOS's own ``/bin/bash`` (3.2), which every Mac has; ``blumeops:tools.bash`` only names the
bash the LaunchAgents run, in their plists. pulumi-command runs ``delete`` with the stdin of the last
create/update (it keeps the inputs in state), which is why one stdin carries both actions.

Secrets are preamble values too, but: the stdin that carries them is a secret Output, the step's logging is
off, and each secret is one line after a ``# blumeops-secret NAME`` marker, so the rendering for reviewers
(``reviewable``, which the offline plan applies to every recorded stdin) shows a placeholder instead.
A change of script, of a value, or of a lib.sh helper the script uses changes stdin, which makes
pulumi-command re-run ``create`` (its update runs ``create`` when no ``update`` command is set): every
script is idempotent, so re-running converges. A lib.sh helper the script does not use is not in its
stdin, so changing it re-runs nothing. ``triggers`` carry only a step's identity (what ``delete`` would
undo), so a replacement happens only when the thing itself changes (another label, another profile).
"""

from __future__ import annotations

import functools
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
# The only command strings a host step ever has: macOS's own bash reads the script from stdin.
STEP_SHELL = "/bin/bash"
STEP_COMMANDS = {action: f"{STEP_SHELL} -euo pipefail -s -- {action}" for action in ACTIONS}
# How long Pulumi waits for a step before it gives up (the scripts bound each call they make themselves).
DEFAULT_TIMEOUT_MINUTES = 10
SECRET_MARK = "# blumeops-secret "
DOES, UNDOES = "# does: ", "# undo: "  # the step's effect in words, read back by `ops runbook`
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Numbered variables (MIRROR_1_TOML, ...) are lists the script walks with indirect expansion.
_INDIRECT = re.compile(r"^[A-Z]+_[0-9]+_[A-Z0-9_]+$")
_FUNCTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(\)\s*\{", re.MULTILINE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GLOBAL = re.compile(r"^([A-Z][A-Z0-9_]*)=", re.MULTILINE)

Value = str | int | bool


def require_absolute(component: str, label: str, path: str) -> None:
    """A path a host step reads or writes: absolute, no trailing /, no .., no ~ (neither SSH nor launchd
    expands it), or a ValueError naming the component and the argument."""
    if not path.startswith("/") or path.rstrip("/") != path or "/../" in f"{path}/" or "~" in path:
        raise ValueError(f"{component}: {label} {path!r} must be an absolute path (no trailing /, no .., no ~)")


def secret_placeholder(name: str) -> str:
    return f"<secret {name}: sent on stdin at run time, never rendered>"


def _shell_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ansi_c_quote(value: str) -> str:
    """``value`` as one line of bash ``$'...'`` quoting (bash 3.2 reads it): every byte outside printable
    ASCII, and ``\\`` and ``'``, as an escape. Used for secrets, so that each is exactly one line."""
    out = []
    for byte in value.encode():
        char = chr(byte)
        if char in "\\'":
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "$'" + "".join(out) + "'"


def script_text(script: str) -> str:
    path = SCRIPTS_DIR / f"{script}.sh"
    if not path.is_file():
        raise ValueError(f"no host script {path}")
    return path.read_text()


@dataclass(frozen=True, slots=True)
class _Block:
    text: str
    defines: frozenset[str]
    uses: frozenset[str]


@functools.cache
def library_blocks() -> tuple[_Block, ...]:
    """lib.sh as blocks separated by blank lines: what each defines and which lib functions it calls."""
    text = script_text(LIBRARY)
    raw = [block.strip("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]
    defined = {name for block in raw if _FUNCTION.search(block)
               for name in (*_FUNCTION.findall(block), *_GLOBAL.findall(block))}
    blocks = []
    for block in raw:
        names = frozenset(_FUNCTION.findall(block))
        open_functions = 0
        for line in block.split("\n"):
            if _FUNCTION.match(line) and not line.rstrip().endswith("}"):
                open_functions += 1
            elif line == "}":
                open_functions -= 1
        if open_functions:
            raise ValueError(f"lib.sh: a function of {sorted(names)} spans a blank line: keep each helper in one block")
        if names:
            # a block's globals (BLUMEOPS_TEMPS) come with it: a script that uses one gets its block
            names = names | frozenset(_GLOBAL.findall(block))
        words = set(_WORD.findall(block))
        blocks.append(_Block(block, names, frozenset((words & defined) - names)))
    return tuple(blocks)


def library_for(script_body: str) -> str:
    """The blocks of lib.sh ``script_body`` needs: the prologue (blocks that define no function), then every
    block defining a function the script calls, directly or through another helper, in lib.sh's order."""
    blocks = library_blocks()
    by_name = {name: block for block in blocks for name in block.defines}
    wanted: set[str] = set()
    queue = [word for word in _WORD.findall(script_body) if word in by_name]
    for block in blocks:
        if not block.defines:
            queue.extend(block.uses)
    while queue:
        name = queue.pop()
        if name in wanted:
            continue
        wanted.add(name)
        queue.extend(by_name[name].uses)
    chosen = [block.text for block in blocks if not block.defines or block.defines & wanted]
    return "\n\n".join(chosen) + "\n"


@dataclass(frozen=True, slots=True)
class HostStep:
    """What one step runs: a script of ``scripts/`` and the values of its preamble.

    ``secrets`` names preamble variables whose values are secrets (given at render time).
    """

    name: str  # the step's resource name; the preamble's STEP (used in messages)
    script: str
    variables: Mapping[str, Value] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    # What the step does and what its delete undoes, in the homelab's words ("stops brew service grafana"):
    # written into the stdin's header, where reviewers and `ops runbook` read them. Every step says both.
    does: str = ""
    undoes: str = ""

    def __post_init__(self) -> None:
        for key in (*self.variables, *self.secrets):
            if not _NAME.match(key) or key == "STEP":
                raise ValueError(f"host step {self.name}: {key!r} is not an upper-case shell variable name")
        both = set(self.variables) & set(self.secrets)
        if both:
            raise ValueError(f"host step {self.name}: {sorted(both)} are both plain and secret")
        for key, value in (("STEP", self.name), *self.variables.items()):
            if "\0" in _shell_value(value):
                raise ValueError(f"host step {self.name}: the value of {key} holds a NUL character, which no "
                                 "shell variable can carry: remove it from the setting that gave it")
        for label, text in (("does", self.does), ("undoes", self.undoes)):
            if not text.strip():
                raise ValueError(f"host step {self.name}: say what it {label} in words ({label}=...): the runbook "
                                 "and the rendered script show it")
        script_text(self.script)

    def render(self, secret_values: Mapping[str, str] | None = None) -> str:
        """The exact text sent on stdin. Without ``secret_values`` secrets render as placeholders."""
        lines = [
            "#!/bin/bash",
            f"# blumeops host step {self.name} (components/host/scripts/{self.script}.sh);",
            f"# run as: {STEP_SHELL} -euo pipefail -s -- create|delete   (this text arrives on stdin)",
            DOES + _CONTROL.sub("?", self.does),  # one comment line, whatever a setting put in the text
            UNDOES + _CONTROL.sub("?", self.undoes),
            f"readonly STEP={shlex.quote(self.name)}",
        ]
        rendered: dict[str, str] = {key: shlex.quote(_shell_value(value)) for key, value in self.variables.items()}
        for key in self.secrets:
            if secret_values is None:
                value = secret_placeholder(key)
            elif key not in secret_values:
                raise ValueError(f"host step {self.name}: no value for secret {key}")
            else:
                value = secret_values[key]
            if "\0" in value:
                raise ValueError(f"host step {self.name}: the secret {key} holds a NUL character")
            rendered[key] = ansi_c_quote(value)
        for key in sorted(rendered):
            quoted = rendered[key]
            if key in self.secrets:
                lines.append(f"{SECRET_MARK}{key}")
            elif "$" in quoted or "`" in quoted:
                lines.append("# shellcheck disable=SC2016  # a literal value: single quotes on purpose")
            if _INDIRECT.match(key):
                lines.append("# shellcheck disable=SC2034  # numbered: the script reads it as ${!name}")
            lines.append(f"readonly {key}={quoted}")
        body = script_text(self.script)
        return "\n".join(lines) + "\n\n" + library_for(body) + "\n" + body

    def register(
        self,
        host: Host,
        *,
        secret_values: Mapping[str, pulumi.Output[str]] | None = None,
        identity: Sequence[Value] = (),
        secret_stdout: bool = False,
        timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES,
        opts: pulumi.ResourceOptions | None = None,
    ) -> Any:
        """Register the ``command.remote.Command`` that runs this step on ``host``.

        ``identity``: what ``delete`` would undo; a change replaces the step (create the new, delete the old).
        ``secret_stdout``: the step prints a secret (a kubeconfig): stdout becomes a secret output, logging off.
        ``timeout_minutes``: Pulumi's create/update/delete timeout of the command.
        """
        values = dict(secret_values or {})
        missing = set(self.secrets) - set(values)
        if missing:
            raise ValueError(f"host step {self.name}: no Output for secret(s) {sorted(missing)}")
        if timeout_minutes <= 0:
            raise ValueError(f"host step {self.name}: timeout_minutes must be positive")
        stdin: pulumi.Input[str]
        if self.secrets:
            secrets = {key: values[key] for key in self.secrets}
            stdin = pulumi.Output.secret(
                pulumi.Output.all(**secrets).apply(lambda resolved: self.render(dict(resolved)))
            )
        else:
            stdin = self.render({})
        quiet = bool(self.secrets) or secret_stdout
        timeout = f"{timeout_minutes}m"
        extra = pulumi.ResourceOptions(
            custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout, delete=timeout),
            additional_secret_outputs=["stdout"] if secret_stdout else None,
        )
        return command.remote.Command(
            self.name,
            connection=host.connection(),
            create=STEP_COMMANDS["create"],
            delete=STEP_COMMANDS["delete"],
            stdin=stdin,
            triggers=[_shell_value(value) for value in identity] or None,
            logging=command.remote.Logging.NONE if quiet else command.remote.Logging.STDOUT_AND_STDERR,
            # The previous stdout (a kubeconfig, for one step) must not travel as an environment variable.
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions.merge(opts, extra),
        )


def reviewable(stdin: str) -> str:
    """A recorded stdin as a reviewer reads it: the line after each ``# blumeops-secret NAME`` marker
    shows a placeholder instead of the value (the offline plan renders every host script this way)."""
    lines = stdin.split("\n")
    for index, line in enumerate(lines[:-1]):
        if line.startswith(SECRET_MARK):
            name = line.removeprefix(SECRET_MARK).strip()
            lines[index + 1] = f"readonly {name}={ansi_c_quote(secret_placeholder(name))}"
    return "\n".join(lines)

