"""Call the pack's rules directly, with properties wrapped exactly as the engine wraps them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.proxy import unknown_checking_proxy

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
) -> list[str]:
    """The violation messages `policy` reports for one resource."""
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        assert isinstance(message, str) and message
        messages.append(message)

    options = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    args = ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(dict(props)),
        f"urn:pulumi:indri::blumeops::{resource_type}::{name}",
        name,
        options,
        None,
        dict(config) if config else None,
    )
    result = policy.validate(args, report)
    assert result is None, "rules are synchronous"
    return messages


@pytest.fixture
def check() -> Check:
    return run_policy
