"""What the charts render is valid for the API server: core objects with kubernetes-validate (strict, unknown
fields are errors); custom resources (the charts' and the program's) against the CRDs the charts ship; and
those CRDs agree with the upstream copies in ../shared/crds."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from chart_tools import REPO, chart_resources, children, strict

from ops import plan as offline_plan
from ops.engine import charts_render

KUBERNETES_VERSION = "1.35"  # minikube v1.38's default Kubernetes
SHARED_CRDS = REPO.parent / "shared" / "crds"


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads (json.load) the kind's schema and its 1.5 MB _definitions.json again for every
    object it validates: 2.9 s of the 168 objects at target 9. Read once here; the schemas are not changed by
    validation (jsonschema and referencing only read them)."""
    from kubernetes_validate import utils

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(utils, "schema_contents", cache(utils.schema_contents))
        yield


def crd_versions(crd: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    spec = crd["spec"]
    return {(spec["group"], version["name"], spec["names"]["kind"]): version["schema"]["openAPIV3Schema"]
            for version in spec["versions"]}


def chart_crds(plan: offline_plan.Plan) -> dict[tuple[str, str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
    for resource in plan.resources:
        if resource["type"] == "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition":
            schemas.update(crd_versions(resource["inputs"]))
    return schemas


@cache
def shared_crds() -> dict[tuple[str, str, str], dict[str, Any]]:
    schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted(Path(SHARED_CRDS).glob("*.yaml")):
        for document in yaml.load_all(path.read_text(), Loader=charts_render.LOADER):
            if document and document.get("kind") == "CustomResourceDefinition":
                schemas.update(crd_versions(document))
    return schemas


def rendered(plan: offline_plan.Plan) -> list[dict[str, Any]]:
    return [c for chart in chart_resources(plan) for c in children(plan, chart["urn"])]


def is_core(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0] if "/" in obj["apiVersion"] else ""
    return group in charts_render.BUILT_IN_GROUPS or group.endswith(".k8s.io")


def opened(resource: dict[str, Any], plan: offline_plan.Plan) -> dict[str, Any]:
    """The object as the API server receives it: a Secret's data is a plain map there."""
    assert plan.run is not None
    record = next(r for r in plan.run.registrations if r.urn == resource["urn"])
    obj = copy.deepcopy(record.wire_inputs)
    for key in ("data", "stringData"):
        if isinstance(obj.get(key), dict) and "value" in obj[key]:
            obj[key] = obj[key]["value"]
    return obj


def test_every_rendered_core_object_is_valid_kubernetes(phase1_plan: offline_plan.Plan) -> None:
    core = [r for r in rendered(phase1_plan) if is_core(r["inputs"])]
    assert {"Deployment", "Service", "ClusterRole", "CustomResourceDefinition"} <= {r["inputs"]["kind"] for r in core}
    for resource in core:
        kubernetes_validate.validate(opened(resource, phase1_plan), KUBERNETES_VERSION, strict=True)


def test_every_custom_resource_matches_a_crd_the_charts_ship(phase1_plan: offline_plan.Plan) -> None:
    schemas = chart_crds(phase1_plan)
    custom = [r for r in phase1_plan.resources if r["custom"] and r["type"].startswith("kubernetes:")
              and r["type"] != charts_render.CHART_TYPE and "inputs" in r and "kind" in r["inputs"]
              and not is_core(r["inputs"])]
    assert {"ProxyClass", "DNSConfig", "Cluster"} <= {r["inputs"]["kind"] for r in custom}
    for resource in custom:
        obj = opened(resource, phase1_plan)
        group, version = obj["apiVersion"].split("/")
        schema = schemas.get((group, version, obj["kind"]))
        assert schema is not None, f"no chart ships a CRD for {obj['apiVersion']} {obj['kind']}"
        jsonschema.validate(obj, strict(schema), cls=jsonschema.Draft7Validator)


def test_the_charts_crds_agree_with_the_upstream_copies(phase1_plan: offline_plan.Plan) -> None:
    shipped, upstream = chart_crds(phase1_plan), shared_crds()
    common = set(shipped) & set(upstream)
    assert {k for (_, _, k) in common} >= {"ProxyClass", "DNSConfig", "Cluster", "Application", "AppProject"}
    different = sorted(f"{g}/{v} {k}" for (g, v, k) in common if shipped[(g, v, k)] != upstream[(g, v, k)])
    assert different == []


def test_the_validators_can_fail(phase1_plan: offline_plan.Plan) -> None:
    deployment = next(r for r in rendered(phase1_plan) if r["inputs"]["kind"] == "Deployment")
    obj = opened(deployment, phase1_plan)
    obj["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    schema = chart_crds(phase1_plan)[("tailscale.com", "v1alpha1", "ProxyClass")]
    with pytest.raises(jsonschema.ValidationError, match="tailscaleContainers"):
        jsonschema.validate({"apiVersion": "tailscale.com/v1alpha1", "kind": "ProxyClass", "metadata": {"name": "x"},
                             "spec": {"statefulSet": {"pod": {"tailscaleContainers": {}}}}}, strict(schema))


def test_every_core_object_at_the_highest_implemented_target_is_valid_kubernetes(indri_plan: Any) -> None:
    """Grafana's chart and the objects of phases 2 and 3 as well: every core object of the plan, rendered by a
    chart or registered by the program, validates strictly."""
    from phases import last_implemented

    plan = indri_plan(last_implemented())  # the session's plan (tests/conftest.py: charts required)
    core = [r for r in plan.resources if r["custom"] and r["type"].startswith("kubernetes:")
            and r["type"] != charts_render.CHART_TYPE and "kind" in r["inputs"] and is_core(r["inputs"])]
    grafana = [r for r in core if "grafana" in r["name"]]
    assert {"Deployment", "Service", "Ingress", "PersistentVolumeClaim", "Secret", "ConfigMap"} <= \
        {r["inputs"]["kind"] for r in grafana}
    for resource in core:
        kubernetes_validate.validate(opened(resource, plan), KUBERNETES_VERSION, strict=True)
