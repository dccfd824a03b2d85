"""`ssh-pinned-host-key`: remote commands connect as a named user to a host whose key is pinned."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from rules.props import describe, get, get_str, is_mapping

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
    host_key = get_str(connection, "hostKey")
    if not host_key:
        yield (
            f"connects to {host} without a pinned `hostKey`, so any machine answering on that name is trusted: "
            f"pin it with the output of `ssh-keyscan -t ed25519 {host}`"
        )
    else:
        problem = host_key_problem(host_key)
        if problem:
            yield f"connects to {host} with a hostKey that {problem}"


def validate_ssh(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in REMOTE_TYPES:
        return
    for problem in connection_problems(args.props):
        report_violation(f"{describe(args.resource_type, args.name)} {problem}.", None)


ssh_pinned_host_key = ResourceValidationPolicy(
    name="ssh-pinned-host-key",
    description="Remote commands connect over SSH with a pinned host key and an explicit user.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_ssh,
)

POLICIES = [ssh_pinned_host_key]
