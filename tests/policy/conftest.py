"""Call the pack's rules directly, with properties wrapped exactly as the engine wraps them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
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
    parent: str | None = None,
    sink: list[str] | None = None,
    provider: Mapping[str, Any] | None = None,
) -> list[str]:
    """The violation messages `policy` reports for one resource.

    wire=True: `props` are in wire form (secrets as {SIG: SECRET_SIG, "value": ...}) and are handed over
    as the served pack does (rules/wire.py): marks dropped from the props, kept for `secret_marked`.
    parent: the type token of the parent resource (the engine sends its URN, and the URN's type chain).
    sink: a list that receives the messages as they are reported (kept when the rule raises).
    provider: the inputs of the resource's Kubernetes provider, as the engine sends them (None: no provider)."""
    from rules.wire import request_properties
    messages: list[str] = sink if sink is not None else []

    def report(message: str, urn: str | None = None) -> None:
        assert isinstance(message, str) and message
        messages.append(message)

    parent_urn = f"urn:pulumi:indri::blumeops::{parent}::owner" if parent else None
    chain = f"{parent}${resource_type}" if parent else resource_type
    options = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent_urn)
    args = ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(deserialize_properties(dict(props)) if wire else dict(props)),
        f"urn:pulumi:indri::blumeops::{chain}::{name}",
        name,
        options,
        None if provider is None else PolicyProviderResource(
            "pulumi:providers:kubernetes", unknown_checking_proxy(dict(provider)),
            "urn:pulumi:indri::blumeops::pulumi:providers:kubernetes::minikube", "minikube"),
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


GOOD = "ghcr.io/miniflux/miniflux:2.2.16"
GOOD_DIGEST = "sha256:" + "a" * 64
AMD64_ONLY = "docker.io/example/amd64only:1.0"


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A small catalog: one verified arm64 image, one amd64-only, one unverified arm64."""
    from rules import images as image_rules
    from rules.catalog import parse_catalog

    document = {
        "registries": {"mirrored": ["docker.io", "ghcr.io"]},
        "images": {
            GOOD: {"platforms": ["linux/amd64", "linux/arm64"], "digest": GOOD_DIGEST,
                   "verified": "2026-01-01", "source": "test"},
            "docker.io/example/amd64only:1.0": {"platforms": ["linux/amd64"], "digest": None, "verified": None,
                                                "source": "test"},
            "docker.io/tailscale/tailscale:v1.102.3": {"platforms": ["linux/arm64/v8"], "digest": None,
                                                       "verified": None, "source": "test"},
            "docker.io/library/redis:8.2.3-alpine": {"platforms": ["linux/arm64"], "digest": "sha256:" + "b" * 64,
                                                     "verified": "2026-01-01", "source": "test"},
            "quay.io/argoproj/argocd:v3.4.4": {"platforms": ["linux/arm64"], "digest": "sha256:" + "c" * 64,
                                               "verified": "2026-01-01", "source": "test"},
        },
    }
    parsed = parse_catalog(document)
    assert parsed.errors == ()
    monkeypatch.setattr(image_rules, "_catalog", lambda: parsed)
    return parsed
