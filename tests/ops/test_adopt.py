"""``ops adopt``: the ``pulumi import --file`` document of the plan at N, each resource with its provider's ID
format."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ops import adopt
from ops import plan as offline_plan

PlanOf = Callable[[str | None], offline_plan.Plan]
NODES = {"indri": "nIndri1CNTRL", "sifaka": "nSifaka2CNTRL"}


def test_every_resource_that_can_exist_is_imported_by_its_providers_id(indri_plan: PlanOf) -> None:
    plan = indri_plan("6")
    adoption = adopt.build_adoption(plan.document, "6", NODES)
    imported = {entry["name"]: entry for entry in adoption.imports}
    listed = {entry["name"] for entry in adoption.not_imported}
    for resource in plan.resources:
        if resource["custom"] and not resource["type"].startswith("pulumi:providers:"):
            assert (resource["name"] in imported) != (resource["name"] in listed), resource["name"]
    assert imported["tailnet-acl"]["id"] == "acl"
    assert imported["tailnet-registry"]["id"] == "svc:registry"
    assert imported["tailnet-indri-tags"]["id"] == "nIndri1CNTRL"
    assert imported["grafana-data"]["id"] == "monitoring/grafana"
    assert imported["torrents-share-volume"]["id"] == "torrents-nfs-pv"  # cluster-scoped: the bare name
    assert imported["blumeops-pg-cluster"]["protect"] is True
    for entry in adoption.imports:
        for reference in ("parent", "provider"):
            if reference in entry:
                assert adoption.name_table[entry[reference]].endswith("::" + entry[reference].rstrip("-"))
    kinds = {entry["type"] for entry in adoption.not_imported}
    assert "command:remote:Command" in kinds


def test_a_device_without_its_node_id_is_refused_by_name(indri_plan: PlanOf) -> None:
    with pytest.raises(adopt.AdoptError, match=r"--node-id sifaka=<id>"):
        adopt.build_adoption(indri_plan("6").document, "6", {"indri": "nIndri1CNTRL"})
    with pytest.raises(adopt.AdoptError, match="write <device>=<node ID>"):
        adopt._node_ids(["indri"])
