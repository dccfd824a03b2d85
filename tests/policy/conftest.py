"""Call the pack's rules directly, with properties wrapped exactly as the engine wraps them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def secret(value: Any) -> dict[str, Any]:
    """`value` in wire form, marked secret as the engine sends it."""
    return {**SECRET_SIG, "value": value}


POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
# The engine runs the pack with policy/ as sys.path[0]; `from rules import ...` needs the same here.
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

Check = Callable[..., list[str]]


def run_policy(
    policy: ResourceValidationPolicy,
    resource_type: str,
    props: Mapping[str, Any],
    *,
    name: str = "subject",
    protect: bool = False,
    config: Mapping[str, Any] | None = None,
    wire: bool = False,
) -> list[str]:
    """The violation messages `policy` reports for one resource.

    wire=True: `props` are in wire form (secrets as {SIG: SECRET_SIG, "value": ...}) and are handed over
    as the served pack does (rules/wire.py): marks dropped from the props, kept for `secret_marked`."""
    from rules.wire import request_properties
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        assert isinstance(message, str) and message
        messages.append(message)

    options = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    args = ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(deserialize_properties(dict(props)) if wire else dict(props)),
        f"urn:pulumi:indri::blumeops::{resource_type}::{name}",
        name,
        options,
        None,
        dict(config) if config else None,
    )
    if wire:
        with request_properties(props):
            result = policy.validate(args, report)
    else:
        result = policy.validate(args, report)
    assert result is None, "rules are synchronous"
    return messages


@pytest.fixture
def check() -> Check:
    return run_policy
