"""Contract: every object phase 1 puts on the cluster is valid for the API server that receives it.

Custom resources validate against the upstream CRD schemas in ``../shared/crds`` (unknown fields
rejected wherever the schema does not preserve them, as the API server prunes or rejects them); core
objects validate with ``kubernetes-validate`` in strict mode (unknown fields are errors).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from phase_runner import CRDS, Run

from tests.charts.chart_tools import strict

KUBERNETES_VERSION = "1.35"  # minikube v1.38's default Kubernetes
CORE_KINDS = {"Namespace", "Secret", "Service", "Ingress", "ConfigMap", "ServiceAccount", "PersistentVolumeClaim"}
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are large: libyaml when available


@cache
def crd_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) -> strict openAPIV3Schema, from every CRD file in ../shared/crds."""
    schemas: dict[tuple[str, str, str], dict[str, Any]] = {}
    for path in sorted(Path(CRDS).glob("*.yaml")):
        for document in yaml.load_all(path.read_text(), Loader=LOADER):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            spec = document["spec"]
            for version in spec["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                schemas[(spec["group"], version["name"], spec["names"]["kind"])] = strict(schema)
    return schemas


def custom_resources(run: Run) -> list[dict[str, Any]]:
    return [r for r in run.kubernetes_objects() if r["inputs"].get("kind") not in CORE_KINDS
            and "helm.sh" not in r["type"]]


def manifest(resource: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server receives it (secret values opened: they are plain strings there)."""
    return dict(resource["revealed"])


def validate_custom_resource(obj: dict[str, Any]) -> None:
    group, version = obj["apiVersion"].split("/")
    schema = crd_schemas().get((group, version, obj["kind"]))
    assert schema is not None, f"no CRD for {obj['apiVersion']} {obj['kind']} in {CRDS}"
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(obj, schema, cls=jsonschema.Draft7Validator)


def test_the_crd_copies_are_there() -> None:
    kinds = {kind for (_, _, kind) in crd_schemas()}
    assert {"ProxyClass", "DNSConfig", "Cluster"} <= kinds


def test_phase1_registers_the_expected_custom_resources(phase1: Run) -> None:
    kinds = sorted(r["inputs"]["kind"] for r in custom_resources(phase1))
    assert kinds == ["Cluster", "DNSConfig", "ProxyClass"]


@pytest.mark.parametrize("variant", ["phase1", "phase1_created_client", "phase1_at_4"])
def test_every_custom_resource_matches_its_crd(variant: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(variant)
    resources = custom_resources(run)
    assert resources
    for resource in resources:
        validate_custom_resource(manifest(resource))


@pytest.mark.parametrize("variant", ["phase1", "phase1_created_client", "phase1_at_4"])
def test_every_core_object_is_valid_kubernetes(variant: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(variant)
    core = [r for r in run.kubernetes_objects() if r["inputs"].get("kind") in CORE_KINDS]
    assert {r["inputs"]["kind"] for r in core} == {"Namespace", "Secret", "Service", "Ingress"}
    for resource in core:
        kubernetes_validate.validate(manifest(resource), KUBERNETES_VERSION, strict=True)


# The validators must be able to fail: a typo or a misplaced field is caught.


def test_a_misspelled_proxy_class_field_is_rejected(phase1: Run) -> None:
    obj = copy.deepcopy(manifest(phase1.named("tailscale-operator-proxy-class")))
    pod = obj["spec"]["statefulSet"]["pod"]
    pod["tailscaleContainers"] = pod.pop("tailscaleContainer")
    with pytest.raises(jsonschema.ValidationError, match="tailscaleContainers"):
        validate_custom_resource(obj)


def test_a_cluster_with_a_wrongly_typed_field_is_rejected(phase1: Run) -> None:
    obj = copy.deepcopy(manifest(phase1.named("blumeops-pg-cluster")))
    obj["spec"]["instances"] = "1"
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(obj)
    obj = copy.deepcopy(manifest(phase1.named("blumeops-pg-cluster")))
    obj["spec"]["managed"]["roles"][0]["passwordSecret"]["key"] = "password"
    with pytest.raises(jsonschema.ValidationError, match="key"):
        validate_custom_resource(obj)


def test_an_unknown_service_field_is_rejected(phase1: Run) -> None:
    obj = copy.deepcopy(manifest(phase1.named("blumeops-pg-tailscale")))
    obj["spec"]["loadBalancerClas"] = "tailscale"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
