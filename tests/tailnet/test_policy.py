"""The tailnet policy: it parses as Tailscale reads it, and defines and owns every tag the program uses."""

from __future__ import annotations

from typing import Any

import json5
import pytest

import phases
from components.tailnet.acl import PolicyError, PolicyPart, render_policy
from phases.p0_foundation import INDRI_LEGACY_POLICY, TAILNET_POLICY


def every_part() -> list[PolicyPart]:
    """indri's legacy part and every part a phase module declares (AMENDS of TAILNET_POLICY): the policy at 8."""
    parts = [INDRI_LEGACY_POLICY]
    for spec in phases.REGISTRY:
        for amendment in spec.load().amends:
            if amendment.point is TAILNET_POLICY:
                parts.extend(amendment.value)
    return parts


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    parsed: dict[str, Any] = json5.loads(render_policy(["admin@example.com"], ["member@example.com"],
                                                       parts=every_part()))
    return parsed


def _tags_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {part.strip() for part in value.split(",") if part.strip().startswith("tag:")}
    if isinstance(value, list):
        return set().union(*(_tags_in(item) for item in value)) if value else set()
    return set()


def program_tags(plan: Any) -> set[str]:
    """Every tag the program hands to Tailscale: device tags, Service tags, the operator's own tags and
    its proxies' default tags (chart values), OAuth client tags, and tag annotations on Kubernetes objects."""
    tags: set[str] = set()
    for resource in plan.resources:
        inputs = resource["inputs"]
        if resource["type"] in ("tailscale:index/deviceTags:DeviceTags", "tailscale:index/service:Service",
                                "tailscale:index/oauthClient:OauthClient"):
            tags |= _tags_in(inputs.get("tags", []))
        if resource["type"] == "kubernetes:helm.sh/v4:Chart" and inputs.get("chart") == "tailscale-operator":
            values = inputs["values"]
            tags |= _tags_in(values["operatorConfig"]["defaultTags"])
            tags |= _tags_in(values["proxyConfig"]["defaultTags"])
        annotations = (inputs.get("metadata") or {}).get("annotations") or {}
        tags |= _tags_in(annotations.get("tailscale.com/tags", ""))
    return tags


def test_every_tag_the_program_uses_is_defined_and_owned(policy, indri_plan) -> None:  # type: ignore[no-untyped-def]
    used = program_tags(indri_plan("1"))
    assert {"tag:homelab", "tag:blumeops", "tag:nas", "tag:registry", "tag:k8s-api",
            "tag:k8s-operator", "tag:k8s"} <= used
    owners = policy["tagOwners"]
    for tag in used:
        assert tag in owners, f"{tag} is used but not defined in tagOwners"
        assert set(owners[tag]) & {"autogroup:admin", "tag:blumeops"}, f"{tag} is not owned by the admins"
    # the operator may hand its proxies tag:k8s only if it owns it
    assert "tag:k8s-operator" in owners["tag:k8s"]


def test_every_tag_in_grants_and_tests_is_defined(policy) -> None:  # type: ignore[no-untyped-def]
    owners = policy["tagOwners"]
    mentioned = set()
    for grant in policy["grants"]:
        mentioned.update(x for x in grant["src"] + grant["dst"] if x.startswith("tag:"))
    for test in policy["tests"]:
        for entry in [test["src"], *test.get("accept", []), *test.get("deny", [])]:
            if entry.startswith("tag:"):
                mentioned.add(entry.rsplit(":", 1)[0] if entry.count(":") == 2 else entry)
    assert mentioned <= set(owners), mentioned - set(owners)


def test_services_are_auto_approved_for_indri(policy) -> None:  # type: ignore[no-untyped-def]
    services = policy["autoApprovers"]["services"]
    assert services["svc:registry"] == ["tag:registry"]
    assert services["svc:k8s"] == ["tag:k8s-api"]


def grant(policy: dict[str, Any], src: str, dst: str) -> set[str]:
    return {p for g in policy["grants"] if src in g["src"] and dst in g["dst"] for p in g["ip"]}


def test_the_grants_the_migration_needs(policy) -> None:  # type: ignore[no-untyped-def]
    assert grant(policy, "tag:k8s", "tag:registry") == {"tcp:443"}
    assert grant(policy, "tag:k8s", "tag:homelab") == {"tcp:3001", "tcp:2200"}
    assert {"tcp:443", "tcp:5432"} <= grant(policy, "tag:homelab", "tag:k8s")
    assert grant(policy, "autogroup:admin", "*") == {"*"}


def test_acl_tests_use_the_configured_logins(policy) -> None:  # type: ignore[no-untyped-def]
    sources = [t["src"] for t in policy["tests"]]
    assert "admin@example.com" in sources and "member@example.com" in sources
    assert policy["groups"]["group:allisonflix"] == ["admin@example.com", "member@example.com"]


def test_rendering_keeps_comments_and_refuses_unknown_markers() -> None:
    text = render_policy(["a@b.c"], ["d@e.f"])
    assert text.startswith("// The tailnet policy")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("//")]
    assert not [line for line in comments if "a@b.c" in line or "d@e.f" in line]
    assert "<admin-user>" not in text and "<admins>" not in text
    with pytest.raises(PolicyError, match='unknown marker "<owner>"'):
        render_policy(["a@b.c"], ["d@e.f"], text='{"x": ["<owner>"]}')
    with pytest.raises(PolicyError, match="at least one admin"):
        render_policy([], ["d@e.f"])


def test_the_acl_resource_sends_the_rendered_policy(indri_plan) -> None:  # type: ignore[no-untyped-def]
    plan = indri_plan()
    acl = next(r for r in plan.resources if r["type"] == "tailscale:index/acl:Acl")
    sent = json5.loads(acl["inputs"]["acl"])
    assert "tag:k8s-api" in sent["tagOwners"]
    tags = [r for r in plan.resources if r["type"] == "tailscale:index/deviceTags:DeviceTags"]
    assert len(tags) == 2
    for resource in tags:
        assert acl["urn"] in resource["options"]["dependsOn"]
    services = {r["inputs"]["name"]: r for r in plan.resources if r["type"] == "tailscale:index/service:Service"}
    assert set(services) >= {"svc:registry", "svc:k8s"}
    assert services["svc:k8s"]["inputs"]["ports"] == ["tcp:443"]


@pytest.fixture(scope="module")
def policy_at_9() -> dict[str, Any]:
    parsed: dict[str, Any] = json5.loads(render_policy(["admin@example.com"], ["member@example.com"],
                                                       parts=every_part(), legacy=False))
    return parsed


def test_without_the_legacy_the_policy_is_whole_and_has_none_of_it(policy: dict[str, Any],
                                                                    policy_at_9: dict[str, Any]) -> None:
    # the same structural checks as the full policy: every tag it mentions is defined
    test_every_tag_in_grants_and_tests_is_defined(policy_at_9)
    assert set(policy_at_9["autoApprovers"]["services"]) == {"svc:registry", "svc:k8s"}
    assert "tag:grafana" not in policy_at_9["tagOwners"] and "tag:grafana" in policy["tagOwners"]
    assert grant(policy_at_9, "tag:k8s", "tag:homelab") == set()  # the brew forge's egress
    # the tags the cluster's proxies carry stay, with the grants members had
    for tag in ("tag:kiwix", "tag:forge", "tag:feed", "tag:pg", "tag:devpi", "tag:ci"):
        assert tag in policy_at_9["tagOwners"], tag
    assert grant(policy_at_9, "autogroup:member", "tag:forge") == {"tcp:443", "tcp:22"}
    assert len(policy_at_9["tests"]) == len(policy["tests"]) - 3


@pytest.mark.parametrize("target", ["0", "4", "9"])
def test_at_each_target_the_policy_defines_every_tag_it_and_the_program_use(indri_plan, target: str) -> None:  # type: ignore[no-untyped-def]
    plan = indri_plan(target)
    acl = next(r for r in plan.resources if r["type"] == "tailscale:index/acl:Acl")
    sent = json5.loads(acl["inputs"]["acl"])
    test_every_tag_in_grants_and_tests_is_defined(sent)
    owners = sent["tagOwners"]
    for tag in program_tags(plan):
        assert tag in owners, f"at {target}: {tag} is used but not defined"
    # a proxy the operator tags with a name's tag: the operator must own it, or the proxy never joins
    for resource in plan.resources:
        annotation = ((resource["inputs"].get("metadata") or {}).get("annotations") or {}).get("tailscale.com/tags")
        for tag in _tags_in(annotation or ""):
            assert "tag:k8s-operator" in owners[tag], f"at {target}: the operator cannot tag {tag} ({resource['name']})"


def test_a_target_has_only_the_parts_of_its_phases(indri_plan) -> None:  # type: ignore[no-untyped-def]
    def owners(target: str) -> dict[str, Any]:
        acl = next(r for r in indri_plan(target).resources if r["type"] == "tailscale:index/acl:Acl")
        return dict(json5.loads(acl["inputs"]["acl"])["tagOwners"])

    assert "tag:ci" not in owners("7") and "tag:ci" in owners("8")
    assert owners("5")["tag:kiwix"] == ["autogroup:admin", "tag:blumeops"]  # indri's, before its cutover
    assert "tag:k8s-operator" in owners("6")["tag:kiwix"]
