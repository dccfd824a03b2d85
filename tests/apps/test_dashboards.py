"""Dashboards as code: every query of a generated dashboard names a gauge the host's agents really write (their
scripts run on the fake machine, as the program renders them), a rename reaches both, and the homelab's own
dashboards load from a directory as ConfigMaps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components.apps import agent_dashboards, dashboards_from_directory, queried_metrics
from components.apps.dashboards import Dashboard
from components.apps.grafana import check_generated_dashboards
from components.host import metrics
from components.host.metrics import Gauge
from tests.apps.mock_run import run
from tests.host.conftest import Machine

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})? \S+$")


def written_gauges(machine: Machine) -> set[str]:
    """Run both metrics agents' scripts (as installed on the host) and read back what they wrote."""
    machine.run_text(machine.zot_args().metrics_script(), "agent")
    machine.run_text(machine.cluster_args().metrics_script(), "agent")
    names = set()
    for textfile in Path(machine.metrics().textfile_dir).glob("*.prom"):
        for line in textfile.read_text().splitlines():
            match = _SAMPLE.match(line)
            if match and not line.startswith("#"):
                names.add(match.group(1))
    return names


def test_every_generated_query_names_a_gauge_an_agent_writes(machine: Machine) -> None:
    written = written_gauges(machine)
    assert written == {"zot_up", "minikube_up", "minikube_apiserver_up", "minikube_node_count",
                       "minikube_pod_count", "minikube_namespace_count"}
    queried: set[str] = set()
    for dashboard in agent_dashboards():
        queries = list(dashboard.queries())
        assert queries, f"{dashboard.slug} has no queries"
        for expr in queries:
            names = queried_metrics(expr)
            assert names and names <= written, (dashboard.slug, expr)
            queried |= names
    assert queried == written, "every gauge an agent writes is on a dashboard"


def test_a_renamed_gauge_reaches_the_agent_and_the_dashboard_together(machine: Machine,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    renamed = Gauge("zot_registry_up", metrics.ZOT_UP.meaning, metrics.ZOT_UP.unit)
    monkeypatch.setitem(metrics.ZOT_GAUGES, "METRIC_UP", renamed)
    written = written_gauges(machine)
    assert "zot_registry_up" in written and "zot_up" not in written
    zot = next(d for d in agent_dashboards() if d.slug == "zot")
    assert {name for expr in zot.queries() for name in queried_metrics(expr)} == {"zot_registry_up"}


def test_a_generated_dashboard_querying_an_unwritten_metric_is_refused() -> None:
    stale = Dashboard("zot", {"title": "zot", "panels": [{"targets": [{"expr": "max(zot_healthy)"}]}]}, "generated")
    with pytest.raises(ValueError, match=r"queries \['zot_healthy'\], which no agent writes"):
        check_generated_dashboards([stale])
    check_generated_dashboards(agent_dashboards())


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("max(zot_up)", {"zot_up"}),
        ("minikube_pod_count", {"minikube_pod_count"}),
        ('sum by (job) (rate(http_requests_total{job="zot", code=~"5.."}[5m]))', {"http_requests_total"}),
        ("minikube_up == 0 and on(instance) minikube_apiserver_up", {"minikube_up", "minikube_apiserver_up"}),
        ("avg_over_time(zot_up[1h] offset 1d) * 100", {"zot_up"}),
        ("histogram_quantile(0.9, sum without (le) (x_bucket))", {"x_bucket"}),
    ],
)
def test_queried_metrics_reads_promql(expr: str, names: set[str]) -> None:
    assert queried_metrics(expr) == names


def test_generated_dashboards_are_grafana_json_with_ids_and_the_prometheus_datasource() -> None:
    for dashboard in agent_dashboards():
        document = json.loads(dashboard.text)
        assert document["uid"] == f"blumeops-{dashboard.slug}" and document["title"]
        ids = [panel["id"] for panel in document["panels"]]
        assert len(ids) == len(set(ids))
        for panel in document["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            assert {"h", "w", "x", "y"} <= set(panel["gridPos"])


# ---- the homelab's own dashboards, from a directory ---------------------------------------------------------


def write_dashboard(directory: Path, name: str, title: str = "Borgmatic") -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(json.dumps({"title": title, "panels": []}))


def test_a_directory_of_dashboards_becomes_configmaps(tmp_path: Path) -> None:
    directory = tmp_path / "dashboards"
    write_dashboard(directory, "borgmatic.json")
    write_dashboard(directory, "Plex.json", "Plex")
    (directory / "notes.txt").write_text("not a dashboard")
    mocked = run(tmp_path, "grafana", dashboards_dir=str(directory))
    maps = {r["inputs"]["metadata"]["name"]: r["inputs"] for r in mocked.of_type("kubernetes:core/v1:ConfigMap")}
    assert sorted(maps) == ["grafana-dashboard-borgmatic", "grafana-dashboard-minikube", "grafana-dashboard-plex",
                            "grafana-dashboard-zot"]
    borgmatic = maps["grafana-dashboard-borgmatic"]
    assert borgmatic["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert borgmatic["metadata"]["namespace"] == "monitoring"
    assert json.loads(borgmatic["data"]["borgmatic.json"]) == {"title": "Borgmatic", "panels": []}


def test_bad_dashboard_files_are_all_named_in_one_error(tmp_path: Path) -> None:
    directory = tmp_path / "dashboards"
    directory.mkdir()
    (directory / "broken.json").write_text("{ not json")
    (directory / "list.json").write_text("[]")
    (directory / "untitled.json").write_text("{}")
    (directory / "bad_name.json").write_text('{"title": "x"}')
    with pytest.raises(ValueError) as caught:
        dashboards_from_directory(str(directory))
    message = str(caught.value)
    for problem in ("broken.json: not JSON", "list.json: not a dashboard", "untitled.json: it has no title",
                    "'bad_name' is not a short lower-case name"):
        assert problem in message


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        dashboards_from_directory(str(tmp_path / "nowhere"))


def test_a_file_named_like_a_generated_dashboard_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "dashboards"
    write_dashboard(directory, "zot.json", "zot, by hand")
    from components.apps import GrafanaArgs

    args = GrafanaArgs(provider=object(), kept=object(), proxy_class=object(),  # type: ignore[arg-type]
                       tailnet="tail8d86e.ts.net",
                       admin_user=object(), admin_password=object(),  # type: ignore[arg-type]
                       dashboards_dir=str(directory))
    with pytest.raises(ValueError, match="two dashboards are named zot"):
        args.dashboards()
