"""The values the program gives a chart are keys that chart has (a misspelt key is silently ignored by Helm).

Checked against the pinned chart's own values.yaml where a copy is at hand (../shared/charts).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops import plan as offline_plan
from ops.stack import load_stack

CHARTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "charts"

# Keys whose upstream default is an empty map ({}) are open: any sub-key is the chart's to accept.
def value_paths(values: Any, upstream: Any, prefix: str = "") -> Iterator[str]:
    """Paths in ``values`` that the upstream values do not have (open maps excepted)."""
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if not isinstance(upstream, dict) or key not in upstream:
            yield path
            continue
        below = upstream[key]
        if isinstance(below, dict) and below:
            yield from value_paths(value, below, path)


@pytest.fixture(scope="module")
def charts() -> dict[str, dict[str, Any]]:
    plan = offline_plan.build_plan(load_stack("indri", "1"))
    return {r["inputs"]["chart"]: r["inputs"] for r in plan.resources if r["type"] == "kubernetes:helm.sh/v4:Chart"}


def test_tailscale_operator_values_exist_in_the_pinned_chart(charts) -> None:  # type: ignore[no-untyped-def]
    chart = charts["tailscale-operator"]
    upstream_file = CHARTS / f"tailscale-operator-{chart['version']}-values.yaml"
    assert upstream_file.is_file(), f"no upstream values for chart version {chart['version']}"
    upstream = yaml.safe_load(upstream_file.read_text())
    unknown = list(value_paths(chart["values"], upstream))
    assert not unknown, f"values the chart does not have: {unknown}"


def test_the_check_finds_a_misspelt_key() -> None:
    upstream = {"operatorConfig": {"image": {"repository": "x", "tag": ""}, "annotations": {}}}
    given = {"operatorConfig": {"image": {"repo": "y"}, "annotations": {"anything": "goes"}}}
    assert list(value_paths(given, upstream)) == ["operatorConfig.image.repo"]
