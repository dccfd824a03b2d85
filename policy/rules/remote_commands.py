"""Remote and local commands: `ssh-pinned-host-key` (connect as a named user to a host whose key is
pinned) and `constant-command-strings` (the command string is a constant; every value travels on stdin).

Why the command string must be a constant: sshd runs the command string it is given through the
user's login shell (`$SHELL -c '<command>'`), and pulumi-command's local commands run it through
`/bin/sh -c`. Any value placed in it — a configured path such as `blumeops:tools.bash` included — is
therefore shell code: `/usr/bin/true; touch pwned;` runs, and a path with a space breaks every step.
The program sends each step's script and values on stdin (rendered with `shlex.quote`) and runs the
one fixed command `/bin/bash -euo pipefail -s -- create` (or `-- delete`); the rule accepts exactly
those strings, so no setting, secret or other value can ever reach a shell through the command.
`/bin/bash` is macOS's own bash 3.2, present on every Mac (the scripts are written for it).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from rules.kinds import is_command
from rules.props import describe, get, get_str, is_list, is_mapping

REMOTE_TYPES = frozenset({"command:remote:Command", "command:remote:CopyToRemote", "command:remote:CopyFile"})
HOST_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


def host_key_problem(host_key: str) -> str | None:
    """None for `<type> <base64>[ comment]` as `ssh-keyscan` prints it (host name column dropped)."""
    fields = host_key.split()
    if len(fields) >= 3 and fields[1] in HOST_KEY_TYPES:
        fields = fields[1:]  # a known_hosts line: "<host> <type> <key>"
    if len(fields) < 2 or fields[0] not in HOST_KEY_TYPES:
        return f"is not an SSH public key ('<type> <base64>' with type one of {', '.join(sorted(HOST_KEY_TYPES))})"
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        return "has a key that is not valid base64"
    if fields[0].encode() not in blob[:64]:
        return f"has a key blob that does not hold a {fields[0]} key"
    return None


def connection_problems(props: Any) -> Iterator[str]:
    connection = get(props, "connection")
    if not is_mapping(connection):
        yield "has no `connection`"
        return
    host = get_str(connection, "host") or "?"
    user = get_str(connection, "user")
    if not user:
        yield f"connects to {host} without an explicit `user` (pulumi-command would default to root)"
    yield from _pinned(connection, host, "connects to")
    proxy = get(connection, "proxy")
    if proxy is not None:  # a jump host is a second SSH connection: trusted no more loosely than the first
        if not is_mapping(proxy):
            yield f"connects to {host} through a `proxy` that is not a connection"
            return
        jump = get_str(proxy, "host") or "?"
        if not get_str(proxy, "user"):
            yield f"jumps through {jump} without an explicit `user` (pulumi-command would default to root)"
        yield from _pinned(proxy, jump, f"reaches {host} through the jump host")


def _pinned(connection: Any, host: str, how: str) -> Iterator[str]:
    host_key = get_str(connection, "hostKey")
    if not host_key:
        yield (
            f"{how} {host} without a pinned `hostKey`, so any machine answering on that name is trusted: "
            f"pin it with the output of `ssh-keyscan -t ed25519 {host}`"
        )
    else:
        problem = host_key_problem(host_key)
        if problem:
            yield f"{how} {host} with a hostKey that {problem}"


def validate_ssh(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type.lower() not in {t.lower() for t in REMOTE_TYPES}:
        return
    for problem in connection_problems(args.props):
        report_violation(f"{describe(args.resource_type, args.name)} {problem}.", None)


ssh_pinned_host_key = ResourceValidationPolicy(
    name="ssh-pinned-host-key",
    description="Remote commands connect over SSH with a pinned host key and an explicit user.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_ssh,
)

BASH = "/bin/bash"
CREATE_COMMAND = f"{BASH} -euo pipefail -s -- create"
DELETE_COMMAND = f"{BASH} -euo pipefail -s -- delete"
# field -> the one string it may hold; `update` unset means pulumi-command runs `create` again.
COMMAND_FORMS = {"create": CREATE_COMMAND, "update": CREATE_COMMAND, "delete": DELETE_COMMAND}


def command_string_problems(props: Any) -> Iterator[str]:
    for field_name, expected in COMMAND_FORMS.items():
        value = get(props, field_name)
        if value is None:
            if field_name == "create":
                yield (f"has no `create`: it must be the constant `{CREATE_COMMAND}` (sshd runs the command "
                       "string through a shell; values travel on stdin)")
            continue
        if value != expected:
            yield (
                f"`{field_name}` is {value!r}, not the constant `{expected}`: sshd runs the command string "
                "through a shell, so any value in it is shell code; send values on stdin (the host step's "
                "preamble) and keep the command constant"
            )


# Environment variables that make bash (or the loader) run code of their value: a value there is code too.
SHELL_CODE_VARIABLES = frozenset({"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PROMPT_COMMAND", "PS4", "IFS",
                                  "BASH_XTRACEFD", "GLOBIGNORE", "CDPATH", "PATH"})
_LOADER_VARIABLE = re.compile(r"^(DYLD_|LD_)", re.IGNORECASE)


def environment_problems(props: Any) -> Iterator[str]:
    environment = get(props, "environment")
    if not is_mapping(environment):
        return
    for name in list(environment):
        if str(name).upper() in SHELL_CODE_VARIABLES or str(name).upper().startswith("BASH_FUNC_") \
                or _LOADER_VARIABLE.match(str(name)):
            yield (f"sets `environment.{name}`, which changes what bash or the loader runs (BASH_ENV, ENV, "
                   "SHELLOPTS, PATH, DYLD_*/LD_* ... are code): a value there reaches the shell like one in the "
                   "command string; send values on stdin")


# A local command's interpreter that only runs the (constant) command string: pulumi-command's default, or bash's.
PLAIN_INTERPRETERS = (["/bin/sh", "-c"], [BASH, "-c"])


def interpreter_problems(props: Any) -> Iterator[str]:
    """A local command's `interpreter` is how its command string runs: a shell (or any interpreter given code
    on its command line) makes the string code, whatever the rule above says of the string itself."""
    interpreter = get(props, "interpreter")
    if interpreter is None:
        return
    words = list(interpreter) if is_list(interpreter) else [interpreter]
    if words not in PLAIN_INTERPRETERS:
        yield (f"runs its command through the `interpreter` {words!r}: anything past `-c` is code of its own, and "
               "another program makes the command string its code; leave `interpreter` unset (pulumi-command's "
               "`/bin/sh -c` runs the constant command) and send values on stdin")


def validate_command_strings(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_command(args.resource_type):
        return
    for problem in (*command_string_problems(args.props), *environment_problems(args.props),
                    *interpreter_problems(args.props)):
        report_violation(f"{describe(args.resource_type, args.name)} {problem}.", None)


constant_command_strings = ResourceValidationPolicy(
    name="constant-command-strings",
    description=(
        f"Every command's create/update/delete is exactly `{CREATE_COMMAND}` or `{DELETE_COMMAND}`: "
        "no value travels in a command string (sshd runs it through a shell)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_command_strings,
)

POLICIES = [ssh_pinned_host_key, constant_command_strings]
