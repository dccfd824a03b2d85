"""What moving the target between plans does to the stack's state and to the cluster, as the engine does it.

The offline plan cannot run ``pulumi up``, but the rules that decide whether a rollback runs and keeps the data
are few and documented; this module applies them to a sequence of plans (engine emulation, like the harness):

- Pulumi refuses to delete a resource registered with ``protect`` and stops the whole update, preview
  included (the engine's delete step checks it before anything else).
- A resource registered with ``retain_on_delete`` leaves the stack's state on delete; the provider is not
  called, so the object stays in the cluster.
- Deleting a Namespace deletes every object in it (Kubernetes' namespace finalizer), kept or not.
- pulumi-kubernetes 4.29+ creates with a client-side create: an object that already exists in the cluster fails
  with AlreadyExists, unless its provider sets ``upsertExistingObjects``, which then takes it back as it is.

``Cluster`` tracks each Kubernetes object the plans register by its identity (group, kind, namespace, name)
with a generation number: an object taken back keeps its generation (its data), one created anew gets a new
one. ``ops diff`` uses it for one step; the tests walk 3 -> 2 -> 1 -> 2 with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
# Kinds Kubernetes does not put in a namespace (the ones the program and its charts register).
CLUSTER_SCOPED = frozenset({
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
    "StorageClass", "PriorityClass", "IngressClass", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration", "APIService", "CSIDriver", "RuntimeClass", "ProxyClass", "DNSConfig",
    "Connector", "ProxyGroup", "Recorder", "ClusterImageCatalog",
})
# What holds data: losing one of these objects (deleted, or its namespace deleted) loses the data.
HOLDS_DATA = frozenset({"PersistentVolumeClaim"})


class LifecycleError(Exception):
    """An update the engine would stop: a protected resource to delete, or AlreadyExists on a create."""


ObjectKey = tuple[str, str, str, str]  # (group, kind, namespace, name)


def object_key(resource: Mapping[str, Any]) -> ObjectKey | None:
    """The cluster identity of a Kubernetes resource of the plan, or None (not a Kubernetes object, a Patch, a
    component, or a name the plan does not know)."""
    token = resource.get("type", "")
    if not token.startswith("kubernetes:") or not resource.get("custom", True) or token.endswith("Patch"):
        return None
    parts = token.split(":")
    if len(parts) != 3 or "/" not in parts[1]:
        return None  # helm.v4 Chart, yaml ConfigGroup: components, their children are listed themselves
    group = parts[1].rsplit("/", 1)[0]
    group = "" if group == "core" else group
    kind = parts[2]
    metadata = resource.get("inputs", {}).get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name or name.startswith("["):
        return None
    namespace = "" if kind in CLUSTER_SCOPED else str(metadata.get("namespace") or "default")
    return (group, kind, namespace, name)


def providers_that_upsert(plan: Mapping[str, Any]) -> set[str]:
    return {r["urn"] for r in plan["resources"] if r.get("type") == KUBERNETES_PROVIDER
            and r.get("inputs", {}).get("upsertExistingObjects") in (True, "true")}


def _provider_urn(resource: Mapping[str, Any]) -> str:
    return str(resource.get("provider") or "")


@dataclass(slots=True)
class Step:
    """What one update did: URNs by outcome, and the objects that lost their data."""

    created: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)  # created over a kept object: taken back, data and all
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # left the state; the object stays in the cluster
    lost: list[str] = field(default_factory=list)  # objects holding data that the update removed from the cluster


@dataclass(slots=True)
class Cluster:
    """The stack's state (URN -> plan resource) and the cluster's objects (identity -> generation)."""

    state: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    objects: dict[ObjectKey, int] = field(default_factory=dict)
    created_count: int = 0

    @classmethod
    def deployed(cls, plan: Mapping[str, Any]) -> Cluster:
        """The stack and cluster as a successful ``pulumi up`` of ``plan`` on an empty cluster leaves them."""
        cluster = cls()
        cluster.apply(plan)
        return cluster

    def generation(self, key: ObjectKey) -> int | None:
        return self.objects.get(key)

    def apply(self, plan: Mapping[str, Any]) -> Step:
        """``pulumi up`` of ``plan`` from the current state; raises ``LifecycleError`` where the engine stops
        (before changing anything, as a preview would)."""
        wanted = {r["urn"]: r for r in plan["resources"]}
        upsert = providers_that_upsert(plan)
        leaving = [urn for urn in self.state if urn not in wanted]
        protected = [urn for urn in leaving if self.state[urn].get("options", {}).get("protect")]
        if protected:
            raise LifecycleError("the engine refuses to delete protected resources (preview included): "
                                 + ", ".join(protected))
        arriving = [urn for urn in wanted if urn not in self.state]
        refused = []
        for urn in arriving:
            key = object_key(wanted[urn])
            if key is not None and key in self.objects and _provider_urn(wanted[urn]) not in upsert:
                refused.append(f"{urn} ({key[1]} {'/'.join(p for p in key[2:] if p)})")
        if refused:
            raise LifecycleError("create fails with AlreadyExists (client-side create; the provider does not set "
                                 "upsertExistingObjects): " + ", ".join(refused))
        step = Step()
        # The engine creates first and deletes what left the program at the end of the update.
        for urn in arriving:
            resource = wanted[urn]
            key = object_key(resource)
            if key is not None and key in self.objects:
                step.adopted.append(urn)
            else:
                step.created.append(urn)
                if key is not None:
                    self.created_count += 1
                    self.objects[key] = self.created_count
            self.state[urn] = resource
        for urn in leaving:
            resource = self.state.pop(urn)
            key = object_key(resource)
            if resource.get("options", {}).get("retainOnDelete"):
                step.kept.append(urn)
                continue
            step.deleted.append(urn)
            if key is None:
                continue
            self._remove(key, step)
            if key[1] == "Namespace":
                for inside in [k for k in self.objects if k[2] == key[3]]:
                    self._remove(inside, step)
        for urn in wanted.keys() & self.state.keys():
            self.state[urn] = wanted[urn]
        return step

    def _remove(self, key: ObjectKey, step: Step) -> None:
        if self.objects.pop(key, None) is not None and key[1] in HOLDS_DATA:
            step.lost.append(f"{key[1]} {key[2]}/{key[3]}")


def kept_objects(plan: Mapping[str, Any]) -> dict[str, ObjectKey]:
    """The plan's Kubernetes objects registered with ``retain_on_delete``, by URN."""
    found = {}
    for resource in plan["resources"]:
        key = object_key(resource)
        if key is not None and resource.get("options", {}).get("retainOnDelete"):
            found[resource["urn"]] = key
    return found


CHART_CHILD = "kubernetes:helm.sh/v4:Chart$"


def kept_state_problems(plan: Mapping[str, Any]) -> list[str]:
    """Where the program's kept state would not survive a rollback or could not be taken back: a kept object
    whose provider does not upsert (AlreadyExists when the target rises again), or a kept object in a Namespace
    that the program registers without keeping it (a rollback deletes the Namespace and the object with it).

    A chart's own ``helm.sh/resource-policy: keep`` objects (Argo CD's and CloudNativePG's CRDs) are not the
    program's kept state and are left out: they belong to phase 1, below which no rollback runs (the protected
    PostgreSQL cluster stops it), and docs/operating.md says what re-raising after a deliberate one needs."""
    upsert = providers_that_upsert(plan)
    by_urn = {r["urn"]: r for r in plan["resources"]}
    namespaces = {key[3]: urn for urn, r in by_urn.items() if (key := object_key(r)) and key[1] == "Namespace"}
    problems = []
    for urn, key in kept_objects(plan).items():
        if CHART_CHILD in urn:
            continue
        if _provider_urn(by_urn[urn]) not in upsert:
            problems.append(f"{urn} is kept on rollback but its provider does not set upsertExistingObjects: "
                            "raising the target again would fail with AlreadyExists (use the kept-state provider)")
        owner = namespaces.get(key[2])
        if owner is not None and not by_urn[owner]["options"].get("retainOnDelete"):
            problems.append(f"{urn} is kept on rollback but its Namespace {key[2]} ({owner}) is not: deleting the "
                            "Namespace deletes it (register the Namespace with kept=...)")
    return problems
