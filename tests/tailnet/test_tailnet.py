"""The Tailnet component's promises about order and about destroy."""

from __future__ import annotations

from typing import Any


def test_a_destroy_never_opens_the_tailnet(indri_plan) -> None:  # type: ignore[no-untyped-def]
    """resetAclOnDestroy would install Tailscale's allow-all default policy on destroy: it stays off."""
    plan = indri_plan("0")
    acl = next(r for r in plan.resources if r["type"] == "tailscale:index/acl:Acl")
    assert acl["inputs"]["resetAclOnDestroy"] is False
    assert acl["inputs"]["overwriteExistingContent"] is True


def test_services_exist_only_after_the_devices_are_tagged(indri_plan) -> None:  # type: ignore[no-untyped-def]
    """`tailscale serve --service` refuses an untagged host: the serve steps wait for the Services, and the
    Services wait for every device's tags (and the policy), so the serve steps wait for indri's tags."""
    plan = indri_plan("0")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in plan.resources:
        by_type.setdefault(resource["type"], []).append(resource)
    tags = {r["urn"] for r in by_type["tailscale:index/deviceTags:DeviceTags"]}
    acl = by_type["tailscale:index/acl:Acl"][0]["urn"]
    services = by_type["tailscale:index/service:Service"]
    assert len(services) == 2 and len(tags) == 2
    for service in services:
        assert tags | {acl} <= set(service["options"]["dependsOn"]), service["name"]
    service_urns = {s["urn"] for s in services}
    serve_steps = [r for r in plan.resources if r["name"] in ("zot-serve-entry", "minikube-api-serve")]
    assert len(serve_steps) == 2
    for step in serve_steps:
        assert service_urns & set(step["options"]["dependsOn"]), step["name"]
