"""The one door to Helm: render a chart directory offline, read its defaults, its schema and its CRDs.

Backed by ``helm-python-sdk`` (Helm's own Go SDK bound through ctypes, so the output is Helm's). The
package is young and has one maintainer: nothing else in the project imports it, so swapping it for
another binding (or the ``helm`` binary) means rewriting this module only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


class HelmError(Exception):
    """Helm refused the chart or the values (the message is Helm's own)."""


@dataclass(frozen=True, slots=True)
class LoadedChart:
    """What the project reads from a chart directory besides its rendering."""

    name: str
    version: str
    app_version: str
    values: dict[str, Any]  # the chart's own defaults (values.yaml)
    schema: dict[str, Any] | None  # values.schema.json
    crds: tuple[str, ...]  # the YAML text of every file under crds/ (chart and subcharts)
    aliases: dict[str, str]  # subchart name -> the key the parent's values address it by


def _sdk() -> Any:
    try:
        import helm_python
    except ImportError as err:  # pragma: no cover - the package is pinned in requirements.txt
        raise HelmError(f"helm-python-sdk is not installed ({err}); run `make plan` to install requirements") from None
    return helm_python


def load(directory: Path) -> LoadedChart:
    sdk = _sdk()
    try:
        with sdk.Chart.load(str(directory)) as chart:
            metadata = chart.metadata
            aliases = {str(d.get("name")): str(d.get("alias") or d.get("name"))
                       for d in metadata.get("dependencies") or []}
            return LoadedChart(
                name=str(metadata.get("name", "")),
                version=str(metadata.get("version", "")),
                app_version=str(metadata.get("appVersion") or metadata.get("app_version") or ""),
                values=chart.values,
                schema=chart.schema,
                crds=tuple(entry["data"] for entry in chart.crds),
                aliases=aliases,
            )
    except sdk.HelmError as err:
        raise HelmError(str(err)) from None


def subchart_values(directory: Path) -> dict[str, dict[str, Any]]:
    """Defaults of each subchart in ``charts/`` keyed as the parent's values address it."""
    sdk = _sdk()
    result: dict[str, dict[str, Any]] = {}
    charts = directory / "charts"
    if not charts.is_dir():
        return result
    for path in sorted(charts.iterdir()):
        if not (path.is_dir() and (path / "Chart.yaml").is_file()) and path.suffix != ".tgz":
            continue
        try:
            with sdk.Chart.load(str(path)) as sub:
                result[sub.name] = sub.values
        except sdk.HelmError as err:
            raise HelmError(f"{path}: {err}") from None
    return result


def validate_values(directory: Path, values: dict[str, Any]) -> None:
    """Helm's own check of ``values`` against the chart's values.schema.json (a no-op without one)."""
    sdk = _sdk()
    try:
        with sdk.Chart.load(str(directory)) as chart:
            chart.validate_schema(values)
    except sdk.HelmError as err:
        raise HelmError(str(err)) from None


def render(directory: Path, values: dict[str, Any], release: str, namespace: str) -> dict[str, str]:
    """``helm template`` of a first install: template path -> rendered text (NOTES.txt and hooks
    included; the caller drops what the deploying tool drops). CRDs under ``crds/`` are not in it:
    see ``LoadedChart.crds``."""
    sdk = _sdk()
    try:
        with sdk.Chart.load(str(directory)) as chart:
            rendered: dict[str, str] = chart.render(values, name=release, namespace=namespace, is_install=True)
            return rendered
    except sdk.HelmError as err:
        raise HelmError(str(err)) from None
