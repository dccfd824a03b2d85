"""What a resource is: the Kubernetes objects it creates or patches, read from its type token.

A rule must not depend on the spelling of a type token or on a wrapper around the object it judges:

- `kubernetes:apps/v1:DeploymentPatch` (server-side apply patches) is judged as a Deployment, but only
  on the fields it sets (a patch that does not mention `ingressClassName` leaves it as it was);
- `kubernetes:apps/v1:DeploymentList` is judged item by item, each item as its own `kind`;
- `kubernetes:yaml/v2:ConfigGroup` (and the v1 ConfigGroup/ConfigFile) is judged object by object, from
  `objs` and from its inline `yaml` text (`objects-visible-to-the-pack` refuses the renderers whose objects the
  pack cannot read this way: v1, `files`, kustomize, Helm v3);
- a custom resource is `kubernetes:<group>/<version>:<Kind>`; its own `apiVersion`/`kind` fields count too;
- kinds and groups are compared in lower case, so `kubernetes:Apps/v1:deployment` is a Deployment.

Everything else (`blumeops:host:LaunchAgent`, `command:remote:Command`, ...) is one object whose kind
is the last part of its token.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from rules.props import Path, get, get_str, is_list, is_mapping

PATCH_SUFFIX = "patch"
LIST_SUFFIX = "list"
CONFIG_GROUP_KINDS = frozenset({"configgroup", "configfile"})
# Keys whose values are payloads (text a program reads), never Kubernetes fields to judge.
PAYLOAD_KEYS = frozenset({"data", "stringdata", "binarydata"})
PAYLOAD_KINDS = frozenset({"configmap", "secret"})


@dataclass(frozen=True, slots=True)
class TypeToken:
    package: str  # "kubernetes", "command", "blumeops" (lower case)
    module: str  # "apps/v1", "remote", "host" (lower case)
    name: str  # the last part as written: "DeploymentPatch", "Command"

    @property
    def kind(self) -> str:
        """The kind in lower case, without a Patch/List suffix."""
        lowered = self.name.lower()
        for suffix in (PATCH_SUFFIX, LIST_SUFFIX):
            if lowered.endswith(suffix) and len(lowered) > len(suffix):
                return lowered[: -len(suffix)]
        return lowered

    @property
    def is_patch(self) -> bool:
        lowered = self.name.lower()
        return lowered.endswith(PATCH_SUFFIX) and len(lowered) > len(PATCH_SUFFIX)

    @property
    def is_list(self) -> bool:
        lowered = self.name.lower()
        return lowered.endswith(LIST_SUFFIX) and len(lowered) > len(LIST_SUFFIX)

    @property
    def group(self) -> str:
        """The Kubernetes API group ("" for core) of a kubernetes token; else `package:module`."""
        if self.package != "kubernetes":
            return f"{self.package}:{self.module}"
        return _group_of(self.module)


def parse_type(resource_type: str) -> TypeToken:
    parts = resource_type.split(":")
    if len(parts) < 3:
        return TypeToken(parts[0].lower(), "", parts[-1])
    return TypeToken(parts[0].lower(), ":".join(parts[1:-1]).lower(), parts[-1])


def _group_of(api_version: str) -> str:
    """`apps/v1` -> `apps`; `v1` and `core/v1` -> ""; `tailscale.com/v1alpha1` -> `tailscale.com`."""
    lowered = api_version.strip().lower()
    if "/" not in lowered:
        return ""
    group = lowered.split("/", 1)[0]
    return "" if group == "core" else group


def is_command(resource_type: str) -> bool:
    token = parse_type(resource_type)
    return token.package == "command" and token.module in ("remote", "local") and token.kind == "command"


@dataclass(frozen=True, slots=True)
class K8sObject:
    """One object a resource creates or patches."""

    kinds: frozenset[str]  # lower case: from the type token and from the object's own `kind`
    groups: frozenset[str]  # lower case API groups ("" = core)
    props: Any
    path: Path  # where the object sits in the resource: () for the resource itself
    patch: bool  # a *Patch: only the fields it sets are judged
    label: str  # the kind as written, for messages

    def is_kind(self, *kinds: str) -> bool:
        return any(kind in self.kinds for kind in kinds)

    def in_group(self, *groups: str) -> bool:
        return any(group in self.groups for group in groups)


def _object(props: Any, path: Path, token: TypeToken, kind_hint: str | None) -> K8sObject:
    kinds = {token.kind} if kind_hint is None else {kind_hint}
    groups = {token.group}
    own_kind = get_str(props, "kind")
    if own_kind:
        own = parse_type(f"x:x:{own_kind}")
        kinds.add(own.kind)
    api_version = get_str(props, "apiVersion")
    if api_version:
        groups.add(_group_of(api_version))
    label = own_kind or (token.name if kind_hint is None else kind_hint)
    return K8sObject(frozenset(kinds), frozenset(groups), props, path, token.is_patch, label)


def objects(resource_type: str, props: Any) -> list[K8sObject]:
    """The resource itself, then every object it carries (List items, ConfigGroup objs and yaml)."""
    token = parse_type(resource_type)
    found = [_object(props, (), token, None)]
    if token.package != "kubernetes":
        return found
    if token.is_list or token.kind == LIST_SUFFIX:
        items = get(props, "items")
        if is_list(items):
            for index in range(len(items)):
                item = items[index]
                if is_mapping(item):
                    found.append(_object(item, ("items", index), token, token.kind))
    if token.kind in CONFIG_GROUP_KINDS:
        found.extend(_config_group_objects(props, token))
    return found


def _config_group_objects(props: Any, token: TypeToken) -> Iterator[K8sObject]:
    objs = get(props, "objs")
    if is_list(objs):
        for index in range(len(objs)):
            item = objs[index]
            if is_mapping(item):
                yield _object(item, ("objs", index), token, get_str(item, "kind") or "unknown")
    texts = get(props, "yaml")
    texts = [texts] if isinstance(texts, str) else (list(texts) if is_list(texts) else [])
    for text_index, text in enumerate(texts):
        if not isinstance(text, str):
            continue
        for doc_index, document in enumerate(load_yaml_documents(text)):
            if is_mapping(document):
                yield _object(document, ("yaml", text_index, doc_index), token,
                              get_str(document, "kind") or "unknown")


def load_yaml_documents(text: str) -> list[Any]:
    """Every document of a YAML text; a text that is not YAML yields one string document (judged as
    text by the rules that read text) rather than hiding what it holds."""
    try:
        return [document for document in yaml.safe_load_all(text) if document is not None]
    except yaml.YAMLError:
        return [text]
