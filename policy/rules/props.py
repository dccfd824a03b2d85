"""Small accessors for resource properties as the engine hands them to a rule.

At runtime the properties are `pulumi_policy` proxies: `Mapping`/`Sequence` objects, not dicts and
lists, and touching an unknown value raises `UnknownValueError` (which the pack turns into the
engine's advisory "can't run policy" diagnostic). So these helpers test against the
`collections.abc` types, treat `str` as a scalar, and never swallow `UnknownValueError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy.proxy import UnknownValueError


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    """A JSON array: a Sequence that is not a string."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def get(obj: Any, *path: str | int) -> Any:
    """Walk `path` through mappings (str keys) and lists (int keys); None when any step is missing."""
    current = obj
    for step in path:
        if isinstance(step, int):
            if not is_list(current) or not -len(current) <= step < len(current):
                return None
            current = current[step]
        else:
            if not is_mapping(current) or step not in current:
                return None
            current = current[step]
    return current


def get_str(obj: Any, *path: str | int) -> str | None:
    value = get(obj, *path)
    return value if isinstance(value, str) else None


def mapping_items(value: Any) -> Iterator[Mapping[str, Any]]:
    """The mapping elements of a list (others are skipped)."""
    if is_list(value):
        for item in value:
            if is_mapping(item):
                yield item


def str_items(value: Any) -> list[str]:
    """The string elements of a list (others are skipped)."""
    if not is_list(value):
        return []
    return [item for item in value if isinstance(item, str)]


def kind_of(resource_type: str) -> str:
    """`kubernetes:apps/v1:Deployment` -> `Deployment`; `blumeops:host:LaunchAgent` -> `LaunchAgent`."""
    return resource_type.rsplit(":", 1)[-1]


def describe(resource_type: str, name: str, props: Any = None) -> str:
    """How a message names a resource: its kind, its Pulumi name and, if different, its k8s name."""
    label = f"{kind_of(resource_type)} '{name}'"
    k8s_name = get_str(props, "metadata", "name") if props is not None else None
    namespace = get_str(props, "metadata", "namespace") if props is not None else None
    if k8s_name and k8s_name != name:
        label += f" ({namespace + '/' if namespace else ''}{k8s_name})"
    elif k8s_name and namespace:
        label += f" (namespace {namespace})"
    return label


Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """("spec", "containers", 0, "image") -> "spec.containers[0].image"."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


@dataclass(frozen=True, slots=True)
class Entry:
    """One key of one mapping somewhere in a resource: `parent[key]` is `value`, `path` leads to it.

    `value` is None with `unknown` set when the value is not known during preview; a rule decides
    whether that matters (an unknown image does, an unknown label does not)."""

    path: Path
    parent: Mapping[str, Any]
    key: str
    value: Any
    unknown: UnknownValueError | None = None
    # The key in lower case: Kubernetes and Helm keys are judged whatever their casing (computed once: a
    # walk's entries are shared by every rule).
    name: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.key.lower())


def walk(value: Any, path: Path = (), prune: Callable[[Entry], bool] | None = None) -> Iterator[Entry]:
    """Every key of every mapping at any depth (lists included), depth first, in order.

    Never raises UnknownValueError: an unknown value is yielded as an Entry with `unknown` set and
    not descended into. `prune(entry)` true: yield the entry but do not descend into its value.
    Iterative (a stack of the levels being read), so an entry costs the same at depth 35 as at depth 1:
    nested `yield from` would pass every entry up through each level above it."""
    levels: list[Iterator[tuple[Entry | None, Any, Path]]] = [_children(value, path)]
    while levels:
        step = next(levels[-1], None)
        if step is None:
            levels.pop()
            continue
        entry, child, child_path = step
        if entry is not None:
            yield entry
            if entry.unknown is not None or (prune is not None and prune(entry)):
                continue
        levels.append(_children(child, child_path))


def _children(value: Any, path: Path) -> Iterator[tuple[Entry | None, Any, Path]]:
    """One level of `walk`: (the entry of each key of a mapping, or None for a list item; the value to
    descend into; its path)."""
    if is_mapping(value):
        for key in list(value):
            child_path = (*path, str(key))
            try:
                child = value[key]
            except UnknownValueError as exc:
                yield Entry(child_path, value, str(key), None, exc), None, child_path
                continue
            yield Entry(child_path, value, str(key), child), child, child_path
    elif is_list(value):
        for index in range(len(value)):
            try:
                item = value[index]
            except UnknownValueError:
                continue
            yield None, item, (*path, index)


def key_of(mapping: Any, name: str) -> Any:
    """`mapping[name]` matched without regard to case (`hostnetwork`, `HostNetwork`); None if absent.
    An exact match wins over a case-folded one."""
    if not is_mapping(mapping):
        return None
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    for key in mapping:
        if isinstance(key, str) and key.lower() == lowered:
            return mapping[key]
    return None


def truthy(value: Any) -> bool:
    """A YAML/JSON true: `true`, or a string Kubernetes or Helm would read as true."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1")
