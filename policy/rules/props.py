"""Small accessors for resource properties as the engine hands them to a rule.

At runtime the properties are `pulumi_policy` proxies: `Mapping`/`Sequence` objects, not dicts and
lists, and touching an unknown value raises `UnknownValueError` (which the pack turns into the
engine's advisory "can't run policy" diagnostic). So these helpers test against the
`collections.abc` types, treat `str` as a scalar, and never swallow `UnknownValueError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any


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
