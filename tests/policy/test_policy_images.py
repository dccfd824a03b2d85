"""arm64-images, images-verified, images-from-mirrored-registries."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy.proxy import UnknownValueError
from rules import images as image_rules
from rules.catalog import Catalog

from tests.policy.conftest import GOOD

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def deployment(*containers: dict[str, Any], init: list[dict[str, Any]] | None = None, **pod: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": list(containers), **pod}
    if init:
        spec["initContainers"] = init
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "miniflux", "namespace": "miniflux"},
        "spec": {"template": {"spec": spec}},
    }


def arm64(check: Any, resource_type: str, props: dict[str, Any]) -> list[str]:
    return check(image_rules.arm64_images, resource_type, props, name="miniflux")


def test_listed_arm64_image_passes(check: Any, catalog: Catalog) -> None:
    assert arm64(check, "kubernetes:apps/v1:Deployment", deployment({"name": "app", "image": GOOD})) == []


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/miniflux/miniflux", "has no tag"),
        ("ghcr.io/miniflux/miniflux:latest", "`latest`"),
        ("docker.io/example/amd64only:1.0", "does not ship linux/arm64"),
        ("example/amd64only:1.0", "does not ship linux/arm64"),
        ("ghcr.io/miniflux/miniflux:2.2.17", "is not listed in policy/images.yaml"),
        ("Not A Valid::ref", "invalid image reference"),
    ],
)
def test_bad_images_are_violations(check: Any, catalog: Catalog, image: str, expected: str) -> None:
    messages = arm64(check, "kubernetes:apps/v1:Deployment", deployment({"name": "app", "image": image}))
    assert len(messages) == 1
    assert expected in messages[0]
    assert "Deployment 'miniflux'" in messages[0] and "container 'app'" in messages[0]
    assert image in messages[0]
    if "invalid" not in expected:
        assert "python -m ops images verify" in messages[0]


def test_digest_pinned_reference_counts_as_pinned(check: Any, catalog: Catalog) -> None:
    pinned = "ghcr.io/miniflux/miniflux@sha256:" + "a" * 64
    assert arm64(check, "kubernetes:apps/v1:Deployment", deployment({"name": "app", "image": pinned})) == []
    other = "ghcr.io/miniflux/miniflux@sha256:" + "f" * 64
    [message] = arm64(check, "kubernetes:apps/v1:Deployment", deployment({"name": "app", "image": other}))
    assert "not listed" in message


def test_short_and_aliased_names_are_normalised(check: Any, catalog: Catalog) -> None:
    props = deployment({"name": "ts", "image": "tailscale/tailscale:v1.102.3"},
                       {"name": "redis", "image": "redis:8.2.3-alpine"},
                       {"name": "hub", "image": "index.docker.io/tailscale/tailscale:v1.102.3"})
    assert arm64(check, "kubernetes:apps/v1:Deployment", props) == []


def test_init_container_is_checked(check: Any, catalog: Catalog) -> None:
    props = deployment({"name": "app", "image": GOOD}, init=[{"name": "migrate", "image": "busybox"}])
    [message] = arm64(check, "kubernetes:apps/v1:Deployment", props)
    assert "init container 'migrate'" in message and "has no tag" in message


def test_ephemeral_container_is_checked(check: Any, catalog: Catalog) -> None:
    props = {"spec": {"containers": [{"name": "app", "image": GOOD}],
                      "ephemeralContainers": [{"name": "debug", "image": "busybox:latest"}]}}
    [message] = arm64(check, "kubernetes:core/v1:Pod", props)
    assert "ephemeral container 'debug'" in message


def test_cronjob_job_template_is_checked(check: Any, catalog: Catalog) -> None:
    props = {"spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "zim-watcher", "image": "docker.io/example/amd64only:1.0"}]}}}}}}
    [message] = check(image_rules.arm64_images, "kubernetes:batch/v1:CronJob", props, name="zim-watcher")
    assert "CronJob 'zim-watcher'" in message and "does not ship linux/arm64" in message


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet", "ReplicaSet"])
def test_other_apps_kinds(check: Any, catalog: Catalog, kind: str) -> None:
    props = deployment({"name": "app", "image": "ghcr.io/miniflux/miniflux:latest"})
    assert len(arm64(check, f"kubernetes:apps/v1:{kind}", props)) == 1
    job = deployment({"name": "app", "image": "ghcr.io/miniflux/miniflux:latest"})
    assert len(arm64(check, "kubernetes:batch/v1:Job", job)) == 1


def test_helm_chart_value_images(check: Any, catalog: Catalog) -> None:
    chart = {
        "chart": "argo-cd",
        "version": "10.1.1",
        "namespace": "argocd",
        "repositoryOpts": {"repo": "https://argoproj.github.io/argo-helm"},
        "values": {
            "global": {"image": {"repository": "quay.io/argoproj/argocd", "tag": "v3.4.4"}},
            "redis": {"image": {"repository": "docker.io/example/amd64only", "tag": "1.0"}},
            "dex": {"image": {"registry": "ghcr.io", "repository": "miniflux/miniflux", "tag": "2.2.16"}},
            "extra": [{"image": "ghcr.io/miniflux/miniflux:latest"}],
            "server": {"image": {"pullPolicy": "Always"}},
            "password": UNKNOWN,  # unknown values away from images do not stop the check
        },
    }
    messages = check(image_rules.arm64_images, "kubernetes:helm.sh/v4:Chart", chart, name="argocd")
    assert len(messages) == 2, messages
    assert any("values.redis.image" in m and "does not ship linux/arm64" in m for m in messages)
    assert any("values.extra[0].image" in m and "`latest`" in m for m in messages)


def test_helm_value_image_without_tag(check: Any, catalog: Catalog) -> None:
    chart = {"chart": "x", "values": {"image": {"repository": "ghcr.io/miniflux/miniflux", "tag": ""}}}
    [message] = check(image_rules.arm64_images, "kubernetes:helm.sh/v4:Chart", chart)
    assert "has no tag" in message


def test_custom_resources(check: Any, catalog: Catalog) -> None:
    proxy_class = {"spec": {"statefulSet": {"pod": {
        "tailscaleContainer": {"image": "docker.io/tailscale/tailscale:v1.102.3"},
        "tailscaleInitContainer": {"image": "docker.io/tailscale/tailscale:stable"}}}}}
    [message] = check(image_rules.arm64_images, "kubernetes:tailscale.com/v1alpha1:ProxyClass", proxy_class)
    assert "tailscaleInitContainer" in message and "not listed" in message
    dns = {"spec": {"nameserver": {"image": {"repo": "docker.io/example/amd64only", "tag": "1.0"}}}}
    [message] = check(image_rules.arm64_images, "kubernetes:tailscale.com/v1alpha1:DNSConfig", dns)
    assert "spec.nameserver.image" in message and "does not ship" in message
    cluster = {"spec": {"instances": 1, "imageName": "ghcr.io/cloudnative-pg/postgresql:16"}}
    [message] = check(image_rules.arm64_images, "kubernetes:postgresql.cnpg.io/v1:Cluster", cluster)
    assert "spec.imageName" in message


def test_arch_node_selector(check: Any, catalog: Catalog) -> None:
    props = deployment({"name": "app", "image": GOOD}, nodeSelector={"kubernetes.io/arch": "amd64"})
    [message] = arm64(check, "kubernetes:apps/v1:Deployment", props)
    assert "kubernetes.io/arch=amd64" in message
    ok = deployment({"name": "app", "image": GOOD}, nodeSelector={"kubernetes.io/arch": "arm64",
                                                                  "kubernetes.io/os": "linux"})
    assert arm64(check, "kubernetes:apps/v1:Deployment", ok) == []


def _affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]}}}


def test_arch_node_affinity(check: Any, catalog: Catalog) -> None:
    amd_only = [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]
    not_arm = [{"key": "kubernetes.io/arch", "operator": "NotIn", "values": ["arm64"]}]
    either = [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]
    for terms, violations in (((amd_only,), 1), ((not_arm,), 1), ((amd_only, either), 0), ((either,), 0)):
        props = deployment({"name": "app", "image": GOOD}, affinity=_affinity(*terms))
        assert len(arm64(check, "kubernetes:apps/v1:Deployment", props)) == violations, terms


def test_unknown_image_raises_for_the_engine(check: Any, catalog: Catalog) -> None:
    props = deployment({"name": "app", "image": UNKNOWN})
    with pytest.raises(UnknownValueError):
        arm64(check, "kubernetes:apps/v1:Deployment", props)


def test_other_resources_are_ignored(check: Any, catalog: Catalog) -> None:
    assert arm64(check, "kubernetes:core/v1:ConfigMap", {"data": {"image": "busybox"}}) == []


def test_unverified_entries_are_advisory(check: Any, catalog: Catalog) -> None:
    props = deployment({"name": "app", "image": GOOD}, init=[{"name": "ts", "image": "tailscale/tailscale:v1.102.3"}])
    assert image_rules.images_verified.enforcement_level.value == "advisory"
    [message] = check(image_rules.images_verified, "kubernetes:apps/v1:Deployment", props)
    assert "tailscale/tailscale:v1.102.3" in message and "not verified" in message
    assert "python -m ops images verify" in message


def test_mirrored_registries(check: Any, catalog: Catalog) -> None:
    props = deployment({"name": "app", "image": GOOD}, {"name": "argocd", "image": "quay.io/argoproj/argocd:v3.4.4"},
                       {"name": "lsio", "image": "lscr.io/linuxserver/transmission:4.0.6"})
    [message] = check(image_rules.images_from_mirrored_registries, "kubernetes:apps/v1:Deployment", props)
    assert "quay.io" in message and "zot" in message
    configured = check(image_rules.images_from_mirrored_registries, "kubernetes:apps/v1:Deployment", props,
                       config={"registries": ["ghcr.io", "quay.io"]})
    assert configured == []
