"""The chart cache and its lock: a chart whose files differ from the lock is refused, a missing one is named
with the command that fetches it, and an unchanged re-plan renders nothing again."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from chart_tools import SHARED_CHARTS

from ops import charts
from ops import plan as offline_plan
from ops.engine import charts_render, helm

TAILSCALE = {"chart": "tailscale-operator", "version": "1.102.3", "repo": "https://pkgs.tailscale.com/helmcharts",
             "namespace": "tailscale", "resource_name": "operator", "name": "tailscale-operator"}


def test_the_lock_pins_every_chart_and_the_reference_copies_match_it() -> None:
    lock = charts.read_lock()
    assert {c.label for c in lock.charts} == {
        "tailscale-operator 1.102.3", "argo-cd 10.1.1", "cloudnative-pg 0.29.0", "grafana 12.11.1",
        "forgejo 15.0.3", "woodpecker 3.6.5"}
    for chart in lock.charts:
        assert charts.locate(chart, [SHARED_CHARTS]) == SHARED_CHARTS / chart.directory
        shipped = helm.load(SHARED_CHARTS / chart.directory).app_version
        assert shipped.lstrip("v") == (chart.app_version or "").lstrip("v"), chart.label


def test_a_chart_whose_files_do_not_match_the_lock_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               chart_plan: Any) -> None:
    shutil.copytree(SHARED_CHARTS / "tailscale-operator-1.102.3", tmp_path / "tailscale-operator-1.102.3")
    values = tmp_path / "tailscale-operator-1.102.3" / "values.yaml"
    values.write_text(values.read_text().replace("tailscale/k8s-operator", "example/k8s-operator"))
    monkeypatch.setenv(charts.CACHE_ENV, str(tmp_path))
    with pytest.raises(charts.ChartError, match=re.escape("does not match charts.lock.yaml")) as caught:
        chart_plan(TAILSCALE)
    assert f"{charts.PULL_COMMAND} --chart tailscale-operator" in str(caught.value)


def test_a_missing_chart_names_the_command_that_fetches_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           chart_plan: Any) -> None:
    monkeypatch.setenv(charts.CACHE_ENV, str(tmp_path / "empty"))
    missing = re.escape("tailscale-operator 1.102.3 is not in the chart cache")
    with pytest.raises(charts.ChartError, match=missing) as caught:
        chart_plan(TAILSCALE)
    assert charts.PULL_COMMAND in str(caught.value)
    # Not required (make plan on a fresh clone): the plan completes and says which chart and why.
    plan = chart_plan(TAILSCALE, charts_required=False, try_pull=False)
    (chart_urn,) = plan.unrendered
    assert charts.PULL_COMMAND in plan.unrendered[chart_urn]
    assert [r for r in plan.resources if r["parent"] == chart_urn] == []
    assert "    (not rendered: chart tailscale-operator 1.102.3, see below)" in offline_plan.tree_lines(plan)


def test_a_chart_the_lock_does_not_pin_is_refused(chart_plan: Any) -> None:
    unpinned = re.escape("tailscale-operator 1.90.0 is not pinned in charts.lock.yaml")
    with pytest.raises(charts.ChartError, match=unpinned):
        chart_plan({**TAILSCALE, "version": "1.90.0"})
    with pytest.raises(charts.ChartError, match=re.escape("pins it from 'https://pkgs.tailscale.com/helmcharts'")):
        chart_plan({**TAILSCALE, "repo": "https://example.com/charts"})


def test_a_malformed_lock_is_a_clear_error(tmp_path: Path) -> None:
    lock = tmp_path / "charts.lock.yaml"
    lock.write_text("charts:\n- name: x\n  version: '1'\n  repository: ftp://x\n  directory: x\n  digest: sha256:0\n")
    with pytest.raises(charts.ChartError, match=re.escape("must be https://... or oci://")):
        charts.read_lock(lock)
    lock.write_text("charts:\n- name: x\n  version: '1'\n")
    with pytest.raises(charts.ChartError, match="missing repository, directory, digest"):
        charts.read_lock(lock)


def test_an_unchanged_chart_is_rendered_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_render = helm.render

    def counting(directory: Path, values: dict[str, Any], release: str, namespace: str) -> dict[str, str]:
        calls.append(release)
        return real_render(directory, values, release, namespace)

    monkeypatch.setattr(helm, "render", counting)
    entry = charts.read_lock().find("tailscale-operator", "1.102.3")
    assert entry is not None
    inputs = charts_render.ChartInputs(urn="u", resource_name="operator", chart="tailscale-operator",
                                       version="1.102.3", repository=entry.repository, release="tailscale-operator",
                                       namespace="tailscale", values={"installCRDs": True}, skip_crds=False,
                                       prefix="operator")
    directory = SHARED_CHARTS / entry.directory
    first = charts_render.render_chart(inputs, entry, directory, tmp_path)
    again = charts_render.render_chart(inputs, entry, directory, tmp_path)
    assert first == again and calls == ["tailscale-operator"]
    other = charts_render.ChartInputs(**{**{f: getattr(inputs, f) for f in inputs.__slots__},  # type: ignore[attr-defined]
                                         "values": {"installCRDs": False}})
    fewer = charts_render.render_chart(other, entry, directory, tmp_path)
    assert calls == ["tailscale-operator", "tailscale-operator"]
    assert len(fewer) < len(first)


def test_without_charts_required_a_missing_chart_is_pulled_then_rendered(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chart_plan: Any) -> None:
    """What make plan does on a fresh clone: pull what is missing into the cache, render it."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(charts.CACHE_ENV, str(cache))
    pulled: list[str] = []

    def fake_pull(chart: charts.LockedChart, into: Path, **_options: Any) -> charts.LockedChart:
        # stands in for the network only: the repository's chart is the reference copy
        pulled.append(chart.name)
        shutil.copytree(SHARED_CHARTS / chart.directory, into / chart.directory)
        return chart

    monkeypatch.setattr(charts, "pull", fake_pull)
    plan = chart_plan(TAILSCALE, charts_required=False)
    assert pulled == ["tailscale-operator"] and plan.unrendered == {}
    assert any(r["parent"] for r in plan.resources if r["custom"])

    def offline(chart: charts.LockedChart, into: Path, **_options: Any) -> charts.LockedChart:
        raise charts.ChartError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(charts, "pull", offline)
    monkeypatch.setenv(charts.CACHE_ENV, str(tmp_path / "other"))
    plan = chart_plan(TAILSCALE, charts_required=False)
    (reason,) = plan.unrendered.values()
    assert "pulling it failed: <urlopen error" in reason


def test_ops_plan_require_charts_makes_a_missing_chart_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from ops import __main__ as cli

    monkeypatch.setenv(charts.CACHE_ENV, str(tmp_path / "empty"))
    monkeypatch.delenv(charts.REQUIRED_ENV, raising=False)
    monkeypatch.setattr(cli.offline_plan, "write_artifacts", lambda plan, directory: None)
    assert cli.main(["plan", "--stack", "indri", "--phase", "1", "--require-charts"]) == 1
    err = capsys.readouterr().err
    assert "is not in the chart cache" in err and charts.PULL_COMMAND in err
