"""The chart cache, the lock file and ``python -m ops charts pull``.

Every Helm chart the program pins (deployed now or by a later phase) has an entry in ``charts.lock.yaml``:
its name, version, the repository the program names (``https://...`` with an ``index.yaml``, or
``oci://...``), the directory it occupies in the chart cache, and two digests:

- ``digest``: ``sha256:`` over the chart's files (sorted relative paths and each file's sha256), i.e. what is
  rendered. The plan refuses a cached chart whose files do not hash to it.
- ``archiveDigest``: the digest the repository publishes for the packaged chart (the ``digest`` of its
  ``index.yaml`` entry, or the OCI manifest digest), recorded by ``charts pull``; null until a pull ran.

The cache is a directory of unpacked charts, ``<directory>/Chart.yaml`` each: ``$BLUMEOPS_CHART_CACHE`` when
set, else ``$XDG_CACHE_HOME/blumeops/charts`` (``~/.cache/...``). Without the variable, a chart missing from
the cache is also looked up in ``../shared/charts`` beside the repository (the reference copies CI has).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ops import console
from ops.stack import ROOT

LOCK_FILE = ROOT / "charts.lock.yaml"
SHARED_CHARTS = ROOT.parent / "shared" / "charts"
CACHE_ENV = "BLUMEOPS_CHART_CACHE"
REQUIRED_ENV = "BLUMEOPS_CHARTS_REQUIRED"
PULL_COMMAND = "python -m ops charts pull"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TIMEOUT_SECONDS = 20.0

LOCK_HEADER = """\
# The Helm charts the program pins, and what their files must hash to (read by `python -m ops plan`,
# written by `python -m ops charts pull`, which keeps `name`..`documented` and rewrites the digests).
#
#   directory:     where the unpacked chart lives in the chart cache (see README, "The chart cache")
#   digest:        sha256 over the chart's files (sorted paths + each file's sha256): what is rendered
#   archiveDigest: the repository's digest of the packaged chart (index.yaml `digest` or the OCI
#                  manifest digest); null until `charts pull` fetched it from the repository
#   appVersion:    checked against the pulled chart's Chart.yaml
#   freeForm:      values paths whose keys are the program's to choose (not checked against values.yaml)
#   documented:    values keys the chart's templates read but its values.yaml shows only in a comment
#   note:          why an entry is the way it is
"""


class ChartError(Exception):
    """A chart cannot be used: not in the cache, its digest does not match the lock, a bad lock."""


@dataclass(frozen=True, slots=True)
class LockedChart:
    name: str
    version: str
    repository: str  # https://... (index.yaml) or oci://host/path (the chart is <repository>/<name>)
    directory: str
    digest: str
    archive_digest: str | None = None
    app_version: str | None = None
    free_form: tuple[str, ...] = ()
    # Values keys the chart reads but documents only in a comment of values.yaml (``# existingClaim:``).
    documented: tuple[str, ...] = ()
    note: str | None = None

    @property
    def unchecked(self) -> tuple[str, ...]:
        """Values paths the values check lets through: free-form maps and comment-documented keys."""
        return self.free_form + self.documented

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def as_yaml(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name, "version": self.version, "repository": self.repository,
            "directory": self.directory, "appVersion": self.app_version, "freeForm": list(self.free_form),
            "digest": self.digest, "archiveDigest": self.archive_digest,
        }
        if self.documented:
            entry["documented"] = list(self.documented)
        if self.note:
            entry["note"] = self.note
        return entry


@dataclass(frozen=True, slots=True)
class Lock:
    charts: tuple[LockedChart, ...]
    path: Path = LOCK_FILE

    def find(self, name: str, version: str) -> LockedChart | None:
        for chart in self.charts:
            if chart.name == name and chart.version == version:
                return chart
        return None


def read_lock(path: Path = LOCK_FILE) -> Lock:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ChartError(f"cannot read the chart lock {path}: {err}") from None
    entries = document.get("charts") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ChartError(f"{path}: expected a `charts:` list")
    charts = []
    for index, entry in enumerate(entries):
        where = f"{path.name} charts[{index}]"
        if not isinstance(entry, dict):
            raise ChartError(f"{where}: expected a map")
        missing = [key for key in ("name", "version", "repository", "directory", "digest") if not entry.get(key)]
        if missing:
            raise ChartError(f"{where}: missing {', '.join(missing)}")
        repository = str(entry["repository"])
        if not repository.startswith(("https://", "http://", "oci://")):
            raise ChartError(f"{where}: repository {repository!r} must be https://... or oci://...")
        free_form = entry.get("freeForm") or []
        documented = entry.get("documented") or []
        for key, paths in (("freeForm", free_form), ("documented", documented)):
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise ChartError(f"{where}: {key} must be a list of values paths")
        charts.append(LockedChart(
            name=str(entry["name"]), version=str(entry["version"]), repository=repository,
            directory=str(entry["directory"]), digest=str(entry["digest"]),
            archive_digest=entry.get("archiveDigest"), app_version=entry.get("appVersion"),
            free_form=tuple(free_form), documented=tuple(documented), note=entry.get("note"),
        ))
    duplicates = sorted({c.label for c in charts if sum(o.label == c.label for o in charts) > 1})
    if duplicates:
        raise ChartError(f"{path}: charts listed twice: {', '.join(duplicates)}")
    return Lock(tuple(charts), path)


def write_lock(lock: Lock) -> None:
    body = yaml.safe_dump({"charts": [c.as_yaml() for c in lock.charts]}, sort_keys=False, width=110)
    lock.path.write_text(LOCK_HEADER + body)


def tree_digest(directory: Path) -> str:
    """sha256 over every regular file below ``directory``: its relative path and its content's sha256."""
    outer = hashlib.sha256()
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    for path in files:
        relative = path.relative_to(directory).as_posix()
        outer.update(relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    return "sha256:" + outer.hexdigest()


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "blumeops" / "charts"


def search_dirs() -> list[Path]:
    """Where charts are looked up, in order: the cache, then (only without $BLUMEOPS_CHART_CACHE) ../shared."""
    dirs = [cache_dir()]
    if not os.environ.get(CACHE_ENV) and SHARED_CHARTS.is_dir():
        dirs.append(SHARED_CHARTS)
    return dirs


def charts_required() -> bool:
    return os.environ.get(REQUIRED_ENV, "").lower() in ("1", "true", "yes")


class ChartMissingError(ChartError):
    """The chart is not in the cache (it may be pulled)."""


_DIGESTS: dict[tuple[str, float], str] = {}


def _cached_tree_digest(directory: Path) -> str:
    # One plan looks a chart up once per Chart resource; hash its files once per process and change.
    stamp = max((p.stat().st_mtime for p in directory.rglob("*")), default=0.0)
    key = (str(directory.resolve()), stamp)
    if key not in _DIGESTS:
        _DIGESTS[key] = tree_digest(directory)
    return _DIGESTS[key]


def locate(chart: LockedChart, dirs: Sequence[Path] | None = None) -> Path:
    """The directory of ``chart`` in the cache, its files checked against the lock."""
    for base in dirs if dirs is not None else search_dirs():
        candidate = base / chart.directory
        if not (candidate / "Chart.yaml").is_file():
            continue
        actual = _cached_tree_digest(candidate)
        if actual != chart.digest:
            raise ChartError(
                f"chart {chart.label} at {candidate} does not match {LOCK_FILE.name}: its files hash to {actual}, "
                f"the lock says {chart.digest}. Re-fetch it with `{PULL_COMMAND} --chart {chart.name}` "
                f"(or, if the lock is what is wrong, `{PULL_COMMAND} --chart {chart.name} --update`)")
        return candidate
    places = " or ".join(str(d) for d in (dirs if dirs is not None else search_dirs()))
    raise ChartMissingError(f"chart {chart.label} is not in the chart cache ({places}/{chart.directory}); "
                       f"fetch it with `{PULL_COMMAND}`")


# ---------------------------------------------------------------------------------------------- pulling


@dataclass(slots=True)
class Fetched:
    archive: bytes
    archive_digest: str


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        return response.read(), {k.lower(): v for k, v in response.headers.items()}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fetch_from_index(repository: str, name: str, version: str) -> Fetched:
    """A chart from a classic Helm repository: its ``index.yaml`` entry, then the archive it names, whose
    sha256 must equal the entry's ``digest``."""
    base = repository.rstrip("/") + "/"
    body, _ = _get(urllib.parse.urljoin(base, "index.yaml"))
    index = yaml.safe_load(body) or {}
    entries = (index.get("entries") or {}).get(name) or []
    entry = next((e for e in entries if str(e.get("version")) == version), None)
    if entry is None:
        known = ", ".join(str(e.get("version")) for e in entries[:10]) or "none"
        raise ChartError(f"{repository}/index.yaml has no {name} {version} (versions there: {known})")
    urls = entry.get("urls") or []
    if not urls:
        raise ChartError(f"{repository}/index.yaml: {name} {version} lists no archive url")
    archive, _ = _get(urllib.parse.urljoin(base, str(urls[0])))
    published = entry.get("digest")
    if not published:
        raise ChartError(f"{repository}/index.yaml: {name} {version} publishes no digest to check the archive by")
    published = published if str(published).startswith("sha256:") else f"sha256:{published}"
    if sha256(archive) != published:
        raise ChartError(f"{urls[0]}: the archive hashes to {sha256(archive)}, index.yaml says {published}")
    return Fetched(archive, published)


def _bearer_token(challenge: str, headers: dict[str, str]) -> str | None:
    if not challenge.lower().startswith("bearer "):
        return None
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", None)
    if not realm:
        return None
    body, _ = _get(realm + "?" + urllib.parse.urlencode(params), headers)
    document = json.loads(body)
    token = document.get("token") or document.get("access_token")
    return str(token) if token else None


def _oci_get(url: str, accept: str, auth: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    headers = {"Accept": accept, **auth}
    try:
        return _get(url, headers)
    except urllib.error.HTTPError as err:
        challenge = err.headers.get("WWW-Authenticate", "") if err.code == 401 else ""
        token = _bearer_token(challenge, {}) if challenge else None
        if token is None:
            raise
        auth["Authorization"] = f"Bearer {token}"
        return _get(url, {"Accept": accept, **auth})


def fetch_from_oci(repository: str, name: str, version: str, plain_http: bool = False) -> Fetched:
    """A chart from an OCI registry (``oci://host/path`` + ``/<name>:<version>``): the manifest, then its
    Helm chart layer, whose sha256 must equal the layer digest. Anonymous bearer tokens are answered."""
    location = repository[len("oci://"):].rstrip("/")
    host, _, path = location.partition("/")
    image = f"{path}/{name}" if path else name
    scheme = "http" if plain_http else "https"
    auth: dict[str, str] = {}
    manifest_bytes, headers = _oci_get(f"{scheme}://{host}/v2/{image}/manifests/{version}", OCI_MANIFEST, auth)
    manifest = json.loads(manifest_bytes)
    layers = [layer for layer in manifest.get("layers") or [] if layer.get("mediaType") == HELM_CHART_LAYER]
    if len(layers) != 1:
        raise ChartError(f"{repository}/{name}:{version} is not a Helm chart (no single {HELM_CHART_LAYER} layer)")
    layer_digest = str(layers[0]["digest"])
    archive, _ = _oci_get(f"{scheme}://{host}/v2/{image}/blobs/{layer_digest}", "*/*", auth)
    if sha256(archive) != layer_digest:
        raise ChartError(f"{repository}/{name}:{version}: the chart layer hashes to {sha256(archive)}, "
                         f"the manifest says {layer_digest}")
    manifest_digest = headers.get("docker-content-digest") or sha256(manifest_bytes)
    if manifest_digest != sha256(manifest_bytes):
        raise ChartError(f"{repository}/{name}:{version}: the manifest does not hash to its digest {manifest_digest}")
    return Fetched(archive, manifest_digest)


def unpack(archive: bytes, target: Path) -> None:
    """Unpack a packaged chart (``<name>/...`` inside) into ``target``, refusing links and escaping paths."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as scratch:
        staging = Path(scratch) / "chart"
        staging.mkdir()
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if member.issym() or member.islnk() or member.name.startswith("/") or ".." in parts:
                    raise ChartError(f"the chart archive holds an unsafe entry {member.name!r}")
                if len(parts) < 2 or not (member.isfile() or member.isdir()):
                    continue
                destination = staging.joinpath(*parts[1:])
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                destination.write_bytes(source.read())
        if not (staging / "Chart.yaml").is_file():
            raise ChartError("the chart archive has no Chart.yaml under its top directory")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)


def pull(chart: LockedChart, cache: Path, *, update: bool = False, plain_http: bool = False) -> LockedChart:
    """Fetch ``chart`` from its repository into ``cache``; return its lock entry with the digests seen.

    Refuses (and leaves the cache as it was) when the repository's chart is not the one the lock pins,
    unless ``update`` (then the returned entry carries the new digest for the lock)."""
    if chart.repository.startswith("oci://"):
        fetched = fetch_from_oci(chart.repository, chart.name, chart.version, plain_http=plain_http)
    else:
        fetched = fetch_from_index(chart.repository, chart.name, chart.version)
    if chart.archive_digest and fetched.archive_digest != chart.archive_digest and not update:
        raise ChartError(f"{chart.label} from {chart.repository} has digest {fetched.archive_digest}, the lock "
                         f"says {chart.archive_digest}; pass --update if the new one is wanted")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".pull-") as scratch:
        staged = Path(scratch) / chart.directory
        unpack(fetched.archive, staged)
        metadata = yaml.safe_load((staged / "Chart.yaml").read_text()) or {}
        if str(metadata.get("name")) != chart.name:
            raise ChartError(f"{chart.repository}: the archive holds chart {metadata.get('name')!r}, not {chart.name}")
        if chart.app_version and str(metadata.get("appVersion")) != chart.app_version:
            # (even with --update: the pin means this application version; --update accepts new digests only)
            raise ChartError(f"{chart.label} from {chart.repository} ships appVersion {metadata.get('appVersion')}, "
                             f"the lock says {chart.app_version}")
        digest = tree_digest(staged)
        if digest != chart.digest and not update:
            raise ChartError(f"{chart.label} from {chart.repository}: its files hash to {digest}, the lock says "
                             f"{chart.digest}; pass --update if the new one is wanted")
        final = cache / chart.directory
        if final.exists():
            shutil.rmtree(final)
        staged.rename(final)
    return replace(chart, digest=digest, archive_digest=fetched.archive_digest)


# ---------------------------------------------------------------------------------------------- command


@dataclass(slots=True)
class PullResult:
    pulled: list[LockedChart] = field(default_factory=list)
    failed: list[tuple[LockedChart, str]] = field(default_factory=list)


def pull_all(lock: Lock, cache: Path, names: Iterable[str] = (), *, update: bool = False,
             plain_http: bool = False) -> PullResult:
    wanted = set(names)
    unknown = wanted - {c.name for c in lock.charts}
    if unknown:
        raise ChartError(f"no chart named {', '.join(sorted(unknown))} in {lock.path.name} "
                         f"(it has {', '.join(c.name for c in lock.charts)})")
    result = PullResult()
    entries = list(lock.charts)
    for index, chart in enumerate(entries):
        if wanted and chart.name not in wanted:
            continue
        try:
            entries[index] = pull(chart, cache, update=update, plain_http=plain_http)
            result.pulled.append(entries[index])
        except (ChartError, OSError, tarfile.TarError, yaml.YAMLError, ValueError) as err:
            result.failed.append((chart, str(err)))
    if entries != list(lock.charts):
        write_lock(Lock(tuple(entries), lock.path))
    return result


def _pull_command(args: argparse.Namespace) -> int:
    lock = read_lock(LOCK_FILE)
    cache = Path(args.cache).expanduser() if args.cache else cache_dir()
    result = pull_all(lock, cache, args.chart or (), update=args.update, plain_http=args.plain_http)
    for chart in result.pulled:
        print(f"{console.paint('pulled', 'green')} {chart.label} into {cache / chart.directory} ({chart.digest})")
    for chart, reason in result.failed:
        print(f"{console.paint('failed', 'red')} {chart.label} from {chart.repository}: {reason}")
    return 1 if result.failed else 0


def _list_command(_args: argparse.Namespace) -> int:
    lock = read_lock(LOCK_FILE)
    rows = []
    for chart in lock.charts:
        try:
            where = str(locate(chart))
        except ChartError as err:
            where = "missing" if isinstance(err, ChartMissingError) else "DIGEST MISMATCH"
        rows.append([chart.name, chart.version, chart.repository, where])
    for line in console.table(["chart", "version", "repository", "in the cache"], rows):
        print(line)
    return 0


def add_parser(sub: Any) -> None:
    charts = sub.add_parser("charts", help="the pinned Helm charts: list them, pull them into the chart cache")
    actions = charts.add_subparsers(dest="charts_command", required=True)
    listing = actions.add_parser("list", help="every pinned chart and where the cache has it")
    listing.set_defaults(func=_list_command)
    pulling = actions.add_parser("pull", help=f"fetch every pinned chart into the cache (${CACHE_ENV})")
    pulling.add_argument("--chart", action="append", help="only this chart (repeatable)")
    pulling.add_argument("--cache", help=f"the cache directory (default ${CACHE_ENV} or ~/.cache/blumeops/charts)")
    pulling.add_argument("--update", action="store_true", help="accept new digests and rewrite the lock")
    pulling.add_argument("--plain-http", action="store_true", help="talk to oci:// registries over http")
    pulling.set_defaults(func=_pull_command)
