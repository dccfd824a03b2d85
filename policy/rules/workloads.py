"""Where container images and pod specs live in the resources the program registers.

Judged only by type token and properties: the Kubernetes workload kinds, the Helm chart component
(whose `values` pin the images of the chart), and the custom resources that name images
(Tailscale ProxyClass / DNSConfig, the CloudNativePG Cluster).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from rules.props import get, get_str, is_list, is_mapping, mapping_items

# type token -> path to the pod spec inside the resource's properties
POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:core/v1:PodTemplate": ("template", "spec"),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
HELM_CHART_TYPES = frozenset(
    {
        "kubernetes:helm.sh/v4:Chart",
        "kubernetes:helm.sh/v3:Chart",
        "kubernetes:helm.sh/v3:Release",
    }
)
PROXY_CLASS = "kubernetes:tailscale.com/v1alpha1:ProxyClass"
DNS_CONFIG = "kubernetes:tailscale.com/v1alpha1:DNSConfig"
CNPG_CLUSTER = "kubernetes:postgresql.cnpg.io/v1:Cluster"
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_CONTAINER_KIND = {
    "containers": "container",
    "initContainers": "init container",
    "ephemeralContainers": "ephemeral container",
}


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One image a resource asks for. `image` is None when the spot names no image at all."""

    where: str  # e.g. "init container 'migrate'", "values.global.image"
    image: str | None


def pod_spec(resource_type: str, props: Any) -> Mapping[str, Any] | None:
    path = POD_SPEC_PATHS.get(resource_type)
    if path is None:
        return None
    spec = get(props, *path)
    return spec if is_mapping(spec) else None


def container_images(spec: Mapping[str, Any]) -> Iterator[ImageUse]:
    """Every container's image. An unknown image is raised after the known ones are yielded, so
    the pack reports what it can judge and the engine still says what it could not."""
    deferred: UnknownValueError | None = None
    for list_name in CONTAINER_LISTS:
        for index, container in enumerate(mapping_items(get(spec, list_name))):
            name = get_str(container, "name") or f"#{index}"
            try:
                image = get(container, "image")
            except UnknownValueError as exc:
                deferred = deferred or exc
                continue
            yield ImageUse(f"{_CONTAINER_KIND[list_name]} '{name}'", image if isinstance(image, str) else None)
    if deferred is not None:
        raise deferred


def _image_from_value(value: Any) -> str | None:
    """A Helm-values `image`: "repo:tag", {registry?, repository, tag?, digest?} or {repo, tag?}."""
    if isinstance(value, str):
        return value or None
    if not is_mapping(value):
        return None
    repository = get_str(value, "repository") or get_str(value, "repo")
    if not repository:
        return None
    registry = get_str(value, "registry")
    if registry:
        repository = f"{registry.rstrip('/')}/{repository}"
    tag = get(value, "tag")
    digest = get_str(value, "digest")
    reference = repository
    if isinstance(tag, (str, int, float)) and not isinstance(tag, bool) and str(tag):
        tag_text = str(tag) if not isinstance(tag, float) or not tag.is_integer() else str(int(tag))
        reference += f":{tag_text}"
    if digest:
        reference += f"@{digest}"
    return reference


def helm_value_images(values: Any, path: str = "values") -> Iterator[ImageUse]:
    """Every `image` key in a chart's values. Unknown values elsewhere in the tree are skipped;
    an unknown image itself propagates (the policy cannot judge it during preview)."""
    if is_mapping(values):
        for key in list(values):
            child_path = f"{path}.{key}"
            if key == "image":
                value = values[key]
                reference = _image_from_value(value)
                if reference is not None:
                    yield ImageUse(child_path, reference)
                    continue
                if isinstance(value, str):
                    yield ImageUse(child_path, None)
                    continue
            try:
                value = values[key]
            except UnknownValueError:
                continue
            yield from helm_value_images(value, child_path)
    elif is_list(values):
        for index in range(len(values)):
            try:
                item = values[index]
            except UnknownValueError:
                continue
            yield from helm_value_images(item, f"{path}[{index}]")


def resource_images(resource_type: str, props: Any) -> Iterator[ImageUse]:
    """Every image reference in a resource this pack knows how to read."""
    spec = pod_spec(resource_type, props)
    if spec is not None:
        yield from container_images(spec)
    elif resource_type in HELM_CHART_TYPES:
        values = get(props, "values")
        if values is not None:
            yield from helm_value_images(values)
    elif resource_type == PROXY_CLASS:
        pod = get(props, "spec", "statefulSet", "pod")
        for part in ("tailscaleContainer", "tailscaleInitContainer"):
            image = get(pod, part, "image")
            if image is not None:
                yield ImageUse(f"spec.statefulSet.pod.{part}.image", image if isinstance(image, str) else None)
    elif resource_type == DNS_CONFIG:
        image = get(props, "spec", "nameserver", "image")
        if image is not None:
            yield ImageUse("spec.nameserver.image", _image_from_value(image))
    elif resource_type == CNPG_CLUSTER:
        image = get(props, "spec", "imageName")
        if image is not None:
            yield ImageUse("spec.imageName", image if isinstance(image, str) else None)


def pod_volumes(resource_type: str, props: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    spec = pod_spec(resource_type, props)
    if spec is None:
        return
    for index, volume in enumerate(mapping_items(get(spec, "volumes"))):
        yield get_str(volume, "name") or f"#{index}", volume
