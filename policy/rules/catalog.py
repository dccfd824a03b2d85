"""Image references and the pack's image catalog, `policy/images.yaml`.

A reference is normalised the way containerd resolves it, so that `tailscale/tailscale:v1.92.5`,
`docker.io/tailscale/tailscale:v1.92.5` and `index.docker.io/tailscale/tailscale:v1.92.5` are one
image, `redis:8` is `docker.io/library/redis:8`, and LinuxServer's vanity name
`lscr.io/linuxserver/x` is `ghcr.io/linuxserver/x` (lscr.io only redirects there).

`ops/images.py` (the verifier) carries its own copy of these few rules because the pack imports
nothing from the program; `tests/policy` asserts that both normalise alike.

Images the program builds itself (`built:`, e.g. `registry.tail8d86e.ts.net/blumeops/devpi`) are catalogued
by repository with the one tag they may carry, the content hash of their build context (`context`), and ship
exactly the platforms the build step builds. The pack reads nothing outside policy/ (a pull request is judged
by the base's pack, copied out of the project), so the tag is written here: the test suite checks it equals
the hash of the context in the repository (`content_tag`, computed as `components/host/devpi_image` does), so
an edited context needs this file edited in the same change, in plain sight of the reviewer. Any other tag
of such a repository is unknown: nothing says what it holds.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

IMAGES_FILE = Path(__file__).resolve().parent.parent / "images.yaml"
BUILT_TAG_LENGTH = 16
_COMPUTED_TAG = re.compile(rf"^[0-9a-f]{{{BUILT_TAG_LENGTH}}}$")
HOST_COMPUTED = "host-computed"  # `tag:` of a built image whose content hash covers data only the host has

DOCKER_HUB = "docker.io"
# Other names of a registry -> the name images.yaml and zot use for it.
REGISTRY_ALIASES: Mapping[str, str] = {
    "index.docker.io": DOCKER_HUB,
    "registry-1.docker.io": DOCKER_HUB,
    "registry.hub.docker.com": DOCKER_HUB,
    "lscr.io": "ghcr.io",
}
ARM64 = "linux/arm64"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_DOMAIN_RE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?$")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A normalised image reference."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> bool:
        """Pinned by digest, or by a tag other than `latest`."""
        return self.digest is not None or (self.tag is not None and self.tag != "latest")

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_image(reference: str) -> ImageRef:
    """Parse and normalise `reference`; ValueError says what is wrong with it."""
    text = reference.strip()
    if not text:
        raise ValueError("empty image reference")
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise ValueError(f"invalid digest {digest!r}")
    tag: str | None = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise ValueError(f"invalid tag {tag!r}")
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first.lower() == "localhost"):
        if not _DOMAIN_RE.match(first):
            raise ValueError(f"invalid registry {first!r}")
        registry, repository = first.lower(), rest
    else:
        registry, repository = DOCKER_HUB, text
    registry = REGISTRY_ALIASES.get(registry, registry)
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPOSITORY_RE.match(repository):
        raise ValueError(f"invalid repository {repository!r} (lower-case letters, digits, . _ - and /)")
    return ImageRef(registry, repository, tag, digest)


def registry_as_written(reference: str) -> str | None:
    """The registry part of `reference` exactly as written (None when it names none: Docker Hub)."""
    first, _, rest = reference.strip().partition("/")
    if rest and ("." in first or ":" in first or first.lower() == "localhost"):
        return first
    return None


def normalise_platform(platform: str) -> str:
    """`linux/arm64/v8` -> `linux/arm64` (containerd treats them alike); others unchanged."""
    parts = platform.strip().split("/")
    if len(parts) == 3 and parts[1] == "arm64" and parts[2] == "v8":
        parts = parts[:2]
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    key: str
    ref: ImageRef
    platforms: tuple[str, ...]
    digest: str | None
    verified: str | None
    source: str
    built: bool = False  # built by the program from a context in the repository: known by construction

    @property
    def has_arm64(self) -> bool:
        return ARM64 in {normalise_platform(p) for p in self.platforms}

    @property
    def is_verified(self) -> bool:
        return self.built or (bool(self.digest) and bool(self.verified))


@dataclass(frozen=True, slots=True)
class Catalog:
    entries: tuple[CatalogEntry, ...] = ()
    mirrored_registries: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    path: Path = IMAGES_FILE
    _by_key: dict[str, CatalogEntry] = field(default_factory=dict, repr=False, compare=False)
    # built images whose tag the host computes from data (a content hash): by repository name
    _computed: dict[str, CatalogEntry] = field(default_factory=dict, repr=False, compare=False)

    def lookup(self, ref: ImageRef) -> CatalogEntry | None:
        """The entry for `ref`: same name and tag, or (digest-pinned) same name and digest; for a repository the
        program builds with a host-computed tag, any content-hash tag (16 hex digits) and no digest."""
        computed = self._computed.get(ref.name)
        if computed is not None:
            return computed if ref.digest is None and ref.tag is not None and _COMPUTED_TAG.match(ref.tag) else None
        if ref.digest is None:
            return self._by_key.get(str(ref))
        exact = self._by_key.get(str(ref))
        if exact is not None:
            return exact
        for entry in self.entries:
            if entry.ref.name != ref.name:
                continue
            if ref.digest in (entry.ref.digest, entry.digest):
                return entry
            if ref.tag is not None and entry.ref.tag == ref.tag and entry.ref.digest is None:
                return entry
        return None


def _as_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return str(value)


def parse_catalog(document: Any, path: Path = IMAGES_FILE) -> Catalog:
    """Build a Catalog from the parsed YAML; problems go to `errors` instead of raising."""
    errors: list[str] = []
    if not isinstance(document, Mapping):
        return Catalog(errors=(f"{path.name}: expected a mapping with `registries` and `images`",), path=path)
    registries = document.get("registries") or {}
    mirrored_raw = registries.get("mirrored") if isinstance(registries, Mapping) else None
    mirrored: list[str] = []
    if isinstance(mirrored_raw, list) and all(isinstance(r, str) for r in mirrored_raw):
        mirrored = [REGISTRY_ALIASES.get(r.lower(), r.lower()) for r in mirrored_raw]
    else:
        errors.append(f"{path.name}: `registries.mirrored` must be a list of registry host names")
    images = document.get("images")
    if not isinstance(images, Mapping):
        errors.append(f"{path.name}: `images` must be a mapping of image reference -> details")
        images = {}
    entries: list[CatalogEntry] = []
    by_key: dict[str, CatalogEntry] = {}
    computed: dict[str, CatalogEntry] = {}
    for key, details in images.items():
        try:
            ref = parse_image(str(key))
        except ValueError as exc:
            errors.append(f"{path.name}: image {key!r}: {exc}")
            continue
        if not isinstance(details, Mapping):
            errors.append(f"{path.name}: image {key!r}: expected a mapping with platforms/digest/verified/source")
            continue
        platforms = details.get("platforms")
        if not isinstance(platforms, list) or not all(isinstance(p, str) for p in platforms):
            errors.append(f"{path.name}: image {key!r}: `platforms` must be a list like [linux/amd64, linux/arm64]")
            continue
        entry = CatalogEntry(
            key=str(key),
            ref=ref,
            platforms=tuple(platforms),
            digest=_as_text(details.get("digest")),
            verified=_as_text(details.get("verified")),
            source=str(details.get("source") or ""),
        )
        if str(ref) in by_key:
            errors.append(f"{path.name}: image {key!r} is listed twice (as {by_key[str(ref)].key!r})")
            continue
        entries.append(entry)
        by_key[str(ref)] = entry
    built = document.get("built") or {}
    if not isinstance(built, Mapping):
        errors.append(f"{path.name}: `built` must be a mapping of repository -> platforms/context/source")
        built = {}
    for key, details in built.items():
        built_entry, problem = _built_entry(str(key), details, path)
        if built_entry is None:
            errors.append(problem or f"{path.name}: built image {key!r}")
            continue
        if str(built_entry.ref) in by_key:
            errors.append(f"{path.name}: built image {key!r} is also listed under `images`")
            continue
        entries.append(built_entry)
        if built_entry.ref.tag == HOST_COMPUTED:
            computed[built_entry.ref.name] = built_entry
        else:
            by_key[str(built_entry.ref)] = built_entry
    clash = sorted(name for name in computed if any(entry.ref.name == name for entry in by_key.values()))
    errors.extend(f"{path.name}: {name} has a host-computed tag and catalogued tags" for name in clash)
    return Catalog(tuple(entries), tuple(mirrored), tuple(errors), path, by_key, computed)


def content_tag(files: Mapping[str, bytes]) -> str:
    """The tag a build context gets: sha256 over name, NUL, length, NUL, bytes of every file (sorted by name),
    the first 16 hex digits. The same as the build step's (components/host/devpi_image.content_tag)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        digest.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()[:BUILT_TAG_LENGTH]


def _built_entry(key: str, details: Any, path: Path) -> tuple[CatalogEntry | None, str | None]:
    where = f"{path.name}: built image {key!r}"
    if not isinstance(details, Mapping):
        return None, f"{where}: expected a mapping with platforms/context/source"
    platforms = details.get("platforms")
    if not isinstance(platforms, list) or not all(isinstance(p, str) for p in platforms) or not platforms:
        return None, f"{where}: `platforms` must list what the build step builds, like [linux/arm64]"
    if details.get("tag") == HOST_COMPUTED:
        # its content hash covers what only the host has (devpi's export): the step that builds it computes the
        # tag and builds nothing else (source says which step)
        if not details.get("source"):
            return None, f"{where}: a host-computed tag needs `source`: the step that builds it"
        try:
            ref = parse_image(f"{key}:{HOST_COMPUTED}")
        except ValueError as exc:
            return None, f"{where}: {exc}"
        return CatalogEntry(key=str(ref), ref=ref, platforms=tuple(platforms), digest=None, verified=None,
                            source=str(details["source"]), built=True), None
    tag, context = details.get("tag"), details.get("context")
    if not isinstance(tag, str) or not _COMPUTED_TAG.match(tag):
        return None, (f"{where}: `tag` must be the content hash of its build context (16 hex digits; the build "
                      "step prints it, tests/policy/test_policy_built_images.py checks it) or host-computed")
    if not isinstance(context, str) or context.startswith("/") or ".." in context.split("/"):
        return None, f"{where}: `context` must be the build context's directory, relative to the project"
    try:
        ref = parse_image(f"{key}:{tag}")
    except ValueError as exc:
        return None, f"{where}: {exc}"
    return CatalogEntry(key=str(ref), ref=ref, platforms=tuple(platforms), digest=None, verified=None,
                        source=str(details.get("source") or f"built from {context}"), built=True), None


def load_catalog(path: Path = IMAGES_FILE) -> Catalog:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return Catalog(errors=(f"cannot read {path}: {exc}",), path=path)
    return parse_catalog(document, path)


@functools.cache
def default_catalog() -> Catalog:
    """The pack's own images.yaml, read once per process."""
    return load_catalog(IMAGES_FILE)
