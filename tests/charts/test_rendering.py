"""The plan shows what the v4 Chart really deploys: Helm's rendering, named and typed as the provider does."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from chart_tools import CHART_TYPE, chart_resources, children, helm_objects, pod_images

from ops import plan as offline_plan
from ops.engine import charts_render, harness

REPO_CATALOG = offline_plan.ROOT / "policy" / "images.yaml"


def test_every_chart_of_phase_1_is_rendered(phase1_plan: offline_plan.Plan) -> None:
    names = {r["inputs"]["chart"] for r in chart_resources(phase1_plan)}
    assert names == {"tailscale-operator", "argo-cd", "cloudnative-pg"}
    assert phase1_plan.unrendered == {}
    for chart in chart_resources(phase1_plan):
        assert len(children(phase1_plan, chart["urn"])) > 5, chart["name"]


@pytest.mark.slow  # runs the whole CLI (or Helm) again in a subprocess
def test_the_images_of_each_chart_are_those_of_helms_own_rendering(phase1_plan: offline_plan.Plan) -> None:
    catalog = yaml.safe_load(REPO_CATALOG.read_text())["images"]
    for chart in chart_resources(phase1_plan):
        inputs = chart["inputs"]
        helm_images: set[str] = set()
        for obj in helm_objects(inputs["chart"], inputs["version"], inputs["values"], inputs["name"],
                                inputs["namespace"]):
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            if "helm.sh/hook" not in annotations:  # the v4 Chart applies no hooks
                helm_images |= pod_images(obj)
        planned = set().union(*(pod_images(c["inputs"]) for c in children(phase1_plan, chart["urn"])))
        assert helm_images, inputs["chart"]
        assert planned == helm_images, inputs["chart"]
        for image in planned:
            reference = image if image.count("/") >= 2 else f"docker.io/{image}"
            assert reference in catalog, f"{inputs['chart']}: {image} is not in policy/images.yaml"
            assert "linux/arm64" in catalog[reference]["platforms"], image


def test_argo_cd_runs_the_pinned_images_not_the_chart_defaults(phase1_plan: offline_plan.Plan) -> None:
    (argocd,) = [c for c in chart_resources(phase1_plan) if c["inputs"]["chart"] == "argo-cd"]
    planned = set().union(*(pod_images(c["inputs"]) for c in children(phase1_plan, argocd["urn"])))
    assert planned == {"quay.io/argoproj/argocd:v3.4.4", "ghcr.io/dexidp/dex:v2.45.1",
                       "ecr-public.aws.com/docker/library/redis:8.2.3-alpine"}


def test_children_are_named_and_typed_as_the_provider_names_them(phase1_plan: offline_plan.Plan) -> None:
    by_urn = {r["urn"]: r for r in phase1_plan.resources}
    chart_urn = "urn:pulumi:indri::blumeops::blumeops:cluster:ArgoCD$kubernetes:helm.sh/v4:Chart::argocd-chart"
    chart = by_urn[chart_urn]
    prefix = "urn:pulumi:indri::blumeops::blumeops:cluster:ArgoCD$kubernetes:helm.sh/v4:Chart$"
    # namespaced: <chart resource name>:<namespace>/<name>; cluster-scoped: <chart resource name>:<name>
    server = by_urn[prefix + "kubernetes:apps/v1:Deployment::argocd-chart:argocd/argocd-server"]
    assert server["name"] == "argocd-chart:argocd/argocd-server"
    assert server["parent"] == chart_urn and server["custom"] is True
    assert server["provider"] == chart["provider"] is not None
    assert server["phase"] == "1"
    assert prefix + "kubernetes:core/v1:Service::argocd-chart:argocd/argocd-server" in by_urn
    assert prefix + "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole::argocd-chart:argocd-server" in by_urn
    crd = by_urn[prefix + "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition::"
                 "argocd-chart:applications.argoproj.io"]
    assert "namespace" not in crd["inputs"]["metadata"]
    # the release name and namespace the program gave
    assert server["inputs"]["metadata"]["labels"]["app.kubernetes.io/instance"] == "argocd"


def test_namespaced_objects_get_the_chart_namespace_cluster_scoped_ones_none(
        phase1_plan: offline_plan.Plan) -> None:
    for chart in chart_resources(phase1_plan):
        for child in children(phase1_plan, chart["urn"]):
            kind = child["inputs"]["kind"]
            namespace = child["inputs"]["metadata"].get("namespace")
            if kind in charts_render.NAMESPACED_KINDS:
                assert namespace == chart["inputs"]["namespace"], child["urn"]
            elif kind in charts_render.CLUSTER_KINDS:
                assert namespace is None, child["urn"]


def test_a_chart_secret_is_sent_as_a_secret(phase1_plan: offline_plan.Plan) -> None:
    assert phase1_plan.run is not None
    secrets = [r for r in phase1_plan.run.registrations if r.type == "kubernetes:core/v1:Secret"
               and r.parent and r.parent.endswith("::argocd-chart")]
    assert secrets
    for record in secrets:
        for key in ("data", "stringData"):
            if key in record.wire_inputs:
                assert record.wire_inputs[key][harness.SIG_KEY] == harness.SECRET_SIG, record.urn
    for resource in (r for r in phase1_plan.resources if r["urn"] in {s.urn for s in secrets}):
        assert resource["inputs"].get("data", offline_plan.SECRET) == offline_plan.SECRET


def test_the_tree_folds_a_charts_children_unless_asked(phase1_plan: offline_plan.Plan) -> None:
    folded = offline_plan.tree_lines(phase1_plan)
    expanded = offline_plan.tree_lines(phase1_plan, expand_charts=True)
    assert "      kubernetes:apps/v1:Deployment  x6" in folded
    assert not any("argocd-chart:argocd/argocd-server" in line for line in folded)
    assert any(line.strip() == "kubernetes:apps/v1:Deployment  argocd-chart:argocd/argocd-server" for line in expanded)
    assert len(expanded) > len(folded) + 50


def test_artifacts_hold_every_rendered_object(phase1_plan: offline_plan.Plan) -> None:
    text = phase1_plan.artifacts["k8s/argocd/deployment-argocd-server.yaml"]
    assert yaml.safe_load(text)["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "quay.io/argoproj/argocd:v3.4.4"
    assert "k8s/_cluster/customresourcedefinition-clusters.postgresql.cnpg.io.yaml" in phase1_plan.artifacts


# ---- the provider's rules, on small inputs


@pytest.mark.parametrize(("api_version", "kind", "token"), [
    ("v1", "Service", "kubernetes:core/v1:Service"),
    ("apps/v1", "Deployment", "kubernetes:apps/v1:Deployment"),
    ("argoproj.io/v1alpha1", "AppProject", "kubernetes:argoproj.io/v1alpha1:AppProject"),
])
def test_type_tokens(api_version: str, kind: str, token: str) -> None:
    assert charts_render.type_token(api_version, kind) == token


def _doc(kind: str, name: str, api_version: str = "v1", **metadata: Any) -> str:
    return yaml.safe_dump({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **metadata}})


def test_hooks_notes_partials_are_not_applied_and_crds_come_first() -> None:
    rendered = {
        "c/templates/NOTES.txt": "Thank you: for installing",
        "c/templates/_helpers.tpl": "",
        "c/templates/svc.yaml": _doc("Service", "web"),
        "c/templates/cm.yaml": _doc("ConfigMap", "conf") + "---\n" + _doc("ConfigMap", "other"),
        "c/templates/tests/t.yaml": _doc("Pod", "t", annotations={"helm.sh/hook": "test"}),
        "c/templates/job.yaml": _doc("Job", "migrate", "batch/v1", annotations={"helm.sh/hook": "pre-install"}),
        "c/templates/list.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}]}),
    }
    crd = _doc("CustomResourceDefinition", "widgets.example.com", "apiextensions.k8s.io/v1")
    objects = charts_render.manifest_objects(rendered, [crd], skip_crds=False)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("CustomResourceDefinition", "widgets.example.com"), ("ConfigMap", "conf"), ("ConfigMap", "other"),
        ("Service", "web"), ("ServiceAccount", "sa")]
    skipped = charts_render.manifest_objects(rendered, [crd], skip_crds=True)
    assert "CustomResourceDefinition" not in {o["kind"] for o in skipped}


def test_namespace_defaulting_follows_the_scope() -> None:
    record = harness.Registration(
        urn="urn:pulumi:s::p::kubernetes:helm.sh/v4:Chart::c", type=CHART_TYPE, name="c", custom=False,
        parent=None, provider="urn:pulumi:s::p::pulumi:providers:kubernetes::k", wire_inputs={}, protect=False,
        depends_on=(), delete_before_replace=False, ignore_changes=(), retain_on_delete=False,
        replace_on_changes=())
    inputs = charts_render.ChartInputs(urn=record.urn, resource_name="c", chart="c", version="1", repository="",
                                       release="c", namespace="apps", values={}, skip_crds=False, prefix="c")
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget"}}}
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": "elsewhere"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}},
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
        {"apiVersion": "other.io/v1", "kind": "Gadget", "metadata": {"name": "g"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "annotations": {
            "helm.sh/resource-policy": "keep"}}, "data": {"k": "dg=="}},
        crd,
    ]
    warnings: list[str] = []
    result = {r.name: r for r in charts_render.children_of(record, inputs, objects, warnings)}
    assert set(result) == {"c:apps/a", "c:elsewhere/b", "c:r", "c:apps/w", "c:g", "c:apps/s",
                           "c:widgets.example.com"}
    widget = result["c:apps/w"]
    assert widget.type == "kubernetes:example.com/v1:Widget"
    assert widget.urn == "urn:pulumi:s::p::kubernetes:helm.sh/v4:Chart$kubernetes:example.com/v1:Widget::c:apps/w"
    assert widget.depends_on == (result["c:widgets.example.com"].urn,)  # a custom resource waits for its CRD
    assert result["c:apps/s"].retain_on_delete is True
    assert result["c:apps/s"].wire_inputs["data"][harness.SIG_KEY] == harness.SECRET_SIG
    assert warnings and "other.io/v1/Gadget" in warnings[0]
    assert all(r.provider == record.provider and r.parent == record.urn for r in result.values())


def test_duplicate_urns_across_charts_fail_the_plan(chart_plan: Any) -> None:
    chart = {"chart": "tailscale-operator", "version": "1.102.3", "repo": "https://pkgs.tailscale.com/helmcharts",
             "namespace": "tailscale", "resource_prefix": "operator"}
    with pytest.raises(offline_plan.PlanError, match="duplicate URNs"):
        chart_plan({**chart, "resource_name": "one"}, {**chart, "resource_name": "two"})


def test_skip_await_and_skip_crds_reach_every_child(chart_plan: Any) -> None:
    chart = {"chart": "tailscale-operator", "version": "1.102.3", "repo": "https://pkgs.tailscale.com/helmcharts",
             "namespace": "tailscale", "resource_name": "operator", "skip_await": True, "skip_crds": True}
    plan = chart_plan(chart)
    objects = [r for r in plan.resources if r["custom"] and r["parent"]]
    assert objects
    for resource in objects:
        assert resource["inputs"]["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    # tailscale-operator keeps its CRDs in templates/ (behind installCRDs), so skipCrds leaves them
    assert any(r["inputs"]["kind"] == "CustomResourceDefinition" for r in objects)


def test_the_plan_json_is_the_plain_indented_dump(phase1_plan: offline_plan.Plan, tmp_path: Any) -> None:
    """plan.text() assembles cached pieces: it must equal json.dumps(..., indent=2, sort_keys=True)."""
    import json

    expected = json.dumps(phase1_plan.document, indent=2, sort_keys=True) + "\n"
    assert phase1_plan.text() == expected
    cache = offline_plan.ManifestCache(tmp_path / "cache")
    assert offline_plan.indented_json(phase1_plan.document, cache) == expected
    again = offline_plan.ManifestCache(tmp_path / "cache")  # read back from disk
    assert offline_plan.indented_json(phase1_plan.document, again) == expected
    assert again.entries and not again.new  # every piece came from the files the first one wrote
    empty = {"stack": "s", "resources": [], "exports": {}}
    assert offline_plan.indented_json(empty, again) == json.dumps(empty, indent=2, sort_keys=True) + "\n"
