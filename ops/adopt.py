"""``python -m ops adopt --at N``: take over the homelab as it runs at phase N, instead of creating what exists.

From the offline plan at N it makes the document ``pulumi import --file`` reads (and ``blumeops:adopt`` names,
phases/adoption.py): every custom resource that can already exist, with the ID its provider imports it by, its
parent and its provider as the program registers them (a ``nameTable`` of URNs):

- Kubernetes objects the program registers directly: ``<namespace>/<name>`` (cluster-scoped: ``<name>``), as
  pulumi-kubernetes imports them; the protected and kept state among them (the CNPG cluster, every claim, their
  namespaces) is imported, never created;
- the tailnet policy: ``acl`` (pulumi-tailscale: "ID doesn't matter"); a Tailscale Service: its name
  (``svc:registry``: terraform-provider-tailscale's resource_service.go makes the name the ID); a device's tags:
  the device's node ID.

With the live homelab (``--cluster``: the objects ``kubectl get`` lists, see ``snapshot_command``; the tailnet
read through the Tailscale API as the provider's import reads it, ``ops/tailnet_api.py``), the document holds
only what exists, and the command refuses, naming each object:

- an object an ArgoCD Application still manages (its ``argocd.argoproj.io/tracking-id`` annotation or its
  ``app.kubernetes.io/instance`` label names an Application the cluster still has): the fix is
  ``argocd app delete <app> --cascade=false``, which leaves the objects and ends the fight over them;
- protected or kept state the first ``pulumi up`` would replace: a field pulumi-kubernetes replaces on
  (``REPLACED_ON``) that the plan sets to another value than the live object holds.

It also lists what the first ``pulumi up`` changes on what it imports (the fields the plan sets that differ,
the tailnet policy text, a device's tags, a Service), what it creates (the plan's objects the homelab does not
have), and the live objects that hold a tailnet name one of those new objects claims. Not imported: host steps
(their create is idempotent and adopts what it finds, the operator's files kept under ``~/.blumeops/adopted``)
and a chart's objects (the provider takes them over: ``upsertExistingObjects`` while ``blumeops:adopt`` is set).

Fields the plan leaves out are not compared: with server-side apply the live value stays (or the server's
default applies), so they neither change nor force a replacement.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops import plan as offline_plan
from ops import tailnet_api
from ops.engine import lifecycle
from ops.engine.lifecycle import ObjectKey
from ops.stack import load_stack
from phases import settings as stack_settings

CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
ACL_TYPE = "tailscale:index/acl:Acl"
SERVICE_TYPE = "tailscale:index/service:Service"
TAGS_TYPE = "tailscale:index/deviceTags:DeviceTags"
TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"  # ArgoCD 3's default tracking (annotation)
TRACKING_LABEL = "app.kubernetes.io/instance"  # ArgoCD 2's default (label), still read by a label-tracking install
# The fields pulumi-kubernetes replaces an object on, for the kinds the program registers (besides metadata.name
# and metadata.namespace): provider/pkg/provider/diff.go, forceNew, pulumi/pulumi-kubernetes at 94977969d.
_SELECTOR = ("spec.selector",)
REPLACED_ON: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("", "PersistentVolumeClaim"): ("spec.accessModes", "spec.selector", "spec.storageClassName", "spec.volumeName"),
    ("", "PersistentVolume"): ("spec.nfs", "spec.hostPath", "spec.local", "spec.csi"),
    ("", "Service"): ("spec.clusterIP",),
    ("", "Secret"): ("type",),
    ("apps", "Deployment"): _SELECTOR,
    ("apps", "DaemonSet"): _SELECTOR,
    ("apps", "StatefulSet"): ("spec.podManagementPolicy", "spec.revisionHistoryLimit", "spec.selector",
                              "spec.serviceName", "spec.volumeClaimTemplates"),
    ("batch", "Job"): ("spec.completions", "spec.parallelism", "spec.selector", "spec.template"),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("roleRef",),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("roleRef",),
}
# Kinds whose replacement would cut a workload from its data, whatever their options: a volume and its claim.
STATE_KINDS = ("PersistentVolume", "PersistentVolumeClaim")
_NODE_ID = re.compile(r"^[A-Za-z0-9]+$")
_HOSTNAME_ANNOTATION = "tailscale.com/hostname"


class AdoptError(Exception):
    """What the adoption cannot be made without, or refuses (each problem with its fix)."""


# ---- the live homelab --------------------------------------------------------------------------------------




@dataclass(frozen=True, slots=True)
class LiveCluster:
    """The cluster's objects as ``kubectl get -o json`` lists them, by (group, kind, namespace, name); a Secret's
    values are dropped as it is read (never kept, never written); the ArgoCD Applications it still has."""

    objects: Mapping[ObjectKey, Mapping[str, Any]]
    applications: frozenset[str]


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def read_cluster(text: str, where: str = "the cluster snapshot") -> LiveCluster:
    try:
        listing = json.loads(text)
    except json.JSONDecodeError as err:
        raise AdoptError(f"{where} is not JSON ({err.msg}, line {err.lineno}): make it with the runbook's "
                         "`kubectl get ... -o json` command") from None
    items = listing.get("items") if isinstance(listing, dict) else None
    if not isinstance(items, list):
        raise AdoptError(f"{where} is not a list of objects (`kubectl get <kinds> -A -o json` prints one)")
    objects: dict[ObjectKey, Mapping[str, Any]] = {}
    applications: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("metadata"), dict):
            raise AdoptError(f"{where} holds an entry that is not a Kubernetes object")
        kind, group = str(item.get("kind", "")), _group(str(item.get("apiVersion", "")))
        if kind == "Secret":
            item = {key: value for key, value in item.items() if key not in ("data", "stringData")}
        metadata = item["metadata"]
        key = (group, kind, str(metadata.get("namespace") or ""), str(metadata.get("name", "")))
        objects[key] = item
        if (group, kind) == ("argoproj.io", "Application"):
            applications.add(key[3])
    return LiveCluster(objects, frozenset(applications))


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def snapshot_kinds(document: Mapping[str, Any]) -> list[str]:
    """The resources ``kubectl get`` must list for the adoption of the plan ``document``: every kind the program
    registers, its charts' included, and ArgoCD's Applications (which the adoption refuses to fight)."""
    kinds = {("argoproj.io", "Application")}
    for resource in document["resources"]:
        if not resource.get("custom") or not resource["type"].startswith("kubernetes:") or \
                resource["type"] == CHART_TYPE:
            continue
        group_version, kind = resource["type"].removeprefix("kubernetes:").rsplit(":", 1)
        group = group_version.rsplit("/", 1)[0] if "/" in group_version else ""
        kinds.add(("" if group == "core" else group, kind))
    return sorted(_plural(kind) + (f".{group}" if group else "") for group, kind in kinds)


def snapshot_command(document: Mapping[str, Any]) -> str:
    return f"kubectl get {','.join(snapshot_kinds(document))} --all-namespaces -o json"


# ---- the adoption ------------------------------------------------------------------------------------------


@dataclass
class Adoption:
    at: str
    imports: list[dict[str, Any]] = field(default_factory=list)
    name_table: dict[str, str] = field(default_factory=dict)
    not_imported: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # each with its fix; the document is not written
    changes: list[str] = field(default_factory=list)  # what the first `pulumi up` changes on what it imports
    created: list[str] = field(default_factory=list)  # what it creates: the plan's objects the homelab lacks
    new_state: list[str] = field(default_factory=list)  # protected or kept state among those: new, empty
    name_conflicts: list[str] = field(default_factory=list)  # live objects holding a name a new object claims
    managed: dict[str, list[str]] = field(default_factory=dict)  # Application -> what it still manages
    applications: list[str] = field(default_factory=list)  # the Applications to delete, in that order
    live: bool = False

    def document(self) -> dict[str, Any]:
        return {"nameTable": self.name_table, "resources": self.imports}


def _kind(resource_type: str) -> str:
    return resource_type.rsplit(":", 1)[-1]


def _object_key(resource: Mapping[str, Any]) -> ObjectKey | None:
    """The cluster identity of a plan's object (``lifecycle.object_key``), None while its namespace is unknown."""
    key = lifecycle.object_key(resource)
    return None if key is None or key[2].startswith("[") else key


def _kubernetes_id(key: ObjectKey) -> str:
    return f"{key[2]}/{key[3]}" if key[2] else key[3]


def _reference(adoption: Adoption, urn: str | None) -> str | None:
    if not urn:
        return None
    key = urn.rsplit("::", 1)[-1]
    while key in adoption.name_table and adoption.name_table[key] != urn:
        key += "-"
    adoption.name_table[key] = urn
    return key


def _direct_objects(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The Kubernetes objects the program registers itself (not a chart's, not the provider)."""
    resources = list(document["resources"])
    charts = {r["urn"] for r in resources if r["type"] == CHART_TYPE}
    return [r for r in resources if r.get("custom") and r["type"].startswith("kubernetes:")
            and r["type"] != CHART_TYPE and r.get("parent") not in charts]


def _kept(resource: Mapping[str, Any]) -> bool:
    return bool(resource["options"].get("protect") or resource["options"].get("retainOnDelete"))


def _at(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _ABSENT
        value = value[part]
    return value


_ABSENT = object()


def _differences(planned: Any, live: Any, path: str = "") -> list[str]:
    """The paths where what the plan sets differs from the live object (fields the plan leaves out: not compared;
    a list is compared whole)."""
    if isinstance(planned, Mapping) and isinstance(live, Mapping):
        found = []
        for key in sorted(planned):
            below = f"{path}.{key}" if path else str(key)
            found += _differences(planned[key], live[key], below) if key in live else [below]
        return found
    if planned == "[secret]" or planned == "[unknown]":
        return []
    return [] if _normal(planned) == _normal(live) else [path]


def _normal(value: Any) -> Any:
    # the API server writes integers where the plan may hold the same number as a string, and the reverse
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return value
    return str(value)


def _manager(live: Mapping[str, Any], applications: frozenset[str]) -> str | None:
    metadata = live.get("metadata") or {}
    tracking = str((metadata.get("annotations") or {}).get(TRACKING_ANNOTATION, ""))
    named = tracking.split(":", 1)[0] if tracking else ""
    if named and named in applications:
        return named
    label = str((metadata.get("labels") or {}).get(TRACKING_LABEL, ""))
    return label if label in applications else None


def _claimed_names(obj: Mapping[str, Any]) -> set[str]:
    """The tailnet names an Ingress or LoadBalancer Service claims from the Tailscale operator."""
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    metadata = obj.get("metadata") or {}
    if kind == "Ingress" and spec.get("ingressClassName") == "tailscale":
        return {str(host).split(".", 1)[0] for tls in spec.get("tls") or [] for host in tls.get("hosts") or []}
    if kind == "Service" and spec.get("loadBalancerClass") == "tailscale":
        name = (metadata.get("annotations") or {}).get(_HOSTNAME_ANNOTATION)
        return {str(name)} if name else set()
    return set()


def _judge_object(adoption: Adoption, resource: Mapping[str, Any], key: ObjectKey, live: LiveCluster) -> bool:
    """Compare one object with its live copy; False if it is refused (the reason is in ``adoption.refused``)."""
    obj = live.objects[key]
    label = f"{key[1]} {_kubernetes_id(key)}"
    manager = _manager(obj, live.applications)
    if manager is not None:
        adoption.managed.setdefault(manager, []).append(label)
        return False
    # A Secret's values are never in the snapshot (dropped as it is read): set from the stack's secrets, not compared
    unread = ("apiVersion", "kind", "data", "stringData") if key[1] == "Secret" else ("apiVersion", "kind")
    planned = {k: v for k, v in resource["inputs"].items() if k not in unread}
    replaced_on = REPLACED_ON.get((key[0], key[1]), ())
    replacing = [p for p in replaced_on if _at(planned, p) is not _ABSENT and _differences(_at(planned, p),
                                                                                         _at(obj, p))]
    if replacing and (_kept(resource) or key[1] in STATE_KINDS):
        adoption.refused.append(
            f"{label} holds state the first `pulumi up` would replace: the plan sets {', '.join(replacing)} to "
            "another value than the live object holds; change the program (or the setting behind it) to the live "
            "value first")
        return False
    changed = [p for p in _differences(planned, obj) if p not in ("metadata.annotations", "metadata.labels")
               and not p.startswith(("metadata.annotations.", "metadata.labels."))]
    if replacing:
        adoption.changes.append(f"{label}: replaced (the plan changes {', '.join(replacing)})")
    elif changed:
        adoption.changes.append(f"{label}: updated ({', '.join(changed)})")
    return True


def _judge_tailnet(adoption: Adoption, resource: Mapping[str, Any], tailnet: tailnet_api.LiveTailnet,
                   device: str) -> str | None:
    """The import ID of a tailnet resource that exists, after listing what the first update changes on it."""
    kind, inputs = resource["type"], resource["inputs"]
    if kind == ACL_TYPE:
        if str(inputs.get("acl", "")) != tailnet.policy:
            changed = sum(1 for line in difflib.unified_diff(tailnet.policy.splitlines(),
                                                             str(inputs.get("acl", "")).splitlines(), lineterm="")
                          if line[:1] in "+-" and line[:3] not in ("+++", "---"))
            adoption.changes.append(f"the tailnet policy: replaced by the program's ({changed} lines differ; "
                                    "`python -m ops plan` writes it under build/plan/<stack>/tailnet/)")
        return "acl"
    if kind == SERVICE_TYPE:
        name = str(inputs.get("name", ""))
        found = tailnet.services.get(name)
        if found is None:
            return None
        differing = [key for key in ("ports", "tags") if key in inputs
                     and sorted(inputs[key] or []) != sorted(found.get(key) or [])]
        if "comment" in inputs and inputs["comment"] != (found.get("comment") or ""):
            differing.append("comment")
        if differing:
            adoption.changes.append(f"the Tailscale Service {name}: updated ({', '.join(sorted(set(differing)))})")
        return name
    live_device = tailnet.device(device)
    if live_device is None:
        return None
    planned = sorted(str(tag) for tag in inputs.get("tags") or [])
    added = sorted(set(planned) - set(live_device.tags))
    removed = sorted(set(live_device.tags) - set(planned))
    if added or removed:
        adoption.changes.append(f"the tags of {device}: " + "; ".join(
            part for part in (f"adds {', '.join(added)}" if added else "",
                              f"removes {', '.join(removed)}" if removed else "") if part))
    return live_device.node_id


def first_run_instead(resource: Mapping[str, Any], direct: set[str]) -> str | None:
    """What the first ``pulumi up`` does with a resource that is never imported (a chart, a chart's object, a host
    step), in words; None for one that can be. ``direct``: the URNs of the objects the program registers itself."""
    kind = resource["type"]
    if kind == CHART_TYPE:
        return "a chart is a component of its objects: nothing to import, its objects are listed"
    if kind.startswith("kubernetes:") and resource["urn"] not in direct:
        return ("a chart's object: the provider applies the chart's fields over the live object "
                "(upsertExistingObjects while blumeops:adopt is set)")
    if kind.startswith("command:"):
        return ("a host step: its create runs and adopts what it finds (idempotent; the operator's files kept "
                "under ~/.blumeops/adopted)")
    return None


def build_adoption(document: Mapping[str, Any], at: str, node_ids: Mapping[str, str] | None = None,
                   cluster: LiveCluster | None = None, tailnet: tailnet_api.LiveTailnet | None = None) -> Adoption:
    """The adoption of the plan ``document`` at phase ``at``. Without the live homelab (``cluster``, ``tailnet``)
    every object that can exist is listed and ``node_ids`` (device name part -> node ID) give the devices'."""
    adoption = Adoption(at, live=cluster is not None)
    node_ids = node_ids or {}
    resources = list(document["resources"])
    direct = {r["urn"] for r in _direct_objects(document)}
    by_urn = {r["urn"]: r for r in resources}
    claimed_by_new: dict[str, str] = {}
    for resource in resources:
        kind, name = resource["type"], resource["name"]
        if not resource.get("custom") or kind.startswith("pulumi:providers:"):
            continue
        resource_id: str | None = None
        instead = first_run_instead(resource, direct)
        if instead is not None:
            chart_object = _object_key(resource) if cluster is not None and kind.startswith("kubernetes:") else None
            if chart_object is not None and chart_object in cluster.objects:  # type: ignore[union-attr]
                manager = _manager(cluster.objects[chart_object], cluster.applications)  # type: ignore[union-attr]
                if manager is not None:
                    adoption.managed.setdefault(manager, []).append(
                        f"{chart_object[1]} {_kubernetes_id(chart_object)}")
            adoption.not_imported.append({"name": name, "type": kind, "firstRun": instead})
            continue
        if kind.startswith("kubernetes:"):
            key = _object_key(resource)
            if key is not None and cluster is not None:
                if key not in cluster.objects:
                    adoption.created.append(f"{key[1]} {_kubernetes_id(key)}")
                    if _kept(resource):
                        adoption.new_state.append(f"{key[1]} {_kubernetes_id(key)}")
                    for claimed in _claimed_names(resource["inputs"]):
                        claimed_by_new[claimed] = f"{key[1]} {_kubernetes_id(key)}"
                    key = None
                elif not _judge_object(adoption, resource, key, cluster):
                    continue
            resource_id = _kubernetes_id(key) if key is not None else None
        elif kind in (ACL_TYPE, SERVICE_TYPE, TAGS_TYPE):
            device = name.removeprefix("tailnet-").removesuffix("-tags")
            if tailnet is not None:
                resource_id = _judge_tailnet(adoption, resource, tailnet, device)
                if resource_id is None and kind == TAGS_TYPE:
                    adoption.refused.append(f"the device {device} is not in the tailnet: join it (`tailscale up`) "
                                            "before the adoption")
                    continue
                if resource_id is None:
                    adoption.created.append(f"the Tailscale Service {resource['inputs'].get('name')}")
            elif kind == ACL_TYPE:
                resource_id = "acl"
            elif kind == SERVICE_TYPE:
                resource_id = str(resource["inputs"].get("name") or "") or None
            else:
                resource_id = node_ids.get(device)
                if resource_id is None:
                    raise AdoptError(f"the tags of {device} are imported by its node ID: give --node-id {device}=<id> "
                                     f"(`tailscale status --json | jq -r .Self.ID` on {device})")
        if resource_id is None:
            if not adoption.live or not kind.startswith(("kubernetes:", "tailscale:")):
                adoption.not_imported.append({"name": name, "type": kind, "firstRun": (
                    "created: it has no name the program knows before the run, or cannot already exist")})
            continue
        entry: dict[str, Any] = {"type": kind, "name": name, "id": resource_id}
        parent = _reference(adoption, resource.get("parent"))
        provider = _reference(adoption, resource.get("provider") if resource.get("provider") in by_urn else None)
        if parent:
            entry["parent"] = parent
        if provider:
            entry["provider"] = provider
        if resource["options"].get("protect"):
            entry["protect"] = True
        adoption.imports.append(entry)
    if cluster is not None:
        _hand_over_argocd(adoption, cluster)
        imported = {(e["type"], e["id"]) for e in adoption.imports}
        for key, obj in sorted(cluster.objects.items()):
            for claimed in sorted(_claimed_names(obj) & set(claimed_by_new)):
                if not any(i == _kubernetes_id(key) for _, i in imported):
                    adoption.name_conflicts.append(
                        f"the live {key[1]} {_kubernetes_id(key)} holds the name {claimed}, which the new "
                        f"{claimed_by_new[claimed]} claims: the new one comes up as {claimed}-1 while the live one "
                        f"serves {claimed}; after the first `pulumi up`, delete the live one (`kubectl -n {key[2]} "
                        f"delete {key[1].lower()} {key[3]}`), then `pulumi up --replace` the new one so it claims "
                        f"{claimed} (the name is without a service for that minute)")
    return adoption


def _hand_over_argocd(adoption: Adoption, cluster: LiveCluster) -> None:
    """Refuse what an Application still manages, one problem per Application, and order the deletions: an
    Application that manages other Applications (the app-of-apps ``apps``) first, or its next sync brings back
    the ones deleted before it."""
    if not adoption.managed:
        return
    needed = set(adoption.managed)
    parent: dict[str, str | None] = {}
    frontier = sorted(needed)
    while frontier:
        app = frontier.pop()
        owner = _manager(cluster.objects.get(("argoproj.io", "Application", "argocd", app), {}),
                         cluster.applications)
        parent[app] = owner if owner != app else None
        if parent[app] and parent[app] not in needed:
            needed.add(str(parent[app]))
            frontier.append(str(parent[app]))

    def depth(app: str) -> int:
        seen, count = {app}, 0
        while parent.get(app) and parent[app] not in seen:
            app = str(parent[app])
            seen.add(app)
            count += 1
        return count

    adoption.applications = sorted(needed, key=lambda app: (depth(app), app))
    for app in adoption.applications:
        what = adoption.managed.get(app) or [
            "the Applications " + ", ".join(sorted(child for child, owner in parent.items() if owner == app))]
        adoption.refused.append(
            f"the ArgoCD Application {app} still manages {', '.join(what)}: run `argocd app delete {app} "
            "--cascade=false` (the objects stay), then take the snapshot again")


def _node_ids(values: Sequence[str]) -> dict[str, str]:
    found = {}
    for value in values:
        device, _, node_id = value.partition("=")
        if not device or not _NODE_ID.match(node_id):
            raise AdoptError(f"--node-id {value!r}: write <device>=<node ID>, e.g. indri=nAbC123CNTRL")
        found[device] = node_id
    return found


# ---- the command -------------------------------------------------------------------------------------------


def read_live_tailnet(document: Mapping[str, Any], base_url: str,
                      environ: Mapping[str, str]) -> tailnet_api.LiveTailnet:
    """The tailnet of the credential in ``environ`` (``-``), as the import of the plan's tailnet resources reads it."""
    services = [str(r["inputs"].get("name")) for r in document["resources"] if r["type"] == SERVICE_TYPE]
    devices = _devices(document)
    token = tailnet_api.access_token(base_url, environ)
    return tailnet_api.read_tailnet(base_url, "-", token, services, device_names=devices)


def live_adoption(document: Mapping[str, Any], at: str, source: str, base_url: str,
                  environ: Mapping[str, str]) -> Adoption:
    """The adoption of the plan ``document`` against the live homelab: the cluster snapshot in the file ``source``
    (``-``: stdin), the tailnet through its API at ``base_url``. Raises AdoptError, TailnetApiError or OSError."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    cluster = read_cluster(text, "stdin" if source == "-" else source)
    return build_adoption(document, at, None, cluster, read_live_tailnet(document, base_url, environ))


def report(adoption: Adoption) -> str:
    lines = [f"adoption at phase {adoption.at}: {len(adoption.imports)} resources to import"]
    for title, items in (("the first `pulumi up` changes", adoption.changes),
                         ("it creates (the homelab does not have them)", adoption.created),
                         ("new, empty state among those", adoption.new_state),
                         ("tailnet names held by a live object the program does not have", adoption.name_conflicts)):
        if items:
            lines.append(f"{title}:")
            lines += [f"  - {item}" for item in items]
    lines.append(f"{len(adoption.not_imported)} host steps and chart objects: run or applied over the live ones")
    return "\n".join(lines) + "\n"


def runbook(document: Mapping[str, Any], at: str, stack: str, adoption: Adoption | None = None) -> str:
    """The adoption's runbook, in the homelab's terms: from the homelab as it runs (facts.md) to the stack at
    ``at``. With ``adoption`` (made from the live homelab), its steps name the exact Applications, conflicts and
    changes; without, they say where those come from."""
    pipe = f"{snapshot_command(document)} | python -m ops adopt --at {at} --cluster - --out adopt/{stack}.json"
    steps: list[str] = [
        "On gilbert, with the homelab's kubeconfig (`~/.kube/minikube-indri/config.yml`) and the tailnet's OAuth "
        "client in TAILSCALE_OAUTH_CLIENT_ID / TAILSCALE_OAUTH_CLIENT_SECRET (the one `mise run tailnet-up` uses), "
        f"read the homelab (the snapshot goes through a pipe: no file holds the Secrets' values):\n\n    {pipe}\n",
    ]
    if adoption is None or adoption.applications:
        apps = adoption.applications if adoption is not None else []
        listed = "".join(f"\n    argocd app delete {app} --cascade=false" for app in apps) or \
            "\n    argocd app delete <app> --cascade=false   # each Application the previous step names"
        steps.append("Hand ArgoCD over: delete each Application that still manages what the program takes, the "
                     "app-of-apps `apps` first (or its next sync brings the others back), without cascading: the "
                     f"objects stay, ArgoCD stops syncing them:\n{listed}\n")
        steps.append("Read the homelab again (the command of step 1): it writes the document now.")
    conflicts = adoption.name_conflicts if adoption is not None else []
    steps += [
        f"Commit `adopt/{stack}.json`, name it and target the phase the homelab is at: `pulumi config set "
        f"blumeops:adopt adopt/{stack}.json -s {stack}` and `pulumi config set blumeops:phase {at} -s {stack}`.",
        f"`pulumi preview --diff --policy-pack policy -s {stack}`: every resource of the document shows as `= import`; "
        "no protected or kept object is replaced or deleted (the preview refuses to delete a protected one).",
        f"`pulumi up -s {stack}`: the import, then the update to the program's inputs (the changes below); the "
        "host steps' creates adopt what they find; the charts are applied over their live objects.",
        *(f"Then {conflict}." for conflict in conflicts),
        f"`pulumi config rm blumeops:adopt -s {stack}` and `pulumi up -s {stack}` again: the provider stops "
        "upserting; nothing else changes.",
        f"`python -m ops check --stack {stack}`: every service answers where the homelab had it.",
    ]
    lines = [f"# Adopting the homelab at phase {at} (stack {stack})", "",
             f"From the homelab as it runs (`../shared/docs/facts.md`: phases 0-{at} done by hand, ansible and "
             f"ArgoCD) to the stack at {at}, without creating what exists. {len(steps)} manual steps.", ""]
    lines += [f"{number}. {text}" for number, text in enumerate(steps, 1)]
    if adoption is not None:
        for title, items in (("What the first `pulumi up` changes", adoption.changes),
                             ("What it creates (the homelab does not have it)", adoption.created),
                             ("New, empty state among that", adoption.new_state)):
            if items:
                lines += ["", f"## {title}", ""] + [f"- {item}" for item in items]
    else:
        lines += ["", "The changes the first `pulumi up` makes, what it creates and the names live objects hold "
                  f"are listed by step 1's command (and by `python -m ops runbook --adopt {at} --cluster <snapshot>`)."]
    direct = {r["urn"] for r in _direct_objects(document)}
    kinds = Counter(what for r in document["resources"] if r.get("custom") and not r["type"].startswith(
        "pulumi:providers:") and (what := first_run_instead(r, direct)) is not None)
    lines += ["", "## Not imported", ""] + [f"- {count}: {what}" for what, count in sorted(kinds.items())]
    return "\n".join(lines) + "\n"


def _devices(document: Mapping[str, Any]) -> list[str]:
    return [r["name"].removeprefix("tailnet-").removesuffix("-tags") for r in document["resources"]
            if r["type"] == TAGS_TYPE]


def command(args: argparse.Namespace) -> int:
    try:
        node_ids = _node_ids(args.node_id or [])
        stack = load_stack(args.stack, args.at)
        plan = offline_plan.build_plan(stack)
        adoption = (live_adoption(plan.document, args.at, args.cluster, args.tailscale_api, os.environ)
                    if args.cluster else build_adoption(plan.document, args.at, node_ids))
    except (AdoptError, tailnet_api.TailnetApiError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if adoption.refused:
        print(f"error: the adoption at phase {args.at} is refused ({len(adoption.refused)} problems); nothing was "
              "written:", file=sys.stderr)
        for problem in adoption.refused:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    text = json.dumps(adoption.document(), indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    sys.stderr.write(report(adoption))
    if not adoption.live:
        print("not checked against the live homelab (no --cluster): take out what it does not have before "
              "`pulumi import`, which fails on an ID it cannot read", file=sys.stderr)
    return 0


def add_parser(sub: Any, run: Any) -> None:
    adopt = sub.add_parser("adopt", help="the `pulumi import --file` document that takes over the homelab at phase N")
    adopt.add_argument("--stack", default="indri")
    adopt.add_argument("--at", required=True, choices=stack_settings.PHASE_IDS,
                       help="the phase the homelab really is at")
    adopt.add_argument("--cluster", help="the live cluster: a file, or - for stdin, of `kubectl get <kinds> -A -o "
                                         "json` (`python -m ops runbook --adopt N` prints the command); the tailnet "
                                         "is then read through the Tailscale API (TAILSCALE_OAUTH_CLIENT_ID/_SECRET)")
    adopt.add_argument("--tailscale-api", default=tailnet_api.DEFAULT_BASE_URL, help=argparse.SUPPRESS)
    adopt.add_argument("--node-id", action="append",
                       help="without --cluster: a device's node ID, indri=<id> (tailscale status --json)")
    adopt.add_argument("--out", help="write the document here (blumeops:adopt names it), e.g. adopt/indri.json")
    adopt.set_defaults(func=run)
