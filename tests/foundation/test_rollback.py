"""Lowering the target runs to the end and keeps the data; raising it again takes the kept state back.

The offline plans of the indri stack at each implemented target are walked through ``ops.lifecycle`` (the
engine's rules: protect stops the update, retain_on_delete leaves the object, a Namespace takes its objects
along, a create on an existing object fails with AlreadyExists unless the provider upserts), and through
``ops diff`` as a pull request sees them."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import phases
from ops import diff as plan_diff
from ops import plan as offline_plan
from ops.engine import lifecycle
from ops.stack import ROOT

PlanOf = Callable[[str | None], offline_plan.Plan]
IMPLEMENTED = [spec.id for spec in phases.REGISTRY if spec.implemented]
GRAFANA_CLAIM = ("", "PersistentVolumeClaim", "monitoring", "grafana")
GRAFANA_NAMESPACE = ("", "Namespace", "", "monitoring")


def documents(plan_of: PlanOf, *targets: str) -> list[dict[str, Any]]:
    return [plan_of(target).document for target in targets]


@pytest.mark.parametrize("target", IMPLEMENTED)
def test_kept_state_is_on_the_provider_that_takes_it_back(indri_plan: PlanOf, target: str) -> None:
    document = indri_plan(target).document
    assert lifecycle.kept_state_problems(document) == []


# Every implemented target above phase 1, lowered by one (1 -> 0 is refused by design: the protected
# PostgreSQL cluster is the operator's explicit decision).
ONE_DOWN = [(high, low) for low, high in itertools.pairwise(IMPLEMENTED) if high not in ("0", "1")]


def test_one_down_covers_every_phase_above_1() -> None:
    assert [high for high, _ in ONE_DOWN] == [t for t in IMPLEMENTED if t not in ("0", "1")]


@pytest.mark.parametrize(("higher", "below"), ONE_DOWN)
def test_lowering_the_target_by_one_phase_runs_to_the_end(indri_plan: PlanOf, higher: str, below: str) -> None:
    before, after = documents(indri_plan, higher, below)
    cluster = lifecycle.Cluster.deployed(before)
    kept_before = dict(cluster.objects)
    step = cluster.apply(after)  # raises where the engine would stop
    assert step.lost == []
    by_urn = {r["urn"]: r for r in before["resources"]}
    for urn in step.kept:
        key = lifecycle.object_key(by_urn[urn])
        assert key is not None and cluster.objects[key] == kept_before[key], f"{urn} lost its data"


def test_lowering_below_phase_1_is_refused_by_the_protected_cluster(indri_plan: PlanOf) -> None:
    at1, at0 = documents(indri_plan, "1", "0")
    with pytest.raises(lifecycle.LifecycleError, match="blumeops-pg"):
        lifecycle.Cluster.deployed(at1).apply(at0)


def test_down_to_1_and_up_again_keeps_grafanas_data(indri_plan: PlanOf) -> None:
    at3, at2, at1 = documents(indri_plan, "3", "2", "1")
    cluster = lifecycle.Cluster.deployed(at3)
    first = cluster.generation(GRAFANA_CLAIM)
    assert first is not None
    assert cluster.apply(at2).lost == []
    down = cluster.apply(at1)
    assert {r.rsplit("::", 1)[-1] for r in down.kept} == {"grafana-data", "grafana-namespace"}
    assert down.lost == [] and cluster.generation(GRAFANA_CLAIM) == first, "the claim stays, with its data"
    assert not any(urn.endswith("::grafana-data") for urn in cluster.state), "no longer in the stack's state"
    up = cluster.apply(at2)
    assert {r.rsplit("::", 1)[-1] for r in up.adopted} == {"grafana-data", "grafana-namespace"}
    assert cluster.generation(GRAFANA_CLAIM) == first and cluster.generation(GRAFANA_NAMESPACE) is not None
    again = cluster.apply(at1)
    assert again.lost == [] and cluster.apply(at2).adopted and cluster.generation(GRAFANA_CLAIM) == first


def _grafana_variant(document: dict[str, Any], name: str, **options: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    for resource in changed["resources"]:
        if resource["name"] == name:
            resource["options"].update(options)
    return changed


def test_the_model_fails_where_the_engine_would(indri_plan: PlanOf) -> None:
    """The same walk with the kept state wired wrong: each mistake stops it or loses the data."""
    at2, at1 = documents(indri_plan, "2", "1")
    plain = next(r["urn"] for r in at2["resources"] if r["name"] == "minikube")
    # protected: the rollback cannot even be previewed
    with pytest.raises(lifecycle.LifecycleError, match="refuses to delete protected"):
        lifecycle.Cluster.deployed(_grafana_variant(at2, "grafana-data", protect=True)).apply(at1)
    # the namespace not kept: the rollback deletes it, and the claim with it
    step = lifecycle.Cluster.deployed(_grafana_variant(at2, "grafana-namespace", retainOnDelete=False)).apply(at1)
    assert step.lost == ["PersistentVolumeClaim monitoring/grafana"]
    # kept on the plain provider: raising the target again meets the kept claim with AlreadyExists
    wrong = copy.deepcopy(at2)
    for resource in wrong["resources"]:
        if resource["name"] in ("grafana-data", "grafana-namespace"):
            resource["provider"] = plain
    cluster = lifecycle.Cluster.deployed(wrong)
    cluster.apply(at1)
    with pytest.raises(lifecycle.LifecycleError, match="AlreadyExists"):
        cluster.apply(wrong)
    assert len(lifecycle.kept_state_problems(wrong)) == 2
    assert any("Namespace monitoring" in p for p in
               lifecycle.kept_state_problems(_grafana_variant(at2, "grafana-namespace", retainOnDelete=False)))


def test_a_renamed_object_on_the_plain_provider_fails_and_on_the_kept_one_stays(indri_plan: PlanOf) -> None:
    """pulumi-kubernetes' reason for client-side create: a rename is create-then-delete of the same object."""
    at2 = indri_plan("2").document
    renamed = copy.deepcopy(at2)
    for resource in renamed["resources"]:
        if resource["name"] in ("grafana-admin", "grafana-data"):
            resource["urn"] += "-renamed"
    with pytest.raises(lifecycle.LifecycleError, match=r"AlreadyExists.*grafana-admin"):
        lifecycle.Cluster.deployed(at2).apply(renamed)
    only_claim = copy.deepcopy(renamed)
    for resource in only_claim["resources"]:
        if resource["name"] == "grafana-admin":
            resource["urn"] = resource["urn"].removesuffix("-renamed")
    cluster = lifecycle.Cluster.deployed(at2)
    first = cluster.generation(GRAFANA_CLAIM)
    step = cluster.apply(only_claim)
    assert step.lost == [] and cluster.generation(GRAFANA_CLAIM) == first


def _diff_cli(old: Path, new: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", "diff", str(old), str(new)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_ops_diff_lists_the_kept_state_and_passes(indri_plan: PlanOf, tmp_path: Path) -> None:
    paths = {}
    for target in ("1", "2", "3"):
        paths[target] = tmp_path / f"{target}.json"
        paths[target].write_text(json.dumps(indri_plan(target).document))
    down = _diff_cli(paths["2"], paths["1"])
    assert down.returncode == 0, down.stdout + down.stderr
    kept = [line for line in down.stdout.splitlines() if "[kept: stays in the cluster with its data]" in line]
    assert len(kept) == 2 and any("grafana-data" in line for line in kept)
    assert "(2 kept in the cluster)" in down.stdout
    assert _diff_cli(paths["3"], paths["2"]).returncode == 0
    up = _diff_cli(paths["1"], paths["2"])
    assert up.returncode == 0 and up.stdout.count("[kept state: takes back the object") == 2
    # and it fails where the data would go
    lossy = tmp_path / "lossy.json"
    lossy.write_text(json.dumps(_grafana_variant(indri_plan("2").document, "grafana-namespace",
                                                 retainOnDelete=False)))
    failed = _diff_cli(lossy, paths["1"])
    assert failed.returncode == 1 and "! data lost: PersistentVolumeClaim monitoring/grafana" in failed.stdout


def test_diff_safety_is_the_models(indri_plan: PlanOf) -> None:
    at2, at1 = documents(indri_plan, "2", "1")
    result = plan_diff.diff_plans(at2, at1)
    assert result.safe and len(result.kept) == 2 and not result.protected_removed
