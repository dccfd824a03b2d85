"""Adoption of the homelab as it runs (``blumeops:adopt``): the first ``pulumi up`` over a live indri, tailnet and
cluster imports what already exists instead of creating it.

``python -m ops adopt --at N --cluster <snapshot> --out adopt/indri.json`` reads the live homelab and writes the
document ``pulumi import --file`` reads (``{"nameTable": ..., "resources": [{"type", "name", "id", ...}]}``): only
what exists, never an object an ArgoCD Application still manages, and protected state only when the plan
cannot replace it. With ``blumeops:adopt`` naming that file, the program gives each resource the document lists
the ``import`` option with its ID, so that run imports it, then updates it to the program's inputs (Pulumi's
import-then-update, pulumi/pulumi#19339); nothing it lists is created. A chart's objects cannot be imported
one by one (the provider creates them): the phases' Kubernetes provider upserts existing objects for as long
as the setting is set. ``pulumi config rm blumeops:adopt`` after the first ``up``; leaving it set changes
nothing for an imported resource (the import option is ignored once the resource is in the stack's state).

The document is read and checked when the settings load, before any resource is registered. A listed
resource the program does not register at the stack's target fails the run after registration (the program
cannot know its resources before it has registered them): ``pulumi preview`` says so before ``up`` runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from phases.parsers import InvalidValueError

ROOT = Path(__file__).resolve().parent.parent
_RELATIVE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*\.json$")
# The ID forms the providers import by (ops/adopt.py says where each comes from).
_IDS = {
    "tailscale:index/acl:Acl": re.compile(r"^acl$"),
    "tailscale:index/service:Service": re.compile(r"^svc:[a-z0-9][a-z0-9-]{0,62}$"),
    "tailscale:index/deviceTags:DeviceTags": re.compile(r"^[A-Za-z0-9]+$"),
}
_KUBERNETES_ID = re.compile(r"^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Adoption:
    """The resources a first ``pulumi up`` imports, by (type, name), each with its provider's ID."""

    path: str
    imports: Mapping[tuple[str, str], str]


def _id_problem(kind: str, resource_id: str) -> str | None:
    if kind.startswith("kubernetes:"):
        return None if _KUBERNETES_ID.match(resource_id) else "is not <namespace>/<name> or <name>"
    pattern = _IDS.get(kind)
    if pattern is None:
        return "is a type the adoption does not import (only Kubernetes objects and the tailnet's resources)"
    return None if pattern.match(resource_id) else f"does not have the form {pattern.pattern}"


def read_document(text: str, where: str) -> Adoption:
    """The adoption in the ``pulumi import --file`` document ``text``; ``InvalidValueError`` names what is wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidValueError(f"{where} is not JSON ({err.msg}, line {err.lineno})") from None
    resources = document.get("resources") if isinstance(document, dict) else None
    if not isinstance(resources, list):
        raise InvalidValueError(f"{where} has no \"resources\" list: it is not a document `python -m ops adopt` wrote")
    imports: dict[tuple[str, str], str] = {}
    for number, entry in enumerate(resources):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("type", "name", "id")):
            raise InvalidValueError(f"{where}: resources[{number}] needs the strings type, name and id")
        kind, name, resource_id = entry["type"], entry["name"], entry["id"]
        problem = _id_problem(kind, resource_id)
        if problem:
            raise InvalidValueError(f"{where}: resources[{number}] ({kind} {name}): the ID {resource_id!r} {problem}")
        if (kind, name) in imports:
            raise InvalidValueError(f"{where}: {kind} {name} is listed twice")
        imports[(kind, name)] = resource_id
    return Adoption(path=where, imports=imports)


def adoption_document(raw: Any) -> Adoption:
    """The setting's parser: a path relative to the project (``adopt/indri.json``), read and checked now."""
    if not isinstance(raw, str) or not _RELATIVE.match(raw.strip()) or ".." in raw.split("/"):
        raise InvalidValueError(
            "expected the path of the adoption document relative to the project, e.g. adopt/indri.json "
            "(`python -m ops adopt --at <phase> --out adopt/indri.json` writes it)")
    path = ROOT / raw.strip()
    try:
        text = path.read_text()
    except OSError as err:
        raise InvalidValueError(f"cannot read {raw.strip()} ({err.strerror}): write it with `python -m ops adopt "
                                f"--at <phase> --out {raw.strip()}`") from None
    try:
        return read_document(text, raw.strip())
    except InvalidValueError as err:
        raise InvalidValueError(f"{err}; write it again with `python -m ops adopt --at <phase> --cluster <snapshot> "
                                f"--out {raw.strip()}`") from None


@dataclass
class Importing:
    """The stack transformation that gives each listed resource its ``import`` option; ``unmatched`` what no
    registration asked for."""

    adoption: Adoption
    matched: set[tuple[str, str]] = field(default_factory=set)

    def __call__(self, args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        key = (args.type_, args.name)
        resource_id = self.adoption.imports.get(key)
        if resource_id is None:
            return None
        self.matched.add(key)
        opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(import_=resource_id))
        return pulumi.ResourceTransformationResult(args.props, opts)

    def unmatched(self) -> list[str]:
        return [f"{kind} {name}" for kind, name in sorted(set(self.adoption.imports) - self.matched)]


def start(adoption: Adoption) -> Importing:
    """Register the transformation (before the first resource). Pulumi's legacy stack transformation: it runs in
    the SDK, so it applies under the real engine and under ops' mock engine alike; the newer
    ``register_resource_transform`` needs the engine's callback server, which the offline plan does not have."""
    importing = Importing(adoption)
    pulumi.runtime.register_stack_transformation(importing)
    return importing
