"""Image rules: arm64 images listed in images.yaml, verified entries, mirrored registries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from rules import visibility
from rules.catalog import ARM64, Catalog, ImageRef, default_catalog, parse_image, registry_as_written
from rules.props import describe, format_path, get, get_str, is_list, is_mapping, mapping_items, str_items
from rules.workloads import ImageUse, fields, resource_images

FIX = "run `python -m ops images verify` to record its platforms and digest in policy/images.yaml"
ARCH_LABELS = ("kubernetes.io/arch", "beta.kubernetes.io/arch")


def _catalog() -> Catalog:
    return default_catalog()


def _parsed(uses: Iterator[ImageUse]) -> Iterator[tuple[ImageUse, ImageRef | None, str | None]]:
    for use in uses:
        if use.image is None:
            yield use, None, "names no image"
            continue
        try:
            yield use, parse_image(use.image), None
        except ValueError as exc:
            yield use, None, f"has an invalid image reference {use.image!r}: {exc}"


def image_problems(resource_type: str, props: Any, catalog: Catalog) -> Iterator[str]:
    """Why an image of this resource may not run on indri (arm64), one message per problem."""
    for use, ref, error in _parsed(resource_images(resource_type, props)):
        if ref is None:
            yield f"{use.where} {error}; name a pinned image listed in policy/images.yaml"
            continue
        shown = f"{use.where} image '{use.image}'"
        if not ref.pinned:
            why = "uses the floating tag `latest`" if ref.tag == "latest" else "has no tag"
            yield (
                f"{shown} {why}: pin a version tag (or a digest), list it in policy/images.yaml and {FIX}"
            )
            continue
        entry = catalog.lookup(ref)
        if entry is None:
            normalised = "" if str(ref) == use.image else f" ({ref})"
            yield (
                f"{shown}{normalised} is not listed in policy/images.yaml: add it under `images:` and {FIX}; "
                f"it must ship {ARM64}"
            )
        elif ref.digest is not None and entry.digest is not None and ref.digest not in (entry.digest,
                                                                                      entry.ref.digest):
            yield (
                f"{shown} pins digest {ref.digest}, but policy/images.yaml records {entry.digest} for "
                f"{entry.key}: a digest that is not the catalogued one was never checked for {ARM64}; pin the "
                f"catalogued digest, or point the tag at the new one and {FIX}"
            )
        elif ref.digest is not None and not (entry.is_verified and ref.digest in (entry.digest, entry.ref.digest)):
            # a digest names exactly one manifest: only one `ops images verify` read from the registry says what it
            # ships; an unverified entry's platforms are a claim about its tag, not about this digest
            yield (
                f"{shown} pins digest {ref.digest}, which policy/images.yaml does not record as verified for "
                f"{entry.key} (no digest/verified recorded): a digest the catalogue has not verified was never "
                f"checked for {ARM64}; {FIX}, then pin the digest it records"
            )
        elif not entry.has_arm64:
            platforms = ", ".join(entry.platforms) or "none recorded"
            yield (
                f"{shown} does not ship {ARM64} (policy/images.yaml records: {platforms}); "
                f"indri is Apple silicon: pick an image or tag built for arm64, then {FIX}"
            )
    yield from _arch_constraint_problems(resource_type, props)


def _arch_constraint_problems(resource_type: str, props: Any) -> Iterator[str]:
    """Every nodeSelector and required node affinity at any depth (pod specs, chart values)."""
    for entry in fields(resource_type, props):
        if entry.unknown is not None:
            continue
        if entry.name == "nodeselector" and is_mapping(entry.value):
            for label in ARCH_LABELS:
                arch = get_str(entry.value, label)
                if arch is not None and arch != "arm64":
                    yield (
                        f"{format_path(entry.path)} {label}={arch} can never schedule on indri's arm64 node: "
                        "remove it or select arm64"
                    )
        elif entry.name == "nodeselectorterms" and is_list(entry.value):
            terms = list(mapping_items(entry.value))
            if terms and not any(_term_allows_arm64(term) for term in terms):
                yield (
                    f"required node affinity ({format_path(entry.path)}) on kubernetes.io/arch excludes arm64 in "
                    "every nodeSelectorTerm: indri's only node is arm64; allow arm64 or drop the affinity"
                )


def _term_allows_arm64(term: Mapping[str, Any]) -> bool:
    for expression in mapping_items(get(term, "matchExpressions")):
        if get_str(expression, "key") not in ARCH_LABELS:
            continue
        operator = get_str(expression, "operator")
        values = str_items(get(expression, "values"))
        if operator == "In" and "arm64" not in values:
            return False
        if operator == "NotIn" and "arm64" in values:
            return False
        if operator == "DoesNotExist":
            return False
    return True


def validate_arm64_images(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    catalog = _catalog()
    subject = describe(args.resource_type, args.name, args.props)
    found = False
    for problem in image_problems(args.resource_type, args.props, catalog):
        found = True
        report_violation(f"{subject}: {problem}", None)
    if found:
        for error in catalog.errors:
            report_violation(f"{subject}: policy/images.yaml is broken: {error}", None)


def validate_images_verified(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    catalog = _catalog()
    for use, ref, _error in _parsed(resource_images(args.resource_type, args.props)):
        if ref is None or not ref.pinned:
            continue
        entry = catalog.lookup(ref)
        if entry is None or entry.is_verified:
            continue
        report_violation(
            f"{describe(args.resource_type, args.name, args.props)}: {use.where} image '{use.image}' is listed "
            f"in policy/images.yaml but not verified against its registry yet (digest/verified empty; the "
            f"platforms {', '.join(entry.platforms)} are claims): {FIX}",
            None,
        )


def mirrored_registries(args: ResourceValidationArgs, catalog: Catalog) -> tuple[str, ...]:
    configured = args.get_config().get("registries") if args.get_config() else None
    if configured:
        return tuple(str(r).lower() for r in configured)
    return catalog.mirrored_registries


def validate_mirrored_registries(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    catalog = _catalog()
    allowed = mirrored_registries(args, catalog)
    for entry in fields(args.resource_type, args.props):
        # a chart's `global.imageRegistry` moves every image of the chart to that registry
        if entry.unknown is None and entry.name == "imageregistry" and isinstance(entry.value, str) and entry.value:
            registry = entry.value.strip().rstrip("/")
            if registry not in allowed:
                report_violation(
                    f"{describe(args.resource_type, args.name, args.props)}: {format_path(entry.path)} moves the "
                    f"images to {registry}, which zot does not mirror as written (mirrored: {', '.join(allowed)}): "
                    "drop it, or name a mirrored registry in lower case",
                    None,
                )
    for use, ref, _error in _parsed(resource_images(args.resource_type, args.props)):
        if ref is None:
            continue
        written = registry_as_written(use.image or "")
        if written is not None and written != written.lower():
            report_violation(
                f"{describe(args.resource_type, args.name, args.props)}: {use.where} image '{use.image}' writes its "
                f"registry as {written}: containerd finds a registry's hosts.toml by the name as written, so an "
                f"upper-case name skips the zot mirror; write {written.lower()}",
                None,
            )
            continue
        if ref.registry in allowed:
            continue
        report_violation(
            f"{describe(args.resource_type, args.name, args.props)}: {use.where} image '{use.image}' comes from "
            f"{ref.registry}, which zot does not mirror (mirrored: {', '.join(allowed)}): add {ref.registry} to "
            "zot's sync list and containerd's hosts.toml, and to `registries.mirrored` in policy/images.yaml, "
            "or use a mirrored registry",
            None,
        )


arm64_images = ResourceValidationPolicy(
    name="arm64-images",
    description=(
        "Every container image is pinned (no `latest`, no missing tag), listed in policy/images.yaml and "
        "ships linux/arm64; no pod is forced onto another architecture."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_arm64_images,
)

images_verified = ResourceValidationPolicy(
    name="images-verified",
    description="Images in policy/images.yaml have been checked against their registry (digest and date recorded).",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=validate_images_verified,
)

images_from_mirrored_registries = ResourceValidationPolicy(
    name="images-from-mirrored-registries",
    description="Images come from a registry that the zot pull-through cache on indri mirrors.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=validate_mirrored_registries,
    config_schema=PolicyConfigSchema(
        properties={
            "registries": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Registries zot mirrors; defaults to `registries.mirrored` in policy/images.yaml.",
            }
        }
    ),
)

# Images (and every other field) of objects the pack is never shown: rules/visibility.py refuses those ways in.
POLICIES = [arm64_images, images_verified, images_from_mirrored_registries, *visibility.POLICIES]
