"""Images the program builds itself (policy/images.yaml `built:`): known by their build context, one tag each."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from rules import images as image_rules
from rules.catalog import IMAGES_FILE, content_tag, load_catalog, parse_catalog

from components.host.devpi_image import DEVPI_CONTEXT, context_files
from components.host.devpi_image import content_tag as build_step_tag
from ops.stack import ROOT
from tests.policy.test_policy_images import deployment

REPOSITORY = "registry.tail8d86e.ts.net/blumeops/devpi"
IMPORT_REPOSITORY = "registry.tail8d86e.ts.net/blumeops/devpi-import"


def test_the_pack_and_the_build_step_tag_a_context_alike() -> None:
    files = context_files(DEVPI_CONTEXT)
    assert content_tag({name: text.encode() for name, text in files.items()}) == build_step_tag(files)
    # any byte, and any name, changes it
    changed = dict(files, Dockerfile=files["Dockerfile"] + " ")
    assert build_step_tag(changed) != build_step_tag(files)
    renamed = {("x" + name if name == "Dockerfile" else name): text for name, text in files.items()}
    assert content_tag({n: t.encode() for n, t in renamed.items()}) != build_step_tag(files)


def test_the_catalogue_knows_exactly_the_tag_of_the_context_in_the_repository() -> None:
    """An edited build context needs its new tag in policy/images.yaml (the step prints it)."""
    catalog = load_catalog()
    document = yaml.safe_load(IMAGES_FILE.read_text())
    for repository, details in document["built"].items():
        if details["tag"] != "host-computed":
            context = ROOT / details["context"]
            files = {path.name: path.read_bytes() for path in sorted(context.iterdir()) if path.is_file()}
            assert details["tag"] == content_tag(files), f"{repository}: set tag: {content_tag(files)}"
    assert catalog.errors == ()
    built = [entry for entry in catalog.entries if entry.built]
    tag = build_step_tag(context_files(DEVPI_CONTEXT))
    assert [entry.key for entry in built] == [f"{REPOSITORY}:{tag}", f"{IMPORT_REPOSITORY}:host-computed"]
    assert all(entry.has_arm64 and entry.is_verified for entry in built)


def test_a_host_computed_tag_is_any_content_hash_and_nothing_else(check: Any) -> None:
    def judged(image: str) -> list[str]:
        return check(image_rules.arm64_images, "kubernetes:apps/v1:StatefulSet",
                     deployment({"name": "devpi", "image": image}), name="devpi")

    assert judged(f"{IMPORT_REPOSITORY}:0123456789abcdef") == []
    for tag in ("host-computed", "0123456789ABCDEF", "0123456789abcde", "v1", f"0123456789abcdef@sha256:{'a' * 64}"):
        assert len(judged(f"{IMPORT_REPOSITORY}:{tag}")) == 1, tag


@pytest.fixture
def built_catalog(monkeypatch: pytest.MonkeyPatch) -> str:
    tag = content_tag({"Dockerfile": b"FROM scratch\n"})
    parsed = parse_catalog({
        "registries": {"mirrored": ["registry.tail8d86e.ts.net"]},
        "images": {},
        "built": {REPOSITORY: {"platforms": ["linux/arm64"], "tag": tag, "context": "context", "source": "test"}},
    })
    assert parsed.errors == ()
    monkeypatch.setattr(image_rules, "_catalog", lambda: parsed)
    return tag


def test_the_built_tag_passes_and_any_other_tag_is_unknown(check: Any, built_catalog: str) -> None:
    def judged(image: str) -> list[str]:
        return check(image_rules.arm64_images, "kubernetes:apps/v1:StatefulSet",
                     deployment({"name": "devpi", "image": image}), name="devpi")

    assert judged(f"{REPOSITORY}:{built_catalog}") == []
    (message,) = judged(f"{REPOSITORY}:0123456789abcdef")
    assert "is not listed in policy/images.yaml" in message
    (message,) = judged(f"{REPOSITORY}:latest")
    assert "`latest`" in message


@pytest.mark.parametrize(("details", "expected"), [
    ({"platforms": ["linux/arm64"], "tag": "0123456789abcdef", "context": "/abs"}, "relative to the project"),
    ({"platforms": ["linux/arm64"], "tag": "0123456789abcdef", "context": "../x"}, "relative to the project"),
    ({"platforms": [], "tag": "0123456789abcdef", "context": "context"}, "`platforms` must list"),
    ({"platforms": ["linux/arm64"], "tag": "latest", "context": "context"}, "`tag` must be the content hash"),
    ({"platforms": ["linux/arm64"], "context": "context"}, "`tag` must be the content hash"),
    ({"platforms": ["linux/arm64"], "tag": "host-computed"}, "needs `source`"),
])
def test_a_broken_built_entry_is_an_error(details: dict[str, Any], expected: str) -> None:
    parsed = parse_catalog({"registries": {"mirrored": []}, "images": {}, "built": {REPOSITORY: details}})
    assert len(parsed.errors) == 1 and expected in parsed.errors[0]
