"""workload-security (issue 18): no workload reaches past its pod. Each class is a violating resource and its
passing twin, at the depths the pack reads (a Deployment's template, a CronJob's job template, a chart's List
item, a custom resource's pod template), so a rule that flags everything fails the twin and one that reads too
little fails the violation."""

from __future__ import annotations

from typing import Any

import pytest
from rules.cluster import workload_security

GOOD_CONTAINER = {"name": "app", "image": "ghcr.io/miniflux/miniflux:2.2.16"}


def deployment(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "app"}, "spec": {"template": {"spec": spec}}}


CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    ("host network", "kubernetes:apps/v1:Deployment",
     deployment({"hostNetwork": True, "containers": [GOOD_CONTAINER]}),
     deployment({"hostNetwork": False, "containers": [GOOD_CONTAINER]}), "shares the node's Network namespace"),
    ("host PID, in a CronJob", "kubernetes:batch/v1:CronJob",
     {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostPID": "true", "containers": [GOOD_CONTAINER]}}}}}},
     {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [GOOD_CONTAINER]}}}}}}, "PID namespace"),
    ("privileged init container", "kubernetes:core/v1:Pod",
     {"spec": {"initContainers": [{**GOOD_CONTAINER, "securityContext": {"privileged": True}}],
               "containers": [GOOD_CONTAINER]}},
     {"spec": {"initContainers": [{**GOOD_CONTAINER, "securityContext": {"privileged": False}}],
               "containers": [GOOD_CONTAINER]}}, "runs privileged"),
    ("SYS_ADMIN, spelled CAP_sys_admin", "kubernetes:apps/v1:Deployment",
     deployment({"containers": [{**GOOD_CONTAINER, "securityContext": {"capabilities": {"add": ["CAP_sys_admin"]}}}]}),
     deployment({"containers": [{**GOOD_CONTAINER, "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"],
                                                                                        "drop": ["ALL"]}}}]}),
     "adds the capability SYS_ADMIN"),
    ("hostPath /", "kubernetes:apps/v1:StatefulSet",
     deployment({"containers": [GOOD_CONTAINER], "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
     deployment({"containers": [GOOD_CONTAINER], "volumes": [{"name": "data", "emptyDir": {}}]}),
     "mounts the node's / (hostPath)"),
    ("a custom resource's pod template", "kubernetes:postgresql.cnpg.io/v1:Pooler",
     {"spec": {"template": {"spec": {"hostIPC": True, "containers": [GOOD_CONTAINER]}}}},
     {"spec": {"template": {"spec": {"containers": [GOOD_CONTAINER]}}}}, "IPC namespace"),
    ("cluster-admin in a List", "kubernetes:core/v1:List",
     {"items": [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "everything"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                 "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "woodpecker"}]}]},
     {"items": [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                 "metadata": {"name": "view"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                 "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "woodpecker"}]}]},
     "binds cluster-admin"),
]


@pytest.mark.parametrize(("label", "resource_type", "bad", "good", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_class_is_refused_and_its_twin_passes(check: Any, label: str, resource_type: str, bad: dict[str, Any],
                                                   good: dict[str, Any], message: str) -> None:
    found = check(workload_security, resource_type, bad)
    assert found and message in " ".join(found), found
    assert check(workload_security, resource_type, good) == []


def test_a_reviewed_exception_is_named_in_the_policy_config(check: Any) -> None:
    bad = deployment({"hostNetwork": True, "containers": [GOOD_CONTAINER]})
    assert check(workload_security, "kubernetes:apps/v1:Deployment", bad, name="node-agent",
                 config={"allowedResources": ["node-agent"]}) == []
    assert check(workload_security, "kubernetes:apps/v1:Deployment", bad, name="other",
                 config={"allowedResources": ["node-agent"]})
