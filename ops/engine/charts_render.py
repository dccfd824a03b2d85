"""What a ``kubernetes:helm.sh/v4:Chart`` expands into, as Pulumi's Kubernetes provider expands it.

The provider (pulumi-kubernetes ``provider/pkg/provider/helm/v4/chart.go`` and ``yaml/v2/yaml.go``) runs
``helm template`` for a first install with the Chart's release name (default: the Chart's resource name),
namespace and values, CRDs of ``crds/`` included unless ``skipCrds`` and hooks disabled (so neither hooks
nor test hooks nor NOTES.txt are applied); then it

- expands ``List`` objects, writes the core group as ``v1``, and puts every namespaced object that names
  no namespace into the Chart's namespace (namespaced: the built-in kinds, or a CRD among the chart's
  objects that says so; a kind it cannot place is left without one, with a warning);
- registers each object as a child of the Chart, type ``kubernetes:<apiVersion>:<kind>`` (core objects
  ``kubernetes:core/v1:<kind>``), named ``<resourcePrefix>:<namespace>/<name>`` (``<resourcePrefix>:<name>``
  for cluster-scoped objects; the prefix defaults to the Chart's resource name), depending on the CRD of a
  custom resource and the Namespace of a namespaced object when the chart has them, retained on delete
  when annotated ``helm.sh/resource-policy: keep``, annotated ``pulumi.com/skipAwait`` when the Chart says
  ``skipAwait``, and with a Secret's ``data``/``stringData`` secret.

``expand`` does the same to the recorded registrations of a program run, rendering each chart with
``ops.helm`` from the chart cache (``ops.charts``), after checking every values key the program sets
against the chart. Renderings are cached under ``build/chart-renders`` keyed by the chart's digest, the
release, the namespace and the values.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ops import charts
from ops.engine import harness, helm
from ops.stack import ROOT

CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
RENDER_CACHE = ROOT / "build" / "chart-renders"
RENDER_FORMAT = 1  # bump when what is cached changes
HOOK_ANNOTATION = "helm.sh/hook"
RESOURCE_POLICY = "helm.sh/resource-policy"
SKIP_AWAIT = "pulumi.com/skipAwait"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# pulumi-kubernetes provider/pkg/kinds: the built-in kinds it knows the scope of without a cluster.
NAMESPACED_KINDS = frozenset({
    "Binding", "ConfigMap", "ControllerRevision", "CronJob", "CSIStorageCapacity", "DaemonSet", "Deployment",
    "Endpoints", "EndpointSlice", "Event", "HorizontalPodAutoscaler", "Ingress", "Job", "Lease", "LimitRange",
    "NetworkPolicy", "PersistentVolumeClaim", "Pod", "PodDisruptionBudget", "PodTemplate", "ReplicaSet",
    "ReplicationController", "ResourceQuota", "Role", "RoleBinding", "Secret", "Service", "ServiceAccount",
    "StatefulSet",
})
CLUSTER_KINDS = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", "CSIDriver", "CSINode",
    "CustomResourceDefinition", "FlowSchema", "IngressClass", "MutatingWebhookConfiguration", "Namespace", "Node",
    "PersistentVolume", "PodSecurityPolicy", "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass",
    "StorageClass", "ValidatingWebhookConfiguration", "VolumeAttachment",
})
BUILT_IN_GROUPS = frozenset({"", "apps", "autoscaling", "batch", "policy", "extensions"})

# Helm's install order (pkg/release/util/kind_sorter.go InstallOrder): the order of `helm template`.
INSTALL_ORDER = (
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
    "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
    "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)


class ChartValuesError(charts.ChartError):
    """The program sets values the chart does not have, or that its schema refuses."""


@dataclass(frozen=True, slots=True)
class ChartInputs:
    """What the program gave one Chart resource, resolved."""

    urn: str
    resource_name: str
    chart: str  # the chart's name
    version: str
    repository: str  # https://... or oci://... (without the chart name)
    release: str
    namespace: str
    values: dict[str, Any]
    skip_crds: bool
    prefix: str
    skip_await: bool = False


@dataclass(slots=True)
class Expansion:
    """Children of every Chart of a run, and the charts that could not be rendered (and why)."""

    children: dict[str, list[harness.Registration]] = field(default_factory=dict)  # chart URN -> children
    unrendered: dict[str, str] = field(default_factory=dict)  # chart URN -> reason
    warnings: list[str] = field(default_factory=list)
    charts: dict[str, ChartInputs] = field(default_factory=dict)  # chart URN -> its inputs

    def registrations(self, registrations: Sequence[harness.Registration]) -> list[harness.Registration]:
        """The run's registrations with each chart's children right after it."""
        result: list[harness.Registration] = []
        for record in registrations:
            result.append(record)
            result.extend(self.children.get(record.urn, []))
        return result


class _UnknownInputError(Exception):
    """A Chart input is unknown during the preview (the provider renders nothing then)."""


def _resolve(value: Any) -> Any:
    """Wire form -> what the provider sees after awaiting: secrets opened, references as URNs."""
    if isinstance(value, dict):
        sig = value.get(harness.SIG_KEY)
        if sig == harness.SECRET_SIG:
            return _resolve(value.get("value"))
        if sig == harness.RESOURCE_SIG:
            return value.get("urn")
        if sig in (harness.ASSET_SIG, harness.ARCHIVE_SIG):
            raise ValueError("assets (valueYamlFiles, keyring) are not supported offline")
        return {key: _resolve(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item) for item in value]
    if value == harness.UNKNOWN:
        raise _UnknownInputError
    return value


def chart_inputs(record: harness.Registration, default_namespace: str) -> ChartInputs:
    inputs = _resolve(record.wire_inputs)
    chart_ref = str(inputs.get("chart") or "")
    repository = str((inputs.get("repositoryOpts") or {}).get("repo") or "")
    if chart_ref.startswith("oci://"):
        repository, _, chart_name = chart_ref.rstrip("/").rpartition("/")
    else:
        chart_name = chart_ref.rpartition("/")[2]
    unsupported = [key for key in ("valueYamlFiles", "postRenderer", "dependencyUpdate") if inputs.get(key)]
    if unsupported:
        raise charts.ChartError(f"{record.name}: {', '.join(unsupported)} cannot be rendered offline")
    prefix = inputs.get("resourcePrefix")
    return ChartInputs(
        urn=record.urn,
        resource_name=record.name,
        chart=chart_name,
        version=str(inputs.get("version") or ""),
        repository=repository.rstrip("/"),
        release=str(inputs.get("name") or record.name),
        namespace=str(inputs.get("namespace") or default_namespace),
        values=dict(inputs.get("values") or {}),
        skip_crds=bool(inputs.get("skipCrds")),
        prefix=record.name if prefix is None else str(prefix),
        skip_await=bool(inputs.get("skipAwait")),
    )


# ------------------------------------------------------------------------------------------ values check


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return override if override is not None else base


def known_values(loaded: helm.LoadedChart, directory: Path) -> dict[str, Any]:
    """The chart's defaults with each subchart's defaults under the key the parent addresses it by."""
    known = dict(loaded.values)
    subcharts = helm.subchart_values(directory)
    for name, defaults in subcharts.items():
        key = loaded.aliases.get(name, name)
        known[key] = _merge(defaults, known.get(key) or {})
    return known


def _schema_has(schema: Mapping[str, Any] | None, path: Sequence[str]) -> bool:
    node: Any = schema
    for key in path:
        if not isinstance(node, Mapping):
            return False
        properties = node.get("properties")
        if not isinstance(properties, Mapping) or key not in properties:
            return False
        node = properties[key]
    return True


def unknown_value_paths(values: Mapping[str, Any], known: Mapping[str, Any], free_form: Sequence[str] = (),
                        schema: Mapping[str, Any] | None = None) -> list[str]:
    """Paths the program sets that the chart has neither in its values (open maps, whose default is ``{}``,
    and ``free_form`` paths excepted) nor in its values.schema.json."""
    found: list[str] = []

    def walk(given: Mapping[str, Any], defaults: Any, trail: tuple[str, ...]) -> None:
        for key, value in given.items():
            path = (*trail, str(key))
            dotted = ".".join(path)
            if dotted in free_form:
                continue
            if not isinstance(defaults, Mapping) or key not in defaults:
                if not _schema_has(schema, path):
                    found.append(dotted)
                continue
            below = defaults[key]
            if isinstance(value, Mapping) and isinstance(below, Mapping) and below:
                walk(value, below, path)

    walk(values, known, ())
    return found


# ------------------------------------------------------------------------------------------ rendering


def _documents(text: str, source: str) -> Iterator[dict[str, Any]]:
    try:
        for document in yaml.load_all(text, Loader=LOADER):
            if document:
                if not isinstance(document, dict):
                    raise charts.ChartError(f"{source}: a rendered document is not an object")
                yield document
    except yaml.YAMLError as err:
        raise charts.ChartError(f"{source}: rendered YAML does not parse: {err}") from None


def _expand_lists(objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for obj in objects:
        if str(obj.get("kind", "")).endswith("List") and isinstance(obj.get("items"), list):
            result.extend(_expand_lists([item for item in obj["items"] if item]))
        else:
            result.append(obj)
    return result


def _order(kind: str) -> int:
    return INSTALL_ORDER.index(kind) if kind in INSTALL_ORDER else len(INSTALL_ORDER)


def manifest_objects(rendered: Mapping[str, str], crds: Sequence[str], skip_crds: bool) -> list[dict[str, Any]]:
    """The objects the provider applies from a rendering: crds/ first (unless skipped), then every non-hook
    object of every template but NOTES.txt and partials, in Helm's install order (then by template path)."""
    objects: list[dict[str, Any]] = []
    if not skip_crds:
        for index, text in enumerate(crds):
            objects.extend(_documents(text, f"crds[{index}]"))
    templated: list[tuple[int, str, int, dict[str, Any]]] = []
    for path in sorted(rendered):
        base = path.rsplit("/", 1)[-1]
        if base.startswith("_") or base == "NOTES.txt" or not rendered[path].strip():
            continue
        for position, document in enumerate(_documents(rendered[path], path)):
            annotations = (document.get("metadata") or {}).get("annotations") or {}
            if HOOK_ANNOTATION in annotations:
                continue
            templated.append((_order(str(document.get("kind"))), path, position, document))
    objects.extend(document for *_, document in sorted(templated, key=lambda item: item[:3]))
    return _expand_lists(objects)


def _render_key(digest: str, inputs: ChartInputs, free_form: Sequence[str]) -> str:
    material = json.dumps([RENDER_FORMAT, digest, inputs.release, inputs.namespace, inputs.values,
                           inputs.skip_crds, list(free_form)], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()


def render_chart(inputs: ChartInputs, locked: charts.LockedChart, directory: Path,
                 cache: Path | None = RENDER_CACHE) -> list[dict[str, Any]]:
    """The objects the chart deploys with these inputs (values checked first); cached by content."""
    key = _render_key(locked.digest, inputs, locked.unchecked)
    cached = cache / f"{key}.json" if cache is not None else None
    if cached is not None and cached.is_file():
        try:
            objects: list[dict[str, Any]] = json.loads(cached.read_text())
            return objects
        except (OSError, ValueError):
            pass
    loaded = helm.load(directory)
    unknown = unknown_value_paths(inputs.values, known_values(loaded, directory), locked.unchecked, loaded.schema)
    if unknown:
        raise ChartValuesError(
            f"chart {locked.label} ({inputs.resource_name}) has no values " + ", ".join(unknown)
            + f" (not in its values.yaml{' or values.schema.json' if loaded.schema else ''}); "
            "fix the key, or if the map is free-form list it under freeForm in charts.lock.yaml")
    try:
        helm.validate_values(directory, inputs.values)
        rendered = helm.render(directory, inputs.values, inputs.release, inputs.namespace)
    except helm.HelmError as err:
        raise charts.ChartError(f"chart {locked.label} ({inputs.resource_name}): {err}") from None
    objects = manifest_objects(rendered, loaded.crds, inputs.skip_crds)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        scratch = cached.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        scratch.write_text(json.dumps(objects, sort_keys=True))
        scratch.replace(cached)
    return objects


# ------------------------------------------------------------------------------------------ registration


def type_token(api_version: str, kind: str) -> str:
    """The provider's type token for an object (yaml/v2 RegisterResource)."""
    if api_version in ("v1", "core/v1"):
        return f"kubernetes:core/v1:{kind}"
    return f"kubernetes:{api_version}:{kind}"


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _crd_scopes(objects: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    scopes: dict[tuple[str, str], str] = {}
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            scopes[(str(spec.get("group")), str((spec.get("names") or {}).get("kind")))] = str(spec.get("scope"))
    return scopes


def is_namespaced(obj: Mapping[str, Any], crd_scopes: Mapping[tuple[str, str], str]) -> bool | None:
    """True/False as the provider decides offline; None when it cannot tell."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    group = _group(api_version)
    if group in BUILT_IN_GROUPS or group.endswith(".k8s.io"):
        if kind in NAMESPACED_KINDS:
            return True
        if kind in CLUSTER_KINDS:
            return False
    scope = crd_scopes.get((group, kind))
    return None if scope is None else scope == "Namespaced"


def child_urn(parent_urn: str, token: str, name: str) -> str:
    head, project, qualified, _ = parent_urn.split("::", 3)
    return f"{head}::{project}::{qualified}${token}::{name}"


def _wire(obj: dict[str, Any]) -> dict[str, Any]:
    wired = dict(obj)
    if obj.get("apiVersion") == "v1" and obj.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if key in wired:
                wired[key] = {harness.SIG_KEY: harness.SECRET_SIG, "value": wired[key]}
    return wired


def children_of(record: harness.Registration, inputs: ChartInputs, objects: Sequence[dict[str, Any]],
                warnings: list[str]) -> list[harness.Registration]:
    normalized = []
    for source in objects:
        obj = json.loads(json.dumps(source))  # a private copy
        if not obj.get("kind") or not obj.get("apiVersion"):
            raise charts.ChartError(f"{inputs.resource_name}: a rendered object has no kind or apiVersion")
        metadata = obj.setdefault("metadata", {}) or {}
        obj["metadata"] = metadata
        if not metadata.get("name"):
            raise charts.ChartError(f"{inputs.resource_name}: a rendered {obj['kind']} has no metadata.name")
        if str(obj["apiVersion"]).startswith("core/"):
            obj["apiVersion"] = str(obj["apiVersion"])[len("core/"):]
        if inputs.skip_await:
            metadata["annotations"] = {**(metadata.get("annotations") or {}), SKIP_AWAIT: "true"}
        normalized.append(obj)
    scopes = _crd_scopes(normalized)
    unresolved: set[str] = set()
    for obj in normalized:
        if obj["metadata"].get("namespace"):
            continue
        namespaced = is_namespaced(obj, scopes)
        if namespaced is None:
            unresolved.add(f"{obj['apiVersion']}/{obj['kind']}")
        elif namespaced:
            obj["metadata"]["namespace"] = inputs.namespace
    if unresolved:
        warnings.append(f"{inputs.resource_name}: cannot tell whether {', '.join(sorted(unresolved))} is "
                        "namespaced without a cluster or its CRD; rendered without a namespace")

    crd_urns: dict[tuple[str, str], str] = {}
    namespace_urns: dict[str, str] = {}
    registered: list[tuple[dict[str, Any], str, str, str]] = []
    for obj in normalized:
        metadata = obj["metadata"]
        name = f"{metadata['namespace']}/{metadata['name']}" if metadata.get("namespace") else str(metadata["name"])
        if inputs.prefix:
            name = f"{inputs.prefix}:{name}"
        token = type_token(str(obj["apiVersion"]), str(obj["kind"]))
        urn = child_urn(record.urn, token, name)
        registered.append((obj, token, name, urn))
        if obj["kind"] == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            crd_urns[(str(spec.get("group")), str((spec.get("names") or {}).get("kind")))] = urn
        if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
            namespace_urns[str(metadata["name"])] = urn

    def dependencies(obj: Mapping[str, Any]) -> tuple[str, ...]:
        found = []
        crd = crd_urns.get((_group(str(obj["apiVersion"])), str(obj["kind"])))
        if crd:
            found.append(crd)
        namespace = namespace_urns.get(str(obj["metadata"].get("namespace") or ""))
        if namespace:
            found.append(namespace)
        return tuple(sorted(found))

    # Registered in dependency layers (the provider's topological sort): CRDs and Namespaces first.
    layered = sorted(registered, key=lambda item: len(dependencies(item[0])) > 0)
    children = []
    for obj, token, name, urn in layered:
        annotations = obj["metadata"].get("annotations") or {}
        children.append(harness.Registration(
            urn=urn, type=token, name=name, custom=True, parent=record.urn, provider=record.provider,
            wire_inputs=_wire(obj), protect=record.protect, depends_on=dependencies(obj),
            delete_before_replace=False, ignore_changes=(),
            retain_on_delete=annotations.get(RESOURCE_POLICY) == "keep", replace_on_changes=(),
        ))
    return children


def _default_namespace(record: harness.Registration, by_urn: Mapping[str, harness.Registration]) -> str:
    provider = by_urn.get(record.provider) if record.provider else None
    namespace = provider.wire_inputs.get("namespace") if provider is not None else None
    return namespace if isinstance(namespace, str) and namespace else "default"


def _locate(locked: charts.LockedChart, search: Sequence[Path] | None, *, must: bool, try_pull: bool) -> Path | str:
    """The chart's directory, or (when charts are not required) why it cannot be rendered."""
    try:
        return charts.locate(locked, search)
    except charts.ChartMissingError as missing:
        if must:
            raise
        if not try_pull:
            return str(missing)
        try:
            charts.pull(locked, charts.cache_dir())
            return charts.locate(locked, search)
        except (charts.ChartError, OSError, ValueError) as err:
            return f"{missing}; pulling it failed: {err}"


def expand(registrations: Sequence[harness.Registration], *, required: bool | None = None,
           lock: charts.Lock | None = None, search: Sequence[Path] | None = None,
           render_cache: Path | None = RENDER_CACHE, try_pull: bool = False) -> Expansion:
    """Render every Chart of a run. A chart missing from the cache is an error when ``required`` (default:
    ``$BLUMEOPS_CHARTS_REQUIRED``), else (after trying to pull it when ``try_pull``) an unrendered chart with
    its reason. A digest mismatch, a misspelt value or a chart the lock does not pin is always an error."""
    must = charts.charts_required() if required is None else required
    expansion = Expansion()
    chart_records = [r for r in registrations if r.type == CHART_TYPE]
    if not chart_records:
        return expansion
    lock = lock or charts.read_lock(charts.LOCK_FILE)
    by_urn = {r.urn: r for r in registrations}
    jobs: list[tuple[harness.Registration, ChartInputs, charts.LockedChart, Path]] = []
    for record in chart_records:
        try:
            inputs = chart_inputs(record, _default_namespace(record, by_urn))
        except _UnknownInputError:
            expansion.unrendered[record.urn] = "its inputs have unknown values (the preview is incomplete)"
            continue
        except ValueError as err:
            raise charts.ChartError(f"{record.name}: {err}") from None
        expansion.charts[record.urn] = inputs
        locked = lock.find(inputs.chart, inputs.version)
        if locked is None:
            raise charts.ChartError(f"{record.name}: chart {inputs.chart} {inputs.version} is not pinned in "
                                    f"{lock.path.name}; add it there, then `{charts.PULL_COMMAND} --chart "
                                    f"{inputs.chart} --update`")
        if locked.repository.rstrip("/") != inputs.repository:
            raise charts.ChartError(f"{record.name}: the program takes {inputs.chart} from {inputs.repository!r}, "
                                    f"{lock.path.name} pins it from {locked.repository!r}")
        located = _locate(locked, search, must=must, try_pull=try_pull)
        if isinstance(located, str):
            expansion.unrendered[record.urn] = located
            continue
        directory = located
        jobs.append((record, inputs, locked, directory))

    def run(job: tuple[harness.Registration, ChartInputs, charts.LockedChart, Path]) -> list[dict[str, Any]]:
        _, inputs, locked, directory = job
        return render_chart(inputs, locked, directory, render_cache)

    with ThreadPoolExecutor(max_workers=min(4, max(1, len(jobs)))) as pool:
        rendered = list(pool.map(run, jobs))
    for (record, inputs, _, _), objects in zip(jobs, rendered, strict=True):
        expansion.children[record.urn] = children_of(record, inputs, objects, expansion.warnings)
    return expansion
