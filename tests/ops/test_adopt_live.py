"""``ops adopt`` against the homelab as it runs after its own phase 6 (tests/ops/homelab.py, written from the
facts): ArgoCD handed over, not fought; only what exists imported; protected state never replaced, its inputs
equal to the live objects in every field that would replace it; names held by live objects listed."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from ops import adopt
from ops import plan as offline_plan
from tests.ops import homelab

PlanOf = Callable[[str | None], offline_plan.Plan]
NODES = {"indri": "nIndri1CNTRL", "sifaka": "nSifaka2CNTRL"}


def adoption_of(plan: offline_plan.Plan, objects: list[dict[str, Any]]) -> adopt.Adoption:
    return adopt.build_adoption(plan.document, "6", NODES, adopt.read_cluster(homelab.snapshot(objects)))


def live(name: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["metadata"]["name"] == name and o["kind"] != "Namespace")


def test_what_an_application_still_manages_is_refused_with_the_handover_in_order(indri_plan: PlanOf) -> None:
    adoption = adoption_of(indri_plan("6"), homelab.cluster_objects())
    # the app-of-apps first (its next sync would bring back what was deleted before it), then each Application
    # that manages an object the program takes: its own objects or a chart's
    assert adoption.applications[0] == "apps"
    assert set(adoption.applications) == {"apps", "argocd", "tailscale-operator", "cloudnative-pg", "blumeops-pg",
                                          "grafana", "grafana-config", "miniflux", "devpi", "torrent", "kiwix"}
    assert len(adoption.refused) == len(adoption.applications)
    miniflux = next(p for p in adoption.refused if "Application miniflux " in p)
    assert "Deployment miniflux/miniflux" in miniflux and "argocd app delete miniflux --cascade=false" in miniflux
    assert any("Deployment cnpg-system/cloudnative-pg" in p for p in adoption.refused)  # a chart's object


def test_after_the_handover_what_exists_is_imported_and_the_rest_created(indri_plan: PlanOf) -> None:
    plan = indri_plan("6")
    objects = homelab.without_applications()  # the tracking annotations stay on the objects
    adoption = adoption_of(plan, objects)
    assert adoption.refused == []
    present = {(o["metadata"].get("namespace", ""), o["metadata"]["name"], o["kind"]) for o in objects}
    for entry in adoption.imports:
        if entry["type"].startswith("kubernetes:"):
            namespace, _, name = entry["id"].rpartition("/")
            assert (namespace, name, entry["type"].rsplit(":", 1)[1]) in present, entry
    assert adoption.created == [
        "Secret databases/blumeops-pg-miniflux", "Service databases/pg-tailscale", "Namespace storage-probe",
        "Job storage-probe/nfs-probe", "PersistentVolumeClaim torrent/transmission-config",
        "ConfigMap torrent/zim-torrents", "ConfigMap torrent/transmission-scripts", "ConfigMap kiwix/kiwix-scripts"]
    # phase 6 of the homelab ran Transmission's /config on an emptyDir (facts §9.3): that claim is new and empty
    assert adoption.new_state == ["PersistentVolumeClaim torrent/transmission-config"]


def test_the_protected_state_equals_the_live_objects_where_a_change_would_replace_it(indri_plan: PlanOf) -> None:
    plan = indri_plan("6")
    adoption = adoption_of(plan, homelab.without_applications())
    kept = [r for r in plan.resources if r["custom"] and (r["options"]["protect"] or r["options"]["retainOnDelete"])
            and r["type"].startswith(("kubernetes:core", "kubernetes:postgresql"))]
    imported = {entry["name"]: entry for entry in adoption.imports}
    cluster = adopt.read_cluster(homelab.snapshot(homelab.without_applications()))
    for resource in kept:
        key = adopt._object_key(resource)
        if key is None or key not in cluster.objects:
            continue
        assert resource["name"] in imported, f"{resource['name']} is live but not imported"
        for path in adopt.REPLACED_ON.get((key[0], key[1]), ()):
            planned = adopt._at(resource["inputs"], path)
            if planned is not adopt._ABSENT:
                assert adopt._differences(planned, adopt._at(cluster.objects[key], path)) == [], (resource["name"],
                                                                                                    path)
    # every change the first update makes on kept state is known and listed (a new drift fails here)
    on_kept = [c for c in adoption.changes if c.split(":", 1)[0].split(" ", 1)[1] in
               {adopt._kubernetes_id(k) for k in map(adopt._object_key, kept) if k}]
    assert on_kept == ["Cluster databases/blumeops-pg: updated (spec.bootstrap.initdb.secret, spec.imageName, "
                       "spec.managed.roles)"]
    assert not [c for c in adoption.changes if ": replaced" in c and "StatefulSet devpi/devpi" not in c]


@pytest.mark.parametrize("name, change, field", [
    ("grafana", lambda o: o["spec"].update(accessModes=["ReadWriteMany"]), "spec.accessModes"),
    ("torrents-nfs-pv", lambda o: o["spec"]["nfs"].update(server="sifaka.tail8d86e.ts.net"), "spec.nfs"),
    ("torrents-storage", lambda o: o["spec"].update(volumeName="pvc-other"), "spec.volumeName"),
])
def test_protected_state_the_first_up_would_replace_is_refused(indri_plan: PlanOf, name: str,
                                                               change: Callable[[dict[str, Any]], None],
                                                               field: str) -> None:
    objects = homelab.without_applications()
    change(live(name, objects))
    adoption = adoption_of(indri_plan("6"), objects)
    refused = [p for p in adoption.refused if f"/{name} holds state" in p or f" {name} holds state" in p]
    assert len(refused) == 1 and field in refused[0], adoption.refused
    assert name not in {entry["id"].rsplit("/", 1)[-1] for entry in adoption.imports}


def test_a_name_a_live_object_holds_for_a_new_one_is_listed_with_its_steps(indri_plan: PlanOf) -> None:
    adoption = adoption_of(indri_plan("6"), homelab.without_applications())
    assert len(adoption.name_conflicts) == 1
    conflict = adoption.name_conflicts[0]
    assert "Service databases/blumeops-pg-tailscale holds the name pg" in conflict
    assert "Service databases/pg-tailscale" in conflict and "kubectl -n databases delete service" in conflict
    # the Ingresses carry the homelab's own names, so they are imported, not duplicated
    assert not [c for c in adoption.name_conflicts if "Ingress" in c]


def test_no_secret_value_leaves_the_snapshot(indri_plan: PlanOf) -> None:
    objects = homelab.without_applications()
    assert any("data" in o for o in objects if o["kind"] == "Secret")
    cluster = adopt.read_cluster(homelab.snapshot(objects))
    assert all("data" not in o and "stringData" not in o for o in cluster.objects.values() if o["kind"] == "Secret")
    adoption = adopt.build_adoption(indri_plan("6").document, "6", NODES, cluster)
    written = json.dumps(adoption.document()) + adopt.report(adoption)
    assert "ZmFrZQ==" not in written


def test_the_snapshot_command_lists_every_kind_the_plan_registers(indri_plan: PlanOf) -> None:
    plan = indri_plan("6")
    command = adopt.snapshot_command(plan.document)
    kinds = set(command.split()[2].split(","))
    assert "applications.argoproj.io" in kinds and "persistentvolumeclaims" in kinds
    assert "clusters.postgresql.cnpg.io" in kinds and "ingresses.networking.k8s.io" in kinds
    for resource in plan.resources:
        if resource["custom"] and resource["type"].startswith("kubernetes:") and not \
                resource["type"].startswith("kubernetes:helm.sh"):
            kind = resource["type"].rsplit(":", 1)[1].lower()
            assert any(k.split(".", 1)[0] == adopt._plural(kind) for k in kinds), resource["type"]
    assert command.endswith("--all-namespaces -o json")


def test_a_snapshot_that_is_not_one_is_refused() -> None:
    for text, message in (("[]", "not a list of objects"), ("{", "not JSON"),
                          (json.dumps({"items": [1]}), "not a Kubernetes object")):
        with pytest.raises(adopt.AdoptError, match=message):
            adopt.read_cluster(text)


def test_a_live_object_not_in_the_plan_is_left_alone(indri_plan: PlanOf) -> None:
    objects = homelab.without_applications()
    teslamate = copy.deepcopy(live("miniflux", objects))
    teslamate["metadata"].update(name="teslamate", namespace="teslamate")
    adoption = adoption_of(indri_plan("6"), [*objects, teslamate])
    assert not [e for e in adoption.imports if "teslamate" in e["id"]]
    assert not [c for c in adoption.changes + adoption.created if "teslamate" in c]
