"""`python -m ops images verify`: check policy/images.yaml against the registries.

For every image listed in policy/images.yaml, fetch its manifest with the OCI distribution API
(`GET /v2/<name>/manifests/<tag>` accepting the OCI index, Docker manifest list, OCI manifest and
Docker v2 manifest), answering an anonymous `WWW-Authenticate: Bearer` challenge with a token from
the realm. An index lists its platforms (BuildKit attestation entries, `unknown/unknown`, are
ignored); a single manifest's platform is read from its config blob. The manifest digest is the
`Docker-Content-Digest` header, or the sha256 of the body.

Without `--check` it writes what it found (platforms, digest, today's date) back to the file; with
`--check` it only reports and exits non-zero when the file disagrees with a registry, an image lacks
linux/arm64, or a registry could not be read. Plain-HTTP registries (a local test registry, zot on
localhost) are allowed per host with `--insecure-registry HOST:PORT` or
`BLUMEOPS_INSECURE_REGISTRIES=host:port,...`.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES_FILE = REPO_ROOT / "policy" / "images.yaml"
INSECURE_ENV = "BLUMEOPS_INSECURE_REGISTRIES"
ARM64 = "linux/arm64"
TIMEOUT_SECONDS = 30.0

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
# Same table as policy/rules/catalog.py (the pack imports nothing from the program and vice versa;
# tests/policy asserts both normalise alike).
REGISTRY_ALIASES = {
    "index.docker.io": DOCKER_HUB,
    "registry-1.docker.io": DOCKER_HUB,
    "registry.hub.docker.com": DOCKER_HUB,
    "lscr.io": "ghcr.io",
}
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^\s,]+)')

HEADER_END_MARK = "registries:"


class RegistryError(RuntimeError):
    """A registry could not be read; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after /manifests/: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_image(reference: str) -> ImageRef:
    text = reference.strip()
    if not text:
        raise ValueError("empty image reference")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise ValueError(f"invalid digest {digest!r}")
    tag = None
    if text.rfind(":") > text.rfind("/"):
        text, tag = text.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise ValueError(f"invalid tag {tag!r}")
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first.lower(), rest
    else:
        registry, repository = DOCKER_HUB, text
    registry = REGISTRY_ALIASES.get(registry, registry)
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return ImageRef(registry, repository, tag, digest)


def normalise_platform(platform: Mapping[str, Any]) -> str | None:
    """`{os, architecture, variant}` -> `linux/arm64`, `linux/arm/v7`; None for attestation entries."""
    os_name = str(platform.get("os") or "")
    arch = str(platform.get("architecture") or "")
    variant = str(platform.get("variant") or "")
    if not os_name or not arch or (os_name, arch) == ("unknown", "unknown"):
        return None
    if arch == "arm64" and variant == "v8":
        variant = ""
    return "/".join(part for part in (os_name, arch, variant) if part)


@dataclass(frozen=True, slots=True)
class ManifestFacts:
    """What a registry says about one reference."""

    media_type: str
    digest: str
    platforms: tuple[str, ...]


@dataclass
class RegistryClient:
    """A minimal OCI distribution client: anonymous bearer tokens, plain HTTP only where allowed."""

    insecure_hosts: frozenset[str] = frozenset()
    timeout: float = TIMEOUT_SECONDS
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def api_base(self, registry: str) -> str:
        host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        scheme = "http" if registry in self.insecure_hosts or host in self.insecure_hosts else "https"
        return f"{scheme}://{host}"

    def _open(self, url: str, accept: str | None, token: str | None) -> tuple[int, Mapping[str, str], bytes]:
        request = urllib.request.Request(url, method="GET")
        if accept:
            request.add_header("Accept", accept)
        request.add_header("User-Agent", "blumeops-ops-images/1")
        if token:
            # Unredirected: blob GETs may 307 to a CDN that rejects a foreign Authorization header.
            request.add_unredirected_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            body = error.read() if error.fp is not None else b""
            return error.code, dict(error.headers.items()), body
        except (urllib.error.URLError, OSError) as error:
            raise RegistryError(f"cannot reach {url}: {getattr(error, 'reason', error)}") from error

    def get(
        self, registry: str, repository: str, path: str, accept: str | None = None
    ) -> tuple[Mapping[str, str], bytes]:
        url = f"{self.api_base(registry)}/v2/{repository}/{path}"
        scope = f"repository:{repository}:pull"
        token = self._tokens.get((registry, scope))
        status, headers, body = self._open(url, accept, token)
        if status == 401:
            challenge = _header(headers, "WWW-Authenticate")
            token = self._fetch_token(registry, challenge, scope, url)
            self._tokens[(registry, scope)] = token
            status, headers, body = self._open(url, accept, token)
        if status != 200:
            detail = _registry_error_text(body)
            raise RegistryError(f"GET {url} answered HTTP {status}{': ' + detail if detail else ''}")
        return headers, body

    def _fetch_token(self, registry: str, challenge: str | None, scope: str, url: str) -> str:
        if not challenge or not challenge.lower().startswith("bearer "):
            raise RegistryError(
                f"{url} needs authentication ({challenge or 'no WWW-Authenticate challenge'}); "
                "only anonymous bearer tokens are supported"
            )
        params = {
            (m.group(1) or m.group(3)).lower(): (m.group(2) if m.group(1) else m.group(4))
            for m in _CHALLENGE_PARAM_RE.finditer(challenge[len("bearer ") :])
        }
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{url}: bearer challenge without a realm: {challenge}")
        query = {"scope": params.get("scope") or scope}
        if params.get("service"):
            query["service"] = params["service"]
        token_url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(query)}"
        status, _headers, body = self._open(token_url, "application/json", None)
        if status != 200:
            raise RegistryError(f"token request {token_url} answered HTTP {status}: {_registry_error_text(body)}")
        try:
            document = json.loads(body)
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token request {token_url} returned no token")
        return token

    def inspect(self, ref: ImageRef) -> ManifestFacts:
        headers, body = self.get(ref.registry, ref.repository, f"manifests/{ref.reference}", ACCEPT)
        try:
            manifest = json.loads(body)
        except ValueError as error:
            raise RegistryError(f"{ref}: manifest is not JSON") from error
        content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip()
        media_type = manifest.get("mediaType") or content_type
        digest = _header(headers, "Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        if media_type in INDEX_TYPES or (not media_type and "manifests" in manifest):
            platforms = set()
            for entry in manifest.get("manifests") or []:
                annotations = entry.get("annotations") or {}
                if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
                    continue
                platform = normalise_platform(entry.get("platform") or {})
                if platform:
                    platforms.add(platform)
            return ManifestFacts(media_type or OCI_INDEX, digest, tuple(sorted(platforms)))
        if media_type in MANIFEST_TYPES or (not media_type and "config" in manifest):
            config_digest = (manifest.get("config") or {}).get("digest")
            if not config_digest:
                raise RegistryError(f"{ref}: manifest has no config blob")
            _config_headers, config_body = self.get(ref.registry, ref.repository, f"blobs/{config_digest}")
            try:
                config = json.loads(config_body)
            except ValueError as error:
                raise RegistryError(f"{ref}: config blob {config_digest} is not JSON") from error
            platform = normalise_platform(config)
            return ManifestFacts(media_type or OCI_MANIFEST, digest, (platform,) if platform else ())
        raise RegistryError(f"{ref}: unsupported manifest media type {media_type!r}")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _registry_error_text(body: bytes) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace").strip()


# ---------------------------------------------------------------------------------------------
# images.yaml


@dataclass(frozen=True, slots=True)
class ImagesFile:
    header: str
    document: dict[str, Any]

    @property
    def images(self) -> dict[str, dict[str, Any]]:
        images = self.document.get("images")
        return images if isinstance(images, dict) else {}


def read_images_file(path: Path) -> ImagesFile:
    text = path.read_text(encoding="utf-8")
    header_lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("#") or not line.strip():
            header_lines.append(line)
        else:
            break
    document = yaml.safe_load(text) or {}
    if not isinstance(document, dict) or not isinstance(document.get("images"), dict):
        raise ValueError(f"{path}: expected a mapping with an `images:` mapping")
    return ImagesFile("".join(header_lines), document)


def render_images_file(images_file: ImagesFile) -> str:
    body = yaml.safe_dump(images_file.document, sort_keys=False, default_flow_style=False, width=1000,
                          allow_unicode=True)
    return images_file.header + body


# ---------------------------------------------------------------------------------------------
# verify


@dataclass(frozen=True, slots=True)
class VerifyResult:
    key: str
    recorded_platforms: tuple[str, ...]
    recorded_digest: str | None
    facts: ManifestFacts | None
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        assert self.facts is not None
        if ARM64 not in self.facts.platforms:
            return "no-arm64"
        if self.recorded_digest is None:
            return "new"
        if set(self.recorded_platforms) != set(self.facts.platforms) or self.recorded_digest != self.facts.digest:
            return "changed"
        return "ok"


def verify_images(images: Mapping[str, Mapping[str, Any]], client: RegistryClient,
                  only: Iterable[str] = ()) -> list[VerifyResult]:
    wanted = {str(parse_image(reference)) for reference in only}
    results = []
    for key, details in images.items():
        recorded_platforms = tuple(str(p) for p in (details.get("platforms") or []))
        recorded_digest = details.get("digest") or None
        try:
            ref = parse_image(str(key))
        except ValueError as error:
            problem = f"invalid reference: {error}"
            results.append(VerifyResult(str(key), recorded_platforms, recorded_digest, None, problem))
            continue
        if wanted and str(ref) not in wanted:
            continue
        try:
            facts = client.inspect(ref)
        except RegistryError as error:
            results.append(VerifyResult(str(key), recorded_platforms, recorded_digest, None, str(error)))
            continue
        results.append(VerifyResult(str(key), recorded_platforms, recorded_digest, facts))
    return results


def apply_results(images: dict[str, dict[str, Any]], results: Sequence[VerifyResult], today: datetime.date) -> None:
    for result in results:
        if result.facts is None:
            continue
        entry = images[result.key]
        entry["platforms"] = list(result.facts.platforms)
        entry["digest"] = result.facts.digest
        entry["verified"] = today.isoformat()


def render_table(results: Sequence[VerifyResult], check: bool) -> str:
    rows = [("IMAGE", "STATUS", "PLATFORMS", "DIGEST")]
    for result in results:
        if result.facts is None:
            rows.append((result.key, result.status, "-", result.error or ""))
            continue
        digest = result.facts.digest
        short = digest.split(":", 1)[0] + ":" + digest.split(":", 1)[-1][:12] if ":" in digest else digest
        rows.append((result.key, result.status, ",".join(result.facts.platforms) or "-", short))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)).rstrip()
             for row in rows]
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    parts = [f"{counts[s]} {s}" for s in ("ok", "new", "changed", "no-arm64", "error") if counts.get(s)]
    verb = "checked" if check else "verified"
    lines.append(f"{len(results)} image(s) {verb}: {', '.join(parts) or 'nothing to do'}")
    return "\n".join(lines) + "\n"


def insecure_hosts(option_values: Sequence[str] | None) -> frozenset[str]:
    hosts = set(option_values or [])
    hosts.update(h.strip() for h in os.environ.get(INSECURE_ENV, "").split(",") if h.strip())
    return frozenset(h.lower() for h in hosts)


def run_verify(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out if out is not None else sys.stdout
    path = Path(args.file)
    try:
        images_file = read_images_file(path)
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"images verify: {error}", file=sys.stderr)
        return 2
    client = RegistryClient(insecure_hosts=insecure_hosts(args.insecure_registry), timeout=args.timeout)
    try:
        results = verify_images(images_file.images, client, args.images or ())
    except ValueError as error:
        print(f"images verify: {error}", file=sys.stderr)
        return 2
    if args.images and not results:
        print(f"images verify: none of {', '.join(args.images)} is listed in {path}", file=sys.stderr)
        return 2
    stream.write(render_table(results, args.check))
    failed = [r for r in results if r.status in ("error", "no-arm64")]
    if args.check:
        failed += [r for r in results if r.status in ("new", "changed")]
        if failed:
            stream.write(f"{path} disagrees with the registries or an image lacks {ARM64}: "
                         "run `python -m ops images verify` and review the diff\n")
        return 1 if failed else 0
    read = [r for r in results if r.facts is not None]
    if read:
        today = datetime.date.fromisoformat(args.today) if args.today else datetime.date.today()
        apply_results(images_file.images, read, today)
        path.write_text(render_images_file(images_file), encoding="utf-8")
        stream.write(f"wrote {path} ({len(read)} image(s) recorded)\n")
    if failed:
        stream.write(f"{len(failed)} image(s) failed: every image must be readable and ship {ARM64}\n")
    return 1 if failed else 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `images verify` to the `python -m ops` command line."""
    images = subparsers.add_parser("images", help="check policy/images.yaml against the registries")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    verify = images_sub.add_parser(
        "verify",
        help="read each image's manifest from its registry and record platforms, digest and date",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    verify.add_argument("images", nargs="*", metavar="IMAGE", help="only these references (default: all)")
    verify.add_argument("--check", action="store_true",
                        help="only report; exit 1 on a mismatch, an image without linux/arm64 or an error")
    verify.add_argument("--file", default=str(DEFAULT_IMAGES_FILE), help="the images file (default: %(default)s)")
    verify.add_argument("--insecure-registry", action="append", metavar="HOST:PORT",
                        help=f"talk plain HTTP to this registry (repeatable; also ${INSECURE_ENV})")
    verify.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help="seconds per HTTP request")
    verify.add_argument("--today", help=argparse.SUPPRESS)
    verify.set_defaults(func=run_verify)
