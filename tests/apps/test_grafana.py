"""The Grafana component under mocks: what it puts on the cluster, its chart values checked against the pinned
chart (../shared/charts/grafana-12.11.1), strict validation of its objects, the policy pack's verdicts, and
the admin password nowhere but in the Secret."""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pulumi_policy import EnforcementLevel

from components.apps import GrafanaArgs, GrafanaImages
from components.apps.grafana import CHART_REPOSITORY
from tests.apps import programs
from tests.apps.mock_run import SHARED, MockRun, run

CHART_DIR = SHARED / "charts" / "grafana-12.11.1"
KUBERNETES_VERSION = "1.35"  # minikube v1.38's default Kubernetes
POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
# Values the chart passes on without a schema of its own: grafana.ini becomes the ini file as given, and
# datasources is the provisioning files' content.
OPEN_VALUES = ("grafana.ini", "datasources")


def chart_values(run: MockRun) -> dict[str, Any]:
    return dict(run.named("grafana-chart")["inputs"]["values"])


def test_grafana_puts_the_expected_objects_on_the_cluster(grafana_run: MockRun) -> None:
    kinds = sorted((r["inputs"]["kind"], r["inputs"]["metadata"]["name"]) for r in grafana_run.kubernetes_objects()
                   if r["name"] != "proxy-class")
    assert kinds == [
        ("ConfigMap", "grafana-dashboard-minikube"), ("ConfigMap", "grafana-dashboard-zot"),
        ("Ingress", "grafana-tailscale"), ("Namespace", "monitoring"), ("PersistentVolumeClaim", "grafana"),
        ("Secret", "grafana-admin"),
    ]
    chart = grafana_run.named("grafana-chart")["inputs"]
    assert (chart["chart"], chart["version"], chart["repositoryOpts"]["repo"]) == ("grafana", "12.11.1",
                                                                                   CHART_REPOSITORY)
    assert chart["namespace"] == "monitoring" and chart["name"] == "grafana"
    assert [r["name"] for r in grafana_run.of_type("blumeops:app:Grafana")] == ["grafana"]


def test_the_ingress_waits_for_the_release_of_svc_grafana_and_the_brew_retirement(grafana_run: MockRun) -> None:
    ingress = grafana_run.named("grafana-ingress")
    assert ingress["type"] == "kubernetes:networking.k8s.io/v1:Ingress"
    release = grafana_run.named("grafana-cutover-release-service")
    retire = grafana_run.named("grafana-cutover-retirement-retire")
    assert grafana_run.depends_on(ingress, release) and grafana_run.depends_on(ingress, retire)
    assert grafana_run.depends_on(release, retire)
    assert grafana_run.depends_on(ingress, grafana_run.named("grafana-chart"))
    assert "readonly NAME=grafana" in retire["revealed"]["stdin"]
    assert "readonly SERVICE=svc:grafana" in release["revealed"]["stdin"]
    assert ingress["inputs"]["spec"]["tls"] == [{"hosts": ["grafana"]}]
    assert ingress["inputs"]["spec"]["defaultBackend"]["service"] == {"name": "grafana", "port": {"number": 80}}


def test_without_a_legacy_claim_there_is_no_cutover(tmp_path: Path) -> None:
    plain = run(tmp_path, "grafana", legacy=False)
    assert plain.of_type("command:remote:Command") == []
    assert plain.named("grafana-ingress")["options"]["dependsOn"] != []


def test_the_data_claim_is_kept_by_a_rollback_and_the_chart_uses_it(grafana_run: MockRun) -> None:
    claim, namespace = grafana_run.named("grafana-data"), grafana_run.named("grafana-namespace")
    kept_provider = grafana_run.named("minikube-kept")
    assert kept_provider["inputs"]["upsertExistingObjects"] == "true"
    for kept in (claim, namespace):  # the claim, and the namespace whose deletion would take it along
        assert kept["options"]["retainOnDelete"] and not kept["options"]["protect"]
        assert kept["provider"] == kept_provider["urn"]
        assert kept["inputs"]["metadata"]["annotations"] == {"blumeops/on-rollback": "keep"}
    assert claim["inputs"]["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    # what a rollback drops is on the plain provider, where an unexpected existing object is still an error
    assert grafana_run.named("grafana-admin")["provider"] == grafana_run.named("minikube")["urn"]
    assert chart_values(grafana_run)["persistence"] == {"enabled": True, "type": "pvc", "existingClaim": "grafana"}
    assert claim["urn"] in grafana_run.named("grafana-chart")["options"]["dependsOn"]


def test_the_chart_values_carry_the_facts_of_phase_2(grafana_run: MockRun) -> None:
    values = chart_values(grafana_run)
    assert values["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user",
                               "passwordKey": "admin-password"}
    assert values["grafana.ini"] == {"server": {"root_url": "https://grafana.tail8d86e.ts.net"},
                                     "analytics": {"check_for_updates": False, "reporting_enabled": False}}
    sources = {s["name"]: s for s in values["datasources"]["datasources.yaml"]["datasources"]}
    assert sources["Prometheus"]["url"] == "http://host.minikube.internal:9090" and sources["Prometheus"]["isDefault"]
    assert sources["Loki"]["url"] == "http://host.minikube.internal:3100"
    assert {s["uid"] for s in sources.values()} == {"prometheus", "loki"}
    assert values["sidecar"]["dashboards"] == {"enabled": True, "label": "grafana_dashboard", "labelValue": "1"}
    assert values["resources"] == {"requests": {"memory": "128Mi", "cpu": "100m"},
                                   "limits": {"memory": "512Mi", "cpu": "500m"}}
    assert values["testFramework"] == {"enabled": False}


def test_every_image_is_pinned(grafana_run: MockRun) -> None:
    values = chart_values(grafana_run)
    assert values["image"] == {"registry": "docker.io", "repository": "grafana/grafana", "tag": "13.2.0"}
    assert values["sidecar"]["image"] == {"registry": "quay.io", "repository": "kiwigrid/k8s-sidecar", "tag": "2.10.1"}
    assert values["initChownData"]["image"] == {"registry": "docker.io", "repository": "library/busybox",
                                                "tag": "1.38.0"}
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert values["image"]["tag"] == chart["appVersion"], "the Grafana the pinned chart is made for"


# ---- the values exist in the pinned chart ----------------------------------------------------------------


def unknown_value_paths(values: Any, upstream: Any, templates: str, prefix: str = "") -> Iterator[str]:
    """Paths of ``values`` the chart neither declares in values.yaml nor reads in a template."""
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if path in OPEN_VALUES:
            continue
        if not isinstance(upstream, dict) or key not in upstream:
            if f".Values.{path}" not in templates:
                yield path
            continue
        below = upstream[key]
        if isinstance(below, dict) and below:
            yield from unknown_value_paths(value, below, templates, path)


def chart_templates() -> str:
    return "\n".join(path.read_text() for path in sorted((CHART_DIR / "templates").rglob("*")) if path.is_file())


def test_every_value_is_a_key_of_the_pinned_chart(grafana_run: MockRun) -> None:
    upstream = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    unknown = list(unknown_value_paths(chart_values(grafana_run), upstream, chart_templates()))
    assert unknown == []


def test_the_key_check_finds_a_misspelt_key(grafana_run: MockRun) -> None:
    upstream = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    values = copy.deepcopy(chart_values(grafana_run))
    values["sidecar"]["dashboards"]["lable"] = values["sidecar"]["dashboards"].pop("label")
    values["persistence"]["existingClam"] = "grafana"
    found = list(unknown_value_paths(values, upstream, chart_templates()))
    assert found == ["persistence.existingClam", "sidecar.dashboards.lable"]


# ---- contracts: strict schemas, the policy pack, secrets ---------------------------------------------------


def test_every_core_object_is_valid_kubernetes(grafana_run: MockRun) -> None:
    objects = [r for r in grafana_run.kubernetes_objects() if r["name"] != "proxy-class"]
    assert len(objects) == 6
    for resource in objects:
        kubernetes_validate.validate(resource["revealed"], KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(grafana_run.named("grafana-data")["revealed"])
    broken["spec"]["accesModes"] = broken["spec"].pop("accessModes")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def policies() -> list[Any]:
    """Every rule of the pack, imported as the engine imports them (policy/ first on sys.path)."""
    if str(POLICY_DIR) not in sys.path:
        sys.path.insert(0, str(POLICY_DIR))
    from rules import cluster, images, launch_agents, remote_commands, secrets  # type: ignore[import-not-found]

    return [*images.POLICIES, *launch_agents.POLICIES, *cluster.POLICIES, *remote_commands.POLICIES,
            *secrets.POLICIES]


def mandatory_violations(resources: list[dict[str, Any]], raw: list[Any] | None = None) -> list[str]:
    """The pack's mandatory findings, given the props as the engine hands them over (secrets marked) when the
    raw registrations are at hand, else the revealed props (where nothing counts as marked)."""
    from ops.plan import analyzer_properties
    from tests.policy.conftest import run_policy

    wire = {record.urn: analyzer_properties(record.wire_inputs) for record in raw or []}
    providers = {r["urn"]: r["inputs"] for r in resources if r["type"].startswith("pulumi:providers:")}
    types = {r["urn"]: r["type"] for r in resources}
    found = []
    for resource in resources:
        props = wire.get(resource["urn"], resource["revealed"])
        for policy in policies():
            if policy.enforcement_level != EnforcementLevel.MANDATORY:
                continue
            for message in run_policy(policy, resource["type"], props, name=resource["name"],
                                      protect=resource["options"]["protect"], wire=resource["urn"] in wire,
                                      provider=providers.get(resource["provider"] or ""),
                                      parent=types.get(resource["parent"] or "")):
                found.append(f"{resource['name']}: {policy.name}: {message}")
    return found


def test_the_policy_pack_passes_every_resource(grafana_run: MockRun) -> None:
    assert mandatory_violations(grafana_run.resources, grafana_run.raw) == []
    # and it would catch an image missing from policy/images.yaml
    chart = copy.deepcopy(grafana_run.named("grafana-chart"))
    chart["revealed"]["values"]["sidecar"]["image"]["tag"] = "9.9.9"
    assert any("k8s-sidecar:9.9.9" in message for message in mandatory_violations([chart]))


def test_the_admin_password_is_only_in_the_secret(grafana_run: MockRun) -> None:
    secret = grafana_run.named("grafana-admin")
    assert secret["revealed"]["stringData"] == {"admin-user": programs.ADMIN_USER,
                                                "admin-password": programs.ADMIN_PASSWORD}
    assert secret["inputs"]["stringData"] == "[secret]"
    rendered = json.dumps([r["inputs"] for r in grafana_run.resources])
    for fake in programs.FAKE_SECRETS:
        assert fake not in rendered
    others = json.dumps([r["revealed"] for r in grafana_run.resources
                         if r["name"] not in ("grafana-admin", "grafana-cutover-release-service")])
    assert programs.ADMIN_PASSWORD not in others, "not in values, ConfigMaps, artifacts or host steps"
    artifacts = grafana_run.of_type("blumeops:app:Grafana")[0]["inputs"]["artifacts"]
    assert artifacts and all(programs.ADMIN_PASSWORD not in text for text in artifacts.values())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prometheus_url": "host.minikube.internal:9090"}, "prometheus_url .* is not an http"),
        ({"tailnet": "tail8d86e"}, "is not a tailnet DNS name"),
    ],
)
def test_bad_arguments_are_refused(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GrafanaArgs(**{"provider": object(), "kept": object(), "proxy_class": object(), "tailnet": "tail8d86e.ts.net",
                       "admin_user": object(), "admin_password": object(), **changes})  # type: ignore[arg-type]


def test_the_root_url_follows_the_hostname_and_the_tailnet() -> None:
    args = GrafanaArgs(provider=object(), kept=object(), proxy_class=object(),  # type: ignore[arg-type]
                       tailnet="example.ts.net",
                       admin_user=object(), admin_password=object(), hostname="grafana2")  # type: ignore[arg-type]
    assert args.root_url == "https://grafana2.example.ts.net"
    assert re.search(r"grafana2\.example", json.dumps(args.values()))


# ---- what the pinned chart deploys with these values ---------------------------------------------------------


def rendered_chart(run: MockRun) -> list[dict[str, Any]]:
    """The chart rendered with Helm's own engine (helm-python-sdk, which `ops` uses for offline rendering)."""
    helm = pytest.importorskip("helm_python", reason="helm-python-sdk renders charts offline (ops' dependency)")
    chart = helm.Chart.load(str(CHART_DIR))
    files = chart.render(chart_values(run), name="grafana", namespace="monitoring", is_install=True)
    return [document for path, text in sorted(files.items()) if path.endswith(".yaml")
            for document in yaml.safe_load_all(text) if document]


def images_of(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "image" and isinstance(value, str):
                yield value
            else:
                yield from images_of(value)
    elif isinstance(document, list):
        for item in document:
            yield from images_of(item)


def test_the_pinned_chart_deploys_grafana_on_the_claim_with_the_admin_secret(grafana_run: MockRun) -> None:
    objects = rendered_chart(grafana_run)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("Deployment", "grafana") in kinds and ("Service", "grafana") in kinds
    assert not {kind for kind, _ in kinds} & {"PersistentVolumeClaim", "Secret", "Pod"}, \
        "the claim and the admin Secret are the component's own; no test pod"
    assert {image for o in objects for image in images_of(o)} == set(GrafanaImages().refs)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "storage", "persistentVolumeClaim": {"claimName": "grafana"}} in pod["volumes"]
    grafana = next(c for c in pod["containers"] if c["name"] == "grafana")
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in grafana["env"] if "valueFrom" in e
               and "secretKeyRef" in e["valueFrom"]}
    assert secrets["GF_SECURITY_ADMIN_PASSWORD"] == {"name": "grafana-admin", "key": "admin-password"}
    service = next(o for o in objects if o["kind"] == "Service")
    assert service["spec"]["ports"][0]["port"] == 80
    for document in objects:
        if document["kind"] in ("Deployment", "Service", "ConfigMap", "ServiceAccount"):
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
