"""policy/images.yaml itself, reference normalisation, and the pack's independence from the program."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from rules import catalog

from ops import images as verifier

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


def test_images_yaml_is_valid_and_every_image_ships_arm64() -> None:
    loaded = catalog.load_catalog(catalog.IMAGES_FILE)
    assert loaded.errors == ()
    assert len(loaded.entries) >= 15
    for entry in loaded.entries:
        assert entry.has_arm64, entry.key
        assert entry.key == str(entry.ref), f"{entry.key} is not written in normalised form ({entry.ref})"
        assert entry.ref.tag not in (None, "latest"), entry.key
        assert entry.source, entry.key
        assert entry.ref.registry in loaded.mirrored_registries, entry.key
        assert (entry.digest is None) == (entry.verified is None), entry.key


def test_seeded_images_are_present() -> None:
    loaded = catalog.load_catalog(catalog.IMAGES_FILE)
    for reference in ("tailscale/k8s-operator:v1.102.3", "tailscale/tailscale:v1.102.3",
                      "docker.io/tailscale/k8s-nameserver:v1.102.3",
                      "ghcr.io/cloudnative-pg/postgresql:18-standard-trixie",
                      "ghcr.io/cloudnative-pg/cloudnative-pg:1.30.0",
                      "quay.io/argoproj/argocd:v3.4.4", "ghcr.io/dexidp/dex:v2.45.1",
                      "ecr-public.aws.com/docker/library/redis:8.2.3-alpine", "lscr.io/linuxserver/transmission:4.0.6"):
        assert loaded.lookup(catalog.parse_image(reference)) is not None, reference


@pytest.mark.parametrize(
    ("reference", "normalised"),
    [
        ("tailscale/tailscale:v1.92.5", "docker.io/tailscale/tailscale:v1.92.5"),
        ("docker.io/tailscale/tailscale:v1.92.5", "docker.io/tailscale/tailscale:v1.92.5"),
        ("redis:8", "docker.io/library/redis:8"),
        ("docker.io/redis:8", "docker.io/library/redis:8"),
        ("index.docker.io/library/redis:8", "docker.io/library/redis:8"),
        ("lscr.io/linuxserver/transmission:4.0.6", "ghcr.io/linuxserver/transmission:4.0.6"),
        ("localhost:5000/a/b", "localhost:5000/a/b"),
        ("127.0.0.1:5000/a/b:1@sha256:" + "0" * 64, "127.0.0.1:5000/a/b:1@sha256:" + "0" * 64),
        ("GHCR.IO/x/y:1", "ghcr.io/x/y:1"),
    ],
)
def test_normalisation_matches_the_verifier(reference: str, normalised: str) -> None:
    assert str(catalog.parse_image(reference)) == normalised
    assert str(verifier.parse_image(reference)) == normalised


@pytest.mark.parametrize("reference", ["", "UPPER/case:1", "a/b:bad tag", "x@sha256:123"])
def test_invalid_references(reference: str) -> None:
    with pytest.raises(ValueError):
        catalog.parse_image(reference)


def test_broken_catalog_reports_errors() -> None:
    broken = catalog.parse_catalog({"registries": {"mirrored": "docker.io"},
                                    "images": {"redis": {"platforms": "linux/arm64"}, "Bad Ref": {}}})
    assert len(broken.errors) == 3


def test_pack_imports_nothing_from_the_program() -> None:
    allowed_roots = set(sys.stdlib_module_names) | {"pulumi", "pulumi_policy", "yaml", "rules", "__future__"}
    files = [POLICY_DIR / "__main__.py", *sorted((POLICY_DIR / "rules").glob("*.py"))]
    assert not (POLICY_DIR / "__init__.py").exists()
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] in allowed_roots, f"{path.name} imports {name}"
