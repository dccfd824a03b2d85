"""Phase 1 as a whole: component structure, explicit providers, ordering, secrets, pinned images."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from phase_runner import Run

import phases
from components.cluster import ImageRef, ProxyClassRef, tailscale_ingress
from ops.stack import ROOT as REPO

COMPONENTS = {
    "tailscale-operator": "blumeops:cluster:TailscaleOperator",
    "argocd": "blumeops:cluster:ArgoCD",
    "cloudnative-pg": "blumeops:cluster:CloudNativePG",
    "blumeops-pg": "blumeops:cluster:PostgresCluster",
}
VARIANTS = ["phase1", "phase1_created_client", "phase1_at_4"]


@pytest.fixture(params=VARIANTS)
def run(request: pytest.FixtureRequest) -> Run:
    result: Run = request.getfixturevalue(request.param)
    return result


def urn(run: Run, name: str) -> str:
    return str(run.named(name)["urn"])


def depends(run: Run, name: str) -> set[str]:
    return set(run.named(name)["options"]["dependsOn"])


# --- structure --------------------------------------------------------------------------------------


def test_components_hang_under_the_phase_with_their_children_named_after_them(run: Run) -> None:
    phase = run.named("p1-kubernetes")
    for name, type_token in COMPONENTS.items():
        component = run.named(name)
        assert component["type"] == type_token
        assert component["parent"] == phase["urn"]
        children = [r for r in run.resources if r["parent"] == component["urn"]]
        assert children, f"{name} has no children"
        for child in children:
            assert child["name"].startswith(f"{name}-"), child["name"]


def test_no_duplicate_urns(run: Run) -> None:
    urns = [r["urn"] for r in run.resources]
    assert len(urns) == len(set(urns))


def test_every_kubernetes_resource_uses_the_explicit_provider(run: Run) -> None:
    provider = urn(run, "kubernetes")
    kubernetes = [r for r in run.resources if r["type"].startswith("kubernetes:")]
    assert len(kubernetes) >= 17
    for resource in kubernetes:
        assert resource["provider"] == provider, f"{resource['name']} uses {resource['provider']}"


def test_only_the_cluster_is_protected(phase1: Run) -> None:
    protected = [r["name"] for r in phase1.resources if r["options"]["protect"]]
    assert protected == ["blumeops-pg-cluster"]


# --- ordering ---------------------------------------------------------------------------------------


def test_custom_resources_wait_for_the_chart_that_installs_their_crd(run: Run) -> None:
    assert urn(run, "tailscale-operator-chart") in depends(run, "tailscale-operator-proxy-class")
    assert urn(run, "tailscale-operator-chart") in depends(run, "tailscale-operator-dns-config")
    assert urn(run, "cloudnative-pg-chart") in depends(run, "blumeops-pg-cluster")


def test_every_tailscale_exposure_waits_for_its_proxy_class(run: Run) -> None:
    proxy_class = urn(run, "tailscale-operator-proxy-class")
    exposures = [
        r for r in run.kubernetes_objects()
        if "tailscale.com/proxy-class" in ((r["inputs"].get("metadata") or {}).get("labels") or {})
    ]
    # at target 4, blumeops-pg's name is phase 4's LoadBalancer (tests/phases/test_phase4_miniflux.py)
    own_pg = {"blumeops-pg-tailscale"} if "//k8s-pg." in run.exports["endpoints"]["postgres"] else set()
    assert {r["name"] for r in exposures} == {"argocd-ingress", "tailscale-operator-egress-forge", *own_pg}
    for resource in exposures:
        assert proxy_class in resource["options"]["dependsOn"], resource["name"]


def test_secrets_exist_before_what_reads_them(run: Run) -> None:
    assert urn(run, "tailscale-operator-oauth") in depends(run, "tailscale-operator-chart")
    assert urn(run, "argocd-repo-creds-forge") in depends(run, "argocd-chart")
    cluster = depends(run, "blumeops-pg-cluster")
    assert {urn(run, "blumeops-pg-eblume"), urn(run, "blumeops-pg-borgmatic")} <= cluster


def test_namespaced_objects_wait_for_their_namespace(run: Run) -> None:
    namespaces = {r["inputs"]["metadata"]["name"]: r["urn"] for r in run.resources
                  if r["type"] == "kubernetes:core/v1:Namespace"}
    assert set(namespaces) == {"tailscale", "argocd", "cnpg-system", "databases"}
    for resource in run.kubernetes_objects():
        inputs = resource["inputs"]
        ns = inputs.get("namespace") or (inputs.get("metadata") or {}).get("namespace")
        if ns is not None:
            assert namespaces[ns] in resource["options"]["dependsOn"], resource["name"]


# --- secrets ----------------------------------------------------------------------------------------


def test_no_secret_value_appears_outside_a_secret(run: Run) -> None:
    plan_form = json.dumps([r["inputs"] for r in run.resources]) + json.dumps(run.exports)
    revealed = json.dumps([r["revealed"] for r in run.resources])
    used = 0
    for key, fake in run.fake_secrets.items():
        assert fake not in plan_form, f"{key} leaked into the recorded inputs"
        used += fake in revealed
    assert used >= 3  # the check is not vacuous: the fakes are really in the (secret) inputs


# --- images -----------------------------------------------------------------------------------------


def pinned_images(run: Run) -> set[str]:
    images: set[str] = set()
    for resource in run.resources:
        if resource["type"] in COMPONENTS.values():
            images.update(resource["inputs"].get("images") or [])
    cluster_spec = run.named("blumeops-pg-cluster")["inputs"]["spec"]
    images.add(cluster_spec["imageName"])
    pod = run.named("tailscale-operator-proxy-class")["inputs"]["spec"]["statefulSet"]["pod"]
    images.update({pod["tailscaleContainer"]["image"], pod["tailscaleInitContainer"]["image"]})
    nameserver = run.named("tailscale-operator-dns-config")["inputs"]["spec"]["nameserver"]["image"]
    images.add(f"{nameserver['repo']}:{nameserver['tag']}")
    return images


def test_every_pinned_image_is_in_the_policy_catalog(phase1: Run) -> None:
    catalog = yaml.safe_load((REPO / "policy" / "images.yaml").read_text())
    listed = set(catalog["images"])
    images = pinned_images(phase1)
    assert images == {
        "docker.io/tailscale/k8s-operator:v1.102.3",
        "docker.io/tailscale/tailscale:v1.102.3",
        "docker.io/tailscale/k8s-nameserver:v1.102.3",
        "quay.io/argoproj/argocd:v3.4.4",
        "ghcr.io/dexidp/dex:v2.45.1",
        "ecr-public.aws.com/docker/library/redis:8.2.3-alpine",
        "ghcr.io/cloudnative-pg/cloudnative-pg:1.30.0",
        "ghcr.io/cloudnative-pg/postgresql:18-standard-trixie",
    }
    assert sorted(images - listed) == []


@pytest.mark.parametrize("tag", ["latest", "stable", ""])
def test_an_unpinned_image_is_refused(tag: str) -> None:
    with pytest.raises(ValueError, match="pinned"):
        ImageRef("docker.io/tailscale/tailscale", tag)


def test_a_dotted_ingress_host_is_refused() -> None:
    with pytest.raises(ValueError, match="short name"):
        tailscale_ingress("x", name="x", namespace="x", hostname="argocd.tail8d86e.ts.net", service_name="x",
                          service_port=80, proxy_class=ProxyClassRef("default", None),  # type: ignore[arg-type]
                          provider=None, parent=None)  # type: ignore[arg-type]


# --- reuse ------------------------------------------------------------------------------------------


def test_components_know_nothing_about_the_homelab() -> None:
    """A second cluster reuses them: no indri, no tailnet name, no config reads, no phase imports."""
    for path in sorted((REPO / "components" / "cluster").glob("*.py")):
        text = path.read_text()
        for word in ("indri", "tail8d86e", "eblume", "miniflux", "pulumi.Config", "import phases", "from phases"):
            assert word not in text, f"{path.name} mentions {word!r}"


def test_phase1_provides_what_later_phases_use(phase1: Run) -> None:
    assert {"cluster.proxy_class", "postgres.cluster"} <= set(phase1.exports["given"])


# --- the real offline plan, once phase 1 is switched on in the registry --------------------------------


@pytest.mark.skipif(not phases.lookup("1").implemented, reason="phase 1 is not switched on in the registry yet")
def test_offline_plan_renders_the_platform(indri_plan: Callable[[str | None], Any]) -> None:
    plan = indri_plan("1")
    artifacts = set(plan.artifacts)
    for path in ("k8s/_cluster/proxyclass-default.yaml", "k8s/_cluster/dnsconfig-ts-dns.yaml",
                 "k8s/databases/cluster-blumeops-pg.yaml", "k8s/argocd/ingress-argocd-server-tailscale.yaml",
                 "k8s/tailscale/service-forge.yaml"):
        assert path in artifacts, sorted(artifacts)
    kubernetes_provider = [r for r in plan.resources if r["type"] == "pulumi:providers:kubernetes"
                           and r["name"] == "minikube"]
    assert len(kubernetes_provider) == 1
    # The CNPG CRDs need server-side apply: the provider must not switch it off.
    assert str(kubernetes_provider[0]["inputs"].get("enableServerSideApply", "true")).lower() != "false"
    for resource in plan.resources:
        if resource["phase"] == "1" and resource["type"].startswith("kubernetes:"):
            assert resource["provider"] == kubernetes_provider[0]["urn"]


def test_shared_dir_is_beside_the_repository() -> None:
    assert (Path(REPO) / "../shared/crds").is_dir()


def test_the_policy_pack_finds_no_mandatory_violation(phase1_created_client: Run) -> None:
    """Every phase-1 resource through the served pack, as the engine sends it (ops' analyzer)."""
    from ops import plan
    from ops.engine import analyzer, harness

    resources = plan.analyzer_resources(harness.ProgramRun(phase1_created_client.raw, {}))
    report = analyzer.analyze(resources)
    assert report.resources_analyzed == len(resources)
    assert [f"{v.policy}: {v.message}" for v in report.mandatory] == []
