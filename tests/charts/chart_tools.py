"""Helpers of the chart tests: Helm's own renderings, the images of a pod spec, and small programs that
deploy charts (written to a temp dir and run under the mock engine like the real program)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# LOADER: libyaml's safe loader, the one the engine renders charts with (a chart's CRDs are hundreds of KB of YAML:
# seconds each in the pure-Python loader)
from ops import charts  # noqa: E402
from ops import plan as offline_plan  # noqa: E402
from ops.engine.charts_render import LOADER  # noqa: E402

SHARED_CHARTS = REPO.parent / "shared" / "charts"
CHART_TYPE = "kubernetes:helm.sh/v4:Chart"

CHART_PROGRAM = textwrap.dedent(
    """
    import json
    import pulumi
    import pulumi_kubernetes as k8s

    provider = k8s.Provider("minikube", kubeconfig="{{}}")
    for index, chart in enumerate(json.loads({charts!r})):
        args = dict(chart)
        resource_name = args.pop("resource_name")
        repo = args.pop("repo", None)
        k8s.helm.v4.Chart(
            resource_name,
            k8s.helm.v4.ChartArgs(
                repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=repo) if repo else None, **args),
            opts=pulumi.ResourceOptions(provider=provider),
        )
    """
)


def write_chart_program(directory: Path, charts_: list[dict[str, Any]]) -> Path:
    """A program that registers one v4 Chart per entry (keys: resource_name, chart, version, repo, name,
    namespace, values, resource_prefix, skip_crds), all on one explicit Kubernetes provider."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__main__.py").write_text(CHART_PROGRAM.format(charts=json.dumps(charts_)))
    return directory


def chart_resources(plan: offline_plan.Plan) -> list[dict[str, Any]]:
    return [r for r in plan.resources if r["type"] == CHART_TYPE]


def children(plan: offline_plan.Plan, chart_urn: str) -> list[dict[str, Any]]:
    return [r for r in plan.resources if r["parent"] == chart_urn]


def locked_directory(name: str, version: str) -> Path:
    entry = charts.read_lock().find(name, version)
    assert entry is not None, f"{name} {version} is not in charts.lock.yaml"
    return SHARED_CHARTS / entry.directory


def helm_objects(name: str, version: str, values: dict[str, Any], release: str, namespace: str) -> Iterator[
        dict[str, Any]]:
    """Helm's own rendering of a pinned chart (helm-python-sdk, straight), every object of every template
    but NOTES.txt, hooks included: what the test compares the plan against."""
    from helm_python import Chart

    with Chart.load(str(locked_directory(name, version))) as chart:
        rendered = chart.render(values, name=release, namespace=namespace, is_install=True)
        crds = [entry["data"] for entry in chart.crds]
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.load_all(text, Loader=LOADER):
            if document:
                yield document
    for text in crds:
        yield from (d for d in yaml.load_all(text, Loader=LOADER) if d)


POD_SPEC_PATHS = {
    "Pod": ("spec",), "Deployment": ("spec", "template", "spec"), "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_images(obj: dict[str, Any]) -> set[str]:
    path = POD_SPEC_PATHS.get(str(obj.get("kind")))
    if path is None:
        return set()
    spec: Any = obj
    for key in path:
        spec = (spec or {}).get(key)
    spec = spec or {}
    return {c["image"] for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or [] if c.get("image")}


PRESERVE = "x-kubernetes-preserve-unknown-fields"


def strict(schema: Any) -> Any:
    """additionalProperties: false wherever a schema lists properties and keeps no unknown fields (what
    structural pruning means for a manifest we write)."""
    if isinstance(schema, dict):
        result = {key: strict(value) for key, value in schema.items()}
        if "properties" in schema and not schema.get(PRESERVE) and "additionalProperties" not in schema:
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema
