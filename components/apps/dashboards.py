"""Grafana dashboards as code: the dashboards of what the program itself measures, generated from the gauges
the host's agents write (``components/host/metrics.py``, the same objects the agents' scripts get their names
from), and the homelab's other dashboards, read from a directory of JSON files.

Every dashboard becomes a ConfigMap labelled ``grafana_dashboard: "1"`` that Grafana's dashboards sidecar loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.host.metrics import MINIKUBE_GAUGES, ZOT_GAUGES, Gauge

PROMETHEUS_UID = "prometheus"  # the uid of the Prometheus datasource Grafana is provisioned with
SCHEMA_VERSION = 39
_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Dashboard:
    """One dashboard: ``slug`` names its ConfigMap (``grafana-dashboard-<slug>``) and file (``<slug>.json``)."""

    slug: str
    document: Mapping[str, Any]
    source: str  # where it comes from, for messages: "generated" or the file's path

    def __post_init__(self) -> None:
        if not _SLUG.match(self.slug) or len(self.slug) > 40:
            raise ValueError(f"dashboard {self.source}: {self.slug!r} is not a short lower-case name "
                             "(letters, digits, dashes; it names a ConfigMap)")
        title = self.document.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"dashboard {self.source}: it has no title (a Grafana dashboard JSON has one)")

    @property
    def file_name(self) -> str:
        return f"{self.slug}.json"

    @property
    def text(self) -> str:
        return json.dumps(self.document, indent=2, sort_keys=True) + "\n"

    def queries(self) -> Iterator[str]:
        """The PromQL expression of every target of every panel (rows' nested panels included)."""
        for panel in _panels(self.document.get("panels", [])):
            for target in panel.get("targets", []) or []:
                expr = target.get("expr") if isinstance(target, Mapping) else None
                if isinstance(expr, str):
                    yield expr


def _panels(panels: Sequence[Any]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        if isinstance(panel, Mapping):
            yield panel
            yield from _panels(panel.get("panels", []) or [])


# ---- which metrics a query reads --------------------------------------------------------------------------

_PROMQL_WORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\()?)")


def queried_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords, label names
    (in matchers and grouping clauses) or durations."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _GROUPING.sub("", text)
    text = _RANGE.sub("", text)
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?[smhdwy]?\b", " ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, call = match.group(0), match.group(1)
        if call or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


# ---- generated dashboards -----------------------------------------------------------------------------------


def _target(expr: str, legend: str) -> dict[str, Any]:
    return {"datasource": {"type": "prometheus", "uid": PROMETHEUS_UID}, "expr": expr, "legendFormat": legend,
            "refId": "A"}


def _stat(panel_id: int, gauge: Gauge, x: int, y: int) -> dict[str, Any]:
    mappings: list[dict[str, Any]] = []
    if gauge.unit == "bool_yes_no":
        mappings = [{"type": "value", "options": {"0": {"text": "down", "color": "red"},
                                                  "1": {"text": "up", "color": "green"}}}]
    return {
        "id": panel_id, "type": "stat", "title": gauge.meaning.capitalize(),
        "gridPos": {"h": 4, "w": 6, "x": x, "y": y},
        "datasource": {"type": "prometheus", "uid": PROMETHEUS_UID},
        "targets": [_target(f"max({gauge.name})", gauge.name)],
        "fieldConfig": {"defaults": {"unit": "none", "mappings": mappings}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "background" if mappings else "value", "graphMode": "none"},
    }


def _history(panel_id: int, gauges: Sequence[Gauge], title: str, y: int) -> dict[str, Any]:
    return {
        "id": panel_id, "type": "timeseries", "title": title,
        "gridPos": {"h": 8, "w": 24, "x": 0, "y": y},
        "datasource": {"type": "prometheus", "uid": PROMETHEUS_UID},
        "targets": [dict(_target(gauge.name, gauge.meaning), refId=chr(ord("A") + index))
                    for index, gauge in enumerate(gauges)],
        "fieldConfig": {"defaults": {"unit": "none"}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
    }


def gauge_dashboard(slug: str, title: str, gauges: Sequence[Gauge], description: str) -> Dashboard:
    """A dashboard of gauges: one stat per gauge (its latest value), then their history."""
    panels: list[dict[str, Any]] = []
    for index, gauge in enumerate(gauges):
        panels.append(_stat(index + 1, gauge, (index % 4) * 6, (index // 4) * 4))
    rows = (len(gauges) + 3) // 4
    panels.append(_history(len(gauges) + 1, gauges, "History", rows * 4))
    document = {
        "uid": f"blumeops-{slug}", "title": title, "description": description, "tags": ["blumeops", "generated"],
        "schemaVersion": SCHEMA_VERSION, "editable": False, "refresh": "1m", "time": {"from": "now-24h", "to": "now"},
        "timezone": "browser", "panels": panels,
    }
    return Dashboard(slug, document, "generated")


def agent_dashboards() -> tuple[Dashboard, ...]:
    """The dashboards of the host's metrics agents (zot_up; minikube's health and object counts)."""
    return (
        gauge_dashboard("zot", "zot registry", list(ZOT_GAUGES.values()),
                        "Written every minute by the zot metrics agent on the host (generated by blumeops)."),
        gauge_dashboard("minikube", "minikube", list(MINIKUBE_GAUGES.values()),
                        "Written every minute by the minikube metrics agent on the host (generated by blumeops)."),
    )


# ---- dashboards from a directory ------------------------------------------------------------------------------


def dashboards_from_directory(directory: str) -> tuple[Dashboard, ...]:
    """Every ``*.json`` in ``directory`` (not below it), as a dashboard named after its file. Raises one error
    naming every file that is not a dashboard."""
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"dashboards directory {directory} does not exist (or is not a directory)")
    found: list[Dashboard] = []
    problems: list[str] = []
    for file in sorted(path.glob("*.json")):
        try:
            document = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problems.append(f"{file}: not JSON ({err})")
            continue
        if not isinstance(document, dict):
            problems.append(f"{file}: not a dashboard (the JSON is not an object)")
            continue
        try:
            found.append(Dashboard(file.stem.lower(), document, str(file)))
        except ValueError as err:
            problems.append(str(err))
    if problems:
        raise ValueError("dashboards: " + "; ".join(problems))
    return tuple(found)
