"""``blumeops:adopt``: with the adoption document set, the plan imports what the document lists (the ``import``
option, with the provider's ID), the Kubernetes provider takes chart objects over, and nothing protected that
the homelab already holds is created; a document that is not right is refused before anything registers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops import adopt
from ops import plan as offline_plan
from ops.engine import harness
from ops.stack import ROOT, load_stack

PlanOf = Callable[[str | None], offline_plan.Plan]
NODES = {"indri": "nIndri1CNTRL", "sifaka": "nSifaka2CNTRL"}


@pytest.fixture
def document_path() -> Iterator[str]:
    relative = f"build/tests/adopt-{uuid.uuid4().hex[:12]}.json"
    (ROOT / relative).parent.mkdir(parents=True, exist_ok=True)
    yield relative
    (ROOT / relative).unlink(missing_ok=True)


def plan_adopting(relative: str, text: str, target: str = "6") -> offline_plan.Plan:
    (ROOT / relative).write_text(text)
    stack = load_stack("indri", target)
    stack.config["blumeops:adopt"] = relative
    return offline_plan.build_plan(stack, charts_required=False, try_pull=False)


def test_the_plan_imports_what_the_document_lists_and_creates_no_protected_state(
        indri_plan: PlanOf, document_path: str) -> None:
    adoption = adopt.build_adoption(indri_plan("6").document, "6", NODES)
    plan = plan_adopting(document_path, json.dumps(adoption.document()))
    listed = {(entry["type"], entry["name"]): entry["id"] for entry in adoption.imports}
    imported = {(r["type"], r["name"]): r["options"]["import"] for r in plan.resources if r["options"]["import"]}
    assert imported == listed
    for resource in plan.resources:
        kept = resource["options"]["protect"] or resource["options"]["retainOnDelete"]
        if kept and resource["custom"] and resource["type"].startswith(("kubernetes:core", "kubernetes:postgresql")):
            # protected state the homelab holds is imported, never created (chart CRDs: applied by the chart)
            assert resource["options"]["import"], f"{resource['name']} would be created"
    providers = {r["name"]: r["inputs"] for r in plan.resources if r["type"] == "pulumi:providers:kubernetes"}
    assert providers and all(inputs.get("upsertExistingObjects") == "true" for inputs in providers.values())
    assert any("[import databases/blumeops-pg]" in line for line in offline_plan.tree_lines(plan))


def test_without_the_setting_nothing_is_imported_and_the_provider_does_not_upsert(indri_plan: PlanOf) -> None:
    plan = indri_plan("6")
    assert not [r["name"] for r in plan.resources if r["options"]["import"]]
    minikube = next(r for r in plan.resources if r["name"] == "minikube")
    assert "upsertExistingObjects" not in minikube["inputs"]


@pytest.mark.parametrize("text, message", [
    ("not json", "is not JSON"),
    ('{"nameTable": {}}', "has no \"resources\" list"),
    ('{"resources": [{"type": "kubernetes:core/v1:Namespace", "name": "x"}]}', "needs the strings type, name and id"),
    ('{"resources": [{"type": "tailscale:index/service:Service", "name": "x", "id": "registry"}]}',
     "does not have the form"),
    ('{"resources": [{"type": "command:remote:Command", "name": "x", "id": "y"}]}', "does not import"),
])
def test_a_document_that_is_not_right_is_refused_before_anything_registers(
        document_path: str, text: str, message: str) -> None:
    with pytest.raises(harness.ProgramError) as raised:
        plan_adopting(document_path, text)
    assert raised.value.registered == 0
    assert "blumeops:adopt" in str(raised.value) and message in str(raised.value)
    assert "write it again with `python -m ops adopt" in str(raised.value)


def test_a_path_outside_the_project_or_missing_is_refused(document_path: str) -> None:
    stack = load_stack("indri", "6")
    for value, message in (("/etc/passwd", "relative to the project"), ("../x.json", "relative to the project"),
                           ("adopt/missing.json", "cannot read adopt/missing.json")):
        stack.config["blumeops:adopt"] = value
        with pytest.raises(harness.ProgramError, match=message) as raised:
            offline_plan.build_plan(stack, charts_required=False, try_pull=False)
        assert raised.value.registered == 0


def test_a_document_for_another_program_is_named_after_registration(document_path: str) -> None:
    entry = {"type": "kubernetes:core/v1:Namespace", "name": "teslamate-namespace", "id": "teslamate"}
    with pytest.raises(harness.ProgramError,
                       match=r"does not register at target 6: kubernetes:core/v1:Namespace teslamate-namespace"):
        plan_adopting(document_path, json.dumps({"resources": [entry]}))


def test_the_document_path_is_checked_like_a_path(tmp_path: Path) -> None:
    from phases import adoption
    from phases.parsers import InvalidValueError

    for bad in ("", "adopt/indri.yaml", "adopt/../../x.json", "-x.json", "adopt/a b.json"):
        with pytest.raises(InvalidValueError):
            adoption.adoption_document(bad)


def test_the_cluster_providers_are_replaced_only_when_the_cluster_is_another(indri_plan: PlanOf) -> None:
    """The providers' kubeconfig is a host step's output, unknown in a preview whenever that step changes (its
    script shares lib.sh with every step): pulumi-kubernetes would replace the providers, and every object of the
    cluster with them. Their clusterIdentifier (the profile and driver on indri) decides instead."""
    identities = set()
    for target in ("1", "9"):
        providers = [r for r in indri_plan(target).resources if r["type"] == "pulumi:providers:kubernetes"]
        assert {r["name"] for r in providers} == {"minikube", "minikube-kept"}
        identities |= {r["inputs"].get("clusterIdentifier") for r in providers}
    assert identities == {"minikube/minikube/docker@indri"}
