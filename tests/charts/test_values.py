"""Every values key the program sets exists in the chart (Helm silently ignores a misspelt one)."""

from __future__ import annotations

from typing import Any

import pytest
from chart_tools import locked_directory

from ops import charts
from ops.engine import charts_render, helm

TAILSCALE = {"chart": "tailscale-operator", "version": "1.102.3", "repo": "https://pkgs.tailscale.com/helmcharts",
             "namespace": "tailscale", "resource_name": "operator", "name": "tailscale-operator"}


def test_a_misspelt_key_fails_the_plan_with_its_path_and_the_chart(chart_plan: Any) -> None:
    values = {"operatorConfig": {"image": {"repo": "docker.io/tailscale/k8s-operator"}}, "installCRD": True}
    with pytest.raises(charts_render.ChartValuesError) as caught:
        chart_plan({**TAILSCALE, "values": values})
    message = str(caught.value)
    assert "operatorConfig.image.repo" in message and "installCRD" in message
    assert "tailscale-operator 1.102.3" in message


def test_open_maps_free_form_paths_and_the_schema_are_respected() -> None:
    known = {"operatorConfig": {"image": {"repository": "x", "tag": ""}, "podAnnotations": {}},
             "configs": {"params": {"create": True}}}
    given = {"operatorConfig": {"image": {"repo": "y"}, "podAnnotations": {"anything": "goes"}},
             "configs": {"params": {"server.insecure": True}}, "extra": {"x": 1}, "fromSchema": {"on": True}}
    schema = {"properties": {"fromSchema": {"type": "object", "properties": {"on": {"type": "boolean"}}}}}
    assert charts_render.unknown_value_paths(given, known) == [
        "operatorConfig.image.repo", "configs.params.server.insecure", "extra", "fromSchema"]
    assert charts_render.unknown_value_paths(given, known, ("configs.params",), schema) == [
        "operatorConfig.image.repo", "extra"]


def test_subchart_values_are_checked_under_their_key() -> None:
    directory = locked_directory("woodpecker", "3.6.5")
    known = charts_render.known_values(helm.load(directory), directory)
    assert charts_render.unknown_value_paths({"server": {"image": {"tag": "v3.16.0"}}}, known) == []
    assert charts_render.unknown_value_paths({"agent": {"imagee": {}}}, known) == ["agent.imagee"]


def test_a_value_the_schema_refuses_fails_with_helms_message(chart_plan: Any) -> None:
    cnpg = {"chart": "cloudnative-pg", "version": "0.29.0", "repo": "https://cloudnative-pg.github.io/charts",
            "namespace": "cnpg-system", "resource_name": "cnpg", "name": "cloudnative-pg"}
    with pytest.raises(charts.ChartError, match="replicaCount"):
        chart_plan({**cnpg, "values": {"replicaCount": "two"}})


@pytest.mark.parametrize("entry", charts.read_lock().charts, ids=lambda c: c.label)
def test_every_free_form_path_is_a_map_of_the_chart(entry: charts.LockedChart) -> None:
    directory = locked_directory(entry.name, entry.version)
    known = charts_render.known_values(helm.load(directory), directory)
    for path in entry.free_form:
        node = lookup(known, path)
        assert isinstance(node, dict), f"{entry.label}: freeForm {path} is not a map in values.yaml"


@pytest.mark.parametrize("entry", [c for c in charts.read_lock().charts if c.documented], ids=lambda c: c.label)
def test_every_documented_key_is_a_comment_of_values_yaml_and_read_by_a_template(entry: charts.LockedChart) -> None:
    import re

    directory = locked_directory(entry.name, entry.version)
    values_text = (directory / "values.yaml").read_text()
    templates = "\n".join(p.read_text() for p in (directory / "templates").rglob("*") if p.is_file())
    for path in entry.documented:
        leaf = path.rsplit(".", 1)[-1]
        assert re.search(rf"^\s*#\s*{re.escape(leaf)}:", values_text, re.M), f"{path}: no '# {leaf}:' comment"
        assert f".Values.{path}" in templates, f"{path}: no template reads .Values.{path}"
        assert lookup(charts_render.known_values(helm.load(directory), directory), path) is None, \
            f"{path} is in values.yaml itself: it needs no entry under documented"


def lookup(node: Any, path: str) -> Any:
    """The value at a dotted path whose keys may hold dots themselves (grafana's `grafana.ini`)."""
    if not isinstance(node, dict):
        return None
    if path in node:
        return node[path]
    for index, char in enumerate(path):
        if char == "." and path[:index] in node:
            found = lookup(node[path[:index]], path[index + 1:])
            if found is not None:
                return found
    return None
