"""`ops diff` sees a chart's rendered objects: changing the program's values changes exactly the objects
whose Helm rendering changes, and nothing else."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from chart_tools import CHART_TYPE, chart_resources, helm_objects

from ops import __main__ as cli
from ops import diff as plan_diff
from ops import plan as offline_plan

ARGO = {"chart": "argo-cd", "version": "10.1.1", "repo": "https://argoproj.github.io/argo-helm",
        "namespace": "argocd", "resource_name": "argocd-chart", "name": "argocd"}


@pytest.fixture(scope="module")
def argocd_values(phase1_plan: offline_plan.Plan) -> dict[str, Any]:
    (chart,) = [c for c in chart_resources(phase1_plan) if c["inputs"]["chart"] == "argo-cd"]
    values: dict[str, Any] = chart["inputs"]["values"]
    return values


def helm_rendering(values: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(kind, name) -> the object's JSON, as Helm renders argo-cd (hooks are not applied by the Chart)."""
    return {(o["kind"], o["metadata"]["name"]): json.dumps(o, sort_keys=True)
            for o in helm_objects("argo-cd", "10.1.1", values, "argocd", "argocd")
            if "helm.sh/hook" not in ((o.get("metadata") or {}).get("annotations") or {})}


def keyed(plan: offline_plan.Plan, urns: list[str]) -> set[tuple[str, str]]:
    by_urn = {r["urn"]: r for r in plan.resources}
    return {(by_urn[u]["inputs"]["kind"], by_urn[u]["inputs"]["metadata"]["name"]) for u in urns}


def test_removing_a_value_changes_exactly_what_helm_renders_differently(chart_plan: Any,
                                                                       argocd_values: dict[str, Any]) -> None:
    without = copy.deepcopy(argocd_values)
    del without["configs"]["params"]["server.insecure"]
    before, after = chart_plan({**ARGO, "values": argocd_values}), chart_plan({**ARGO, "values": without})
    result = plan_diff.diff_plans(before.document, after.document)
    old, new = helm_rendering(argocd_values), helm_rendering(without)
    expected = {key for key in old if key in new and old[key] != new[key]}
    assert ("ConfigMap", "argocd-cmd-params-cm") in expected  # the value lands there, and in checksums
    chart_urns = {c["urn"] for c in chart_resources(before)}
    assert chart_urns <= set(result.changed)  # the Chart's own values changed
    assert keyed(before, [u for u in result.changed if u not in chart_urns]) == expected
    assert result.added == [] and result.removed == []


def test_turning_a_component_off_removes_exactly_its_objects(chart_plan: Any, argocd_values: dict[str, Any],
                                                             tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    without_dex = {**copy.deepcopy(argocd_values), "dex": {"enabled": False}}
    before, after = chart_plan({**ARGO, "values": argocd_values}), chart_plan({**ARGO, "values": without_dex})
    result = plan_diff.diff_plans(before.document, after.document)
    old, new = helm_rendering(argocd_values), helm_rendering(without_dex)
    assert keyed(before, result.removed) == set(old) - set(new)
    assert any(name == "argocd-dex-server" for _, name in keyed(before, result.removed))
    assert result.added == []
    # and the command says so, one line per removed object
    (tmp_path / "old.json").write_text(before.text())
    (tmp_path / "new.json").write_text(after.text())
    assert cli.main(["diff", str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 0
    out = capsys.readouterr().out
    assert "argocd-chart:argocd/argocd-dex-server" in out
    assert all(r["type"] != CHART_TYPE for r in before.resources if r["urn"] in result.removed)
