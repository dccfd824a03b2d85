"""``python -m ops adopt --at N``: the document ``pulumi import --file`` reads to take over the homelab as it runs at
phase N, instead of creating what already exists.

From the offline plan at N it lists every custom resource that can already exist, with the ID its provider
imports it by, its parent and its provider as the program registers them (a ``nameTable`` of URNs, as
``pulumi import`` expects):

- Kubernetes objects the program registers directly: ``<namespace>/<name>`` (cluster-scoped: ``<name>``), as
  pulumi-kubernetes imports them; the protected and kept state among them (the CNPG cluster, every claim, their
  namespaces) is imported, never created;
- the tailnet policy: ``acl`` (pulumi-tailscale: "ID doesn't matter"); a Tailscale Service: its name
  (``svc:registry``: terraform-provider-tailscale's resource_service.go makes the name the ID); a device's tags:
  the device's node ID, which only the tailnet knows: given with ``--node-id indri=<id>``
  (``tailscale status --json | jq -r .Self.ID`` on the device), refused without it.

And what is not imported, with what the first ``pulumi up`` does instead: host steps run their create, which is
idempotent and adopts what it finds (the operator's files kept under ``~/.blumeops/adopted``); a chart's objects
are applied over the live ones by the chart (server-side apply of the same fields); objects the program creates
with generated names or that exist only from a phase above N are created.

What this does not do yet (issue 25; docs/operating.md, "Known limits"): read the live cluster and tailnet. The
document lists every object of the plan at N that *can* exist; one the homelab does not have (its phase 6 ran
Transmission on an emptyDir, so there is no claim transmission-config) must be taken out before
``pulumi import``, which fails on an ID it cannot read. Nor is an object that an ArgoCD Application still
manages refused here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops import plan as offline_plan
from ops.stack import load_stack
from phases import settings as stack_settings

# Kinds a cluster holds once, not per namespace (the ones the program registers directly).
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "StorageClass", "ProxyClass"}
_NODE_ID = re.compile(r"^[A-Za-z0-9]+$")


class AdoptError(Exception):
    """What the adoption document cannot be made without (a device's node ID)."""


@dataclass
class Adoption:
    at: str
    imports: list[dict[str, Any]] = field(default_factory=list)
    name_table: dict[str, str] = field(default_factory=dict)
    not_imported: list[dict[str, str]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {"nameTable": self.name_table, "resources": self.imports}


def _kind(resource_type: str) -> str:
    return resource_type.rsplit(":", 1)[-1]


def _kubernetes_id(resource: Mapping[str, Any]) -> str | None:
    metadata = resource["inputs"].get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name or "[unknown]" in name:
        return None
    if _kind(resource["type"]) in CLUSTER_SCOPED:
        return name
    namespace = metadata.get("namespace") or "default"
    return f"{namespace}/{name}" if isinstance(namespace, str) and "[unknown]" not in namespace else None


def _reference(adoption: Adoption, urn: str | None) -> str | None:
    if not urn:
        return None
    key = urn.rsplit("::", 1)[-1]
    while key in adoption.name_table and adoption.name_table[key] != urn:
        key += "-"
    adoption.name_table[key] = urn
    return key


def build_adoption(document: Mapping[str, Any], at: str, node_ids: Mapping[str, str]) -> Adoption:
    """The adoption of the plan ``document`` at phase ``at``; ``node_ids``: device name part -> node ID."""
    adoption = Adoption(at)
    resources = list(document["resources"])
    by_urn = {r["urn"]: r for r in resources}
    chart_children = {r["urn"] for r in resources
                      if r.get("parent") and by_urn.get(r["parent"], {}).get("type") == "kubernetes:helm.sh/v4:Chart"}
    for resource in resources:
        kind, name, urn = resource["type"], resource["name"], resource["urn"]
        if not resource.get("custom") or kind.startswith("pulumi:providers:"):
            continue
        resource_id: str | None = None
        if urn in chart_children:
            adoption.not_imported.append({"name": name, "type": kind, "firstRun": (
                "a chart's object: the chart applies its fields over the live object (server-side apply)")})
            continue
        if kind == "kubernetes:helm.sh/v4:Chart":
            adoption.not_imported.append({"name": name, "type": kind, "firstRun": (
                "a chart is a component of its objects: nothing to import, its objects are listed")})
            continue
        if kind.startswith("kubernetes:"):
            resource_id = _kubernetes_id(resource)
        elif kind == "tailscale:index/acl:Acl":
            resource_id = "acl"
        elif kind == "tailscale:index/service:Service":
            resource_id = str(resource["inputs"].get("name") or "") or None
        elif kind == "tailscale:index/deviceTags:DeviceTags":
            device = name.removeprefix("tailnet-").removesuffix("-tags")
            resource_id = node_ids.get(device)
            if resource_id is None:
                raise AdoptError(f"the tags of {device} are imported by its node ID: give --node-id {device}=<id> "
                                 f"(`tailscale status --json | jq -r .Self.ID` on {device})")
        elif kind.startswith("command:"):
            adoption.not_imported.append({"name": name, "type": kind, "firstRun": (
                "a host step: its create runs and adopts what it finds (idempotent; the operator's files kept "
                "under ~/.blumeops/adopted)")})
            continue
        if resource_id is None:
            adoption.not_imported.append({"name": name, "type": kind, "firstRun": (
                "created: it has no name the program knows before the run, or cannot already exist")})
            continue
        entry: dict[str, Any] = {"type": kind, "name": name, "id": resource_id}
        parent = _reference(adoption, resource.get("parent"))
        provider = _reference(adoption, resource.get("provider"))
        if parent:
            entry["parent"] = parent
        if provider:
            entry["provider"] = provider
        if resource["options"].get("protect"):
            entry["protect"] = True
        adoption.imports.append(entry)
    return adoption


def _node_ids(values: Sequence[str]) -> dict[str, str]:
    found = {}
    for value in values:
        device, _, node_id = value.partition("=")
        if not device or not _NODE_ID.match(node_id):
            raise AdoptError(f"--node-id {value!r}: write <device>=<node ID>, e.g. indri=nAbC123CNTRL")
        found[device] = node_id
    return found


def command(args: argparse.Namespace) -> int:
    try:
        node_ids = _node_ids(args.node_id or [])
        plan = offline_plan.build_plan(load_stack(args.stack, args.at))
        adoption = build_adoption(plan.document, args.at, node_ids)
    except AdoptError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    text = json.dumps(adoption.document(), indent=2, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    print(f"adoption at phase {args.at}: {len(adoption.imports)} resources to import "
          f"(`pulumi import --file {args.out or '<this document>'}`), {len(adoption.not_imported)} that the first "
          "`pulumi up` creates, applies or runs instead", file=sys.stderr)
    return 0


def add_parser(sub: Any, run: Any) -> None:
    adopt = sub.add_parser("adopt", help="the `pulumi import --file` document that takes over the homelab at phase N")
    adopt.add_argument("--stack", default="indri")
    adopt.add_argument("--at", required=True, choices=stack_settings.PHASE_IDS,
                       help="the phase the homelab really is at")
    adopt.add_argument("--node-id", action="append", help="a device's node ID: indri=<id> (tailscale status --json)")
    adopt.add_argument("--out", help="write the document here")
    adopt.set_defaults(func=run)
