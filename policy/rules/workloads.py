"""Where images, pod specs and other judged fields live, found generically in any resource.

Nothing here lists the kinds that carry images: a rule that only knew Deployments and ProxyClasses
would let the next CRD through. Instead every resource is walked at any depth (`fields`):

- an **image** is the value of any key named `image`, `imageName` or ending in `Image`
  (`tailscaleImage`), compared without regard to case: a string `repo:tag`, or a Helm-style mapping
  `{registry?, repository|repo, tag?, digest?}`; any mapping under any other key that holds a `repository` (or
  `repo`) with a `tag` or `digest` beside it (a CR's `spec.server: {repository, tag}`); and every string of a list
  named `images`
  (`kustomize.images` `name=new:tag`, the program's components) — so Pods, every workload template,
  CloudNativePG Cluster/Pooler/ImageCatalog/ClusterImageCatalog, every Tailscale CRD, Argo CD
  Applications and Helm chart values are read alike;
- a **pod spec** is any mapping that holds a `containers` (or `initContainers`) list of mappings, at
  any depth: Deployment, StatefulSet, CronJob `jobTemplate`, a Pooler's `template`, an unknown CRD
  embedding `spec.template.spec`, a Helm value;
- YAML held as text is read too: an Argo CD Application's `helm.values` string, a ConfigGroup's `yaml`;
- the payload of a ConfigMap or Secret (`data`, `stringData`, `binaryData`) is text a program reads,
  not Kubernetes fields, and is not walked (the secrets rule reads it as text);
- a CustomResourceDefinition's `openAPIV3Schema` describes fields, it holds none: it is not walked, except
  for the `default` values it declares, which the API server writes into every custom resource that omits
  them. Each is judged as the field it defaults (`properties.image.default: x` as `image: x`).

Inside one served `Analyze` the walk is computed once and shared by every rule (`rules.wire.shared_walk`):
the pack's cost is one walk per resource, whatever the number of rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy.proxy import UnknownValueError

from rules.kinds import PAYLOAD_KEYS, PAYLOAD_KINDS, load_yaml_documents, parse_type
from rules.props import Entry, Path, format_path, get_str, is_list, is_mapping, key_of, walk
from rules.wire import LazyUnknownList, LazyUnknownProxy, open_value, shared_walk

# The container lists of a pod spec (lower-cased key) -> how a message names one of their containers.
_CONTAINER_KIND = {
    "containers": "container",
    "initcontainers": "init container",
    "ephemeralcontainers": "ephemeral container",
}
IMAGE_LIST_KEY = "images"
# Lists of {name, value} env vars (`env`, `extraEnv`, `envVars` ...), and the names that hold an image.
ENV_LIST = re.compile(r"env(s|vars)?$")
IMAGE_ENV = re.compile(r"^RELATED_IMAGE_|(^|_)IMAGE(_NAME|_REF)?$", re.IGNORECASE)
_KUSTOMIZE_IMAGE = re.compile(r"^[^=/]+=(?P<image>.+)$")
# Providers hold credentials and endpoints, not workloads; never walked.
SKIPPED_PACKAGES = frozenset({"pulumi"})
# The program's own components only describe their children (which are judged themselves); reading
# their inputs for images would report every image twice.
COMPONENT_PACKAGES = frozenset({"blumeops"})


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One image a resource asks for. `image` is None when the spot names no image at all."""

    where: str  # e.g. "init container 'migrate'", "values.global.image"
    image: str | None


def is_image_key(name: str) -> bool:
    """`image`, `imageName`, `tailscaleImage`, `IMAGE` ... (lower-cased `name`)."""
    return name.endswith("image") or name == "imagename"


def _payload(entry: Entry, root_is_payload: bool) -> bool:
    if entry.name not in PAYLOAD_KEYS:
        return False
    if root_is_payload and len(entry.path) == 1:
        return True
    kind = key_of(entry.parent, "kind")
    return isinstance(kind, str) and kind.lower() in PAYLOAD_KINDS


def _embedded_yaml(entry: Entry, root_kind: str) -> bool:
    """Text that is YAML the cluster will read: Argo CD `helm.values`, a ConfigGroup's `yaml`."""
    if not isinstance(entry.value, str):
        return False
    parent_key = entry.path[-2] if len(entry.path) >= 2 else None
    if entry.name == "values" and isinstance(parent_key, str) and parent_key.lower() == "helm":
        return True
    return root_kind in ("configgroup", "configfile") and entry.path[0] == "yaml"


def fields(resource_type: str, props: Any) -> Iterator[Entry]:
    """Every field of the resource at any depth, YAML text included, payloads and CRD schemas excluded (the
    schemas' defaults included); computed once per resource within a served `Analyze`."""
    token = parse_type(resource_type)
    if token.package in SKIPPED_PACKAGES:
        return iter(())
    root_is_payload = token.kind in PAYLOAD_KINDS
    return iter(shared_walk((resource_type, id(props)),
                            lambda: list(_fields(props, (), root_is_payload, token.kind))))


CRD_KIND = "customresourcedefinition"
SCHEMA_KEY = "openapiv3schema"


def _crd_schema(entry: Entry, root_kind: str) -> bool:
    return entry.name == SCHEMA_KEY and root_kind == CRD_KIND


def _raw(value: Any) -> Any:
    """The data behind an unknown-checking proxy: the pack's lazy one gives its wire form (each value is
    opened as it is read, ``open_value``: a secret's value, an asset), pulumi_policy's eager one (rules called
    directly, as the tests do) its ``["__target"]``; plain data as it is (opened)."""
    kind = type(value)
    if kind is list or kind is str:  # the common case first: a CRD schema is ~10,000 plain nodes
        return value
    if kind is dict:
        return open_value(value)
    if isinstance(value, (LazyUnknownProxy, LazyUnknownList)):
        return value.wire
    if isinstance(value, (dict, list, str)) or not (is_mapping(value) or is_list(value)):
        return open_value(value)
    return value["__target"]


def schema_defaults(schema: Any, path: Path) -> Iterator[Entry]:
    """The `default` of every property a JSON schema declares, at any depth, as an Entry named after the
    property (its parent: a mapping of that one field), with its path through the schema."""
    yield from _schema_defaults(_raw(schema), path)


def _schema_defaults(node: Any, path: Path) -> Iterator[Entry]:
    # the pack's lazy proxy holds plain data below it; pulumi_policy's eager one (rules called directly, as
    # the tests do) holds proxies: each child is unwrapped. Iterative, in the order of a depth-first walk: a
    # schema nests 35 deep, and nested generators made every node pay for its depth.
    found: list[Entry] = []
    # (node, its path, the default its property declares: yielded when the node's turn comes, as the
    # recursive walk yielded it just before descending)
    stack: list[tuple[Any, Path, Entry | None]] = [(node, path, None)]
    while stack:
        current, at_path, declared = stack.pop()
        if declared is not None:
            found.append(declared)
        later: list[tuple[Any, Path, Entry | None]] = []
        if type(current) is dict or isinstance(current, dict):
            for key, value in current.items():
                child = _raw(value)
                if key == "properties" and isinstance(child, dict):
                    for name, raw_definition in child.items():
                        definition = _raw(raw_definition)
                        at = (*at_path, "properties", str(name))
                        if isinstance(definition, dict):
                            entry = None
                            if "default" in definition:
                                default = open_value(definition["default"])
                                entry = Entry((*at, "default"), {str(name): default}, str(name), default)
                            later.append((definition, at, entry))
                elif isinstance(child, (dict, list)):
                    later.append((child, (*at_path, str(key)), None))
        elif isinstance(current, list):
            for index, value in enumerate(current):
                item = _raw(value)
                if isinstance(item, (dict, list)):
                    later.append((item, (*at_path, index), None))
        stack.extend(reversed(later))
    return iter(found)


def _fields(value: Any, path: Path, root_is_payload: bool, root_kind: str) -> Iterator[Entry]:
    for entry in walk(value, path, prune=lambda e: _payload(e, root_is_payload) or _crd_schema(e, root_kind)):
        yield entry
        if entry.unknown is not None:
            continue
        if _crd_schema(entry, root_kind):
            for default in schema_defaults(entry.value, entry.path):
                yield default
                yield from _fields(default.value, default.path, False, "")
            continue
        texts: list[tuple[Path, str]] = []
        if _embedded_yaml(entry, root_kind):
            texts.append((entry.path, entry.value))
        elif root_kind in ("configgroup", "configfile") and entry.path == ("yaml",) and is_list(entry.value):
            texts.extend(((*entry.path, i), text) for i, text in enumerate(entry.value) if isinstance(text, str))
        for text_path, text in texts:
            for index, document in enumerate(load_yaml_documents(text)):
                if is_mapping(document) or is_list(document):
                    yield from _fields(document, (*text_path, f"<yaml {index}>"), False, "")
        if entry.name == "parameters" and _under_helm(entry) and is_list(entry.value):
            yield from _fields(helm_parameters(entry.value), (*entry.path, "<set>"), False, "")


def _under_helm(entry: Entry) -> bool:
    parent_key = entry.path[-2] if len(entry.path) >= 2 else None
    return isinstance(parent_key, str) and parent_key.lower() == "helm"


def helm_parameters(parameters: Any) -> dict[str, Any]:
    """Argo CD `helm.parameters` ([{name: "image.repository", value: "x"}], like `helm --set`) as the
    values they set: {"image": {"repository": "x"}}."""
    values: dict[str, Any] = {}
    for item in parameters:
        if not is_mapping(item):
            continue
        name, value = get_str(item, "name"), key_of(item, "value")
        if not name:
            continue
        parts = [part for part in re.split(r"(?<!\\)\.|\[\d+\]", name) if part]
        target = values
        for part in parts[:-1]:
            child = target.setdefault(part.replace("\\.", "."), {})
            target = child if isinstance(child, dict) else {}
        if parts:
            target[parts[-1].replace("\\.", ".")] = value
    return values


def _image_from_value(value: Any) -> str | None:
    """A Helm-values `image`: "repo:tag", {registry?, repository, tag?, digest?}, {repo, tag?} or {name, tag?}."""
    if isinstance(value, str):
        return value or None
    if not is_mapping(value):
        return None
    repository = _str_key(value, "repository") or _str_key(value, "repo") or _str_key(value, "name")
    if not repository:
        return None
    registry = _str_key(value, "registry")
    if registry:
        repository = f"{registry.rstrip('/')}/{repository}"
    tag = key_of(value, "tag")
    digest = _str_key(value, "digest")
    reference = repository
    if isinstance(tag, (str, int, float)) and not isinstance(tag, bool) and str(tag):
        tag_text = str(tag) if not isinstance(tag, float) or not tag.is_integer() else str(int(tag))
        reference += f":{tag_text}"
    if digest:
        reference += f"@{digest}"
    return reference


def _assembled_image(value: Any) -> bool:
    """A mapping that names an image by parts: a `repository` (or `repo`) string with a `tag` or `digest` beside
    it. A URL (`repo: https://charts.example`) names no image."""
    repository = _str_key(value, "repository") or _str_key(value, "repo")
    if not repository or "://" in repository:
        return False
    return key_of(value, "tag") is not None or key_of(value, "digest") is not None


def _str_key(mapping: Any, name: str) -> str | None:
    value = key_of(mapping, name)
    return value if isinstance(value, str) else None


def container_owner(entry: Entry) -> str | None:
    """"container 'name'" when the mapping holding `entry` is a container of a pod spec, else None."""
    container_path = entry.path[:-1]
    if len(container_path) >= 2 and isinstance(container_path[-1], int) and isinstance(container_path[-2], str):
        kind = _CONTAINER_KIND.get(container_path[-2].lower())
        if kind is not None:
            return f"{kind} '{get_str(entry.parent, 'name') or f'#{container_path[-1]}'}'"
    return None


def _where(entry: Entry) -> str:
    label = container_owner(entry)
    if label is not None:
        return label if entry.name == "image" else f"{label} {entry.key}"
    return format_path(entry.path)


def resource_images(resource_type: str, props: Any) -> Iterator[ImageUse]:
    """Every image reference in the resource, found by key at any depth. An unknown image is raised
    after the known ones are yielded, so the pack reports what it can judge and the engine still
    says what it could not. Found once per resource within a served `Analyze` (three rules read them)."""
    found, deferred = shared_walk(("images", resource_type, id(props)), lambda: _collect_images(resource_type, props))
    yield from found
    if deferred is not None:
        raise deferred


def _collect_images(resource_type: str, props: Any) -> tuple[list[ImageUse], UnknownValueError | None]:
    found: list[ImageUse] = []
    images = _find_images(resource_type, props)
    try:
        found.extend(images)
    except UnknownValueError as exc:
        return found, exc
    return found, None


def _find_images(resource_type: str, props: Any) -> Iterator[ImageUse]:
    token = parse_type(resource_type)
    if token.package in COMPONENT_PACKAGES:
        return
    if token.kind == "configmap":
        yield from _config_map_images(props)
    deferred: UnknownValueError | None = None
    for entry in fields(resource_type, props):
        if entry.unknown is not None:
            if is_image_key(entry.name):
                deferred = deferred or entry.unknown
            continue
        if is_image_key(entry.name):
            value = entry.value
            if isinstance(value, str):
                yield ImageUse(_where(entry), value or None)
            elif is_mapping(value):
                reference = _image_from_value(value)
                if reference is not None:
                    yield ImageUse(_where(entry), reference)
        elif is_mapping(entry.value) and _assembled_image(entry.value):
            # `{repository, tag}`, `{registry, repository, tag}`, `{repo, digest}` under any key (a CR's
            # `spec.server`, a chart's `controller`): the sibling keys assemble an image reference
            reference = _image_from_value(entry.value)
            if reference is not None:
                yield ImageUse(format_path(entry.path), reference)
        elif entry.name == IMAGE_LIST_KEY and is_list(entry.value):
            for index, item in enumerate(entry.value):
                if isinstance(item, str):
                    match = _KUSTOMIZE_IMAGE.match(item)
                    yield ImageUse(f"{format_path(entry.path)}[{index}]", match["image"] if match else item)
        elif entry.name in _CONTAINER_KIND and is_list(entry.value):
            yield from _containers_without_image(entry)
        elif ENV_LIST.search(entry.name) and is_list(entry.value):
            yield from _env_images(entry)
    if deferred is not None:
        raise deferred


def _config_map_images(props: Any) -> Iterator[ImageUse]:
    """An operator's ConfigMap (`POSTGRES_IMAGE_NAME` for CloudNativePG) names images like env vars do;
    only upper-case, env-style keys count: other data is text a program reads."""
    data = key_of(props, "data")
    if not is_mapping(data):
        return
    for key in list(data):
        value = data[key]
        if isinstance(key, str) and key.isupper() and IMAGE_ENV.search(key) and isinstance(value, str) and value:
            yield ImageUse(f"data.{key}", value)


def _env_images(entry: Entry) -> Iterator[ImageUse]:
    """Operators take their operands' images from env vars (`RELATED_IMAGE_*`, `PROXY_IMAGE`,
    `POSTGRES_IMAGE_NAME`): those are images too."""
    for item in entry.value:
        if not is_mapping(item):
            continue
        name, value = get_str(item, "name"), get_str(item, "value")
        if name and value and IMAGE_ENV.search(name):
            yield ImageUse(f"{format_path(entry.path)} {name}", value)


def _containers_without_image(entry: Entry) -> Iterator[ImageUse]:
    kind = _CONTAINER_KIND[entry.name]
    for index, container in enumerate(entry.value):
        if is_mapping(container) and not any(str(key).lower() == "image" for key in container):
            name = get_str(container, "name") or f"#{index}"
            yield ImageUse(f"{kind} '{name}'", None)


def pod_specs(resource_type: str, props: Any) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    """(path, spec) of every pod spec at any depth: a mapping holding a list of containers."""
    for entry in fields(resource_type, props):
        if (entry.unknown is None and entry.name in _CONTAINER_KIND and is_list(entry.value)
                and any(is_mapping(item) for item in entry.value)):
            yield entry.path[:-1], entry.parent


def containers(resource_type: str, props: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label, container) of every container of every pod spec."""
    for _path, spec in pod_specs(resource_type, props):
        for key in list(spec):
            kind = _CONTAINER_KIND.get(str(key).lower())
            if kind is None:
                continue
            items = spec[key]
            if not is_list(items):
                continue
            for index in range(len(items)):
                container = items[index]
                if is_mapping(container):
                    yield f"{kind} '{get_str(container, 'name') or f'#{index}'}'", container


def pod_volumes(resource_type: str, props: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    seen: set[int] = set()
    for _path, spec in pod_specs(resource_type, props):
        if id(spec) in seen:
            continue
        seen.add(id(spec))
        volumes = key_of(spec, "volumes")
        if not is_list(volumes):
            continue
        for index in range(len(volumes)):
            volume = volumes[index]
            if is_mapping(volume):
                yield get_str(volume, "name") or f"#{index}", volume
