"""`python -m ops charts pull` against real servers on loopback: a classic chart repository (index.yaml and a
packaged chart over HTTP, served by http.server) and an OCI registry (Debian's docker-registry, plain and
with token auth). The packaged chart is the reference copy of tailscale-operator, so what is pulled must
hash to the committed lock."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from chart_tools import SHARED_CHARTS

from ops import __main__ as cli
from ops import charts
from tests.servers.registry import PushedImages, Pusher

NAME, VERSION = "tailscale-operator", "1.102.3"


def package(directory: Path, name: str, extra: dict[str, bytes] | None = None) -> bytes:
    """The chart as `helm package` lays it out: a gzipped tar with everything under `<name>/`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=f"{name}/{path.relative_to(directory).as_posix()}")
        for arcname, data in (extra or {}).items():
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def locked() -> charts.LockedChart:
    entry = charts.read_lock().find(NAME, VERSION)
    assert entry is not None
    return entry


@pytest.fixture
def chart_repository(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Helm chart repository on 127.0.0.1: index.yaml + the packaged chart; yields (url, served dir)."""
    served = tmp_path / "repository"
    served.mkdir()
    archive = package(SHARED_CHARTS / locked().directory, NAME)
    (served / f"{NAME}-{VERSION}.tgz").write_bytes(archive)
    index = {"apiVersion": "v1", "entries": {NAME: [
        {"name": NAME, "version": VERSION, "urls": [f"{NAME}-{VERSION}.tgz"],
         "digest": hashlib.sha256(archive).hexdigest()}]}}
    (served / "index.yaml").write_text(yaml.safe_dump(index))
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/charts", served
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:  # serve the directory under /charts/
        return super().translate_path(path.removeprefix("/charts"))

    def log_message(self, *_args: object) -> None:
        return


def test_pull_from_an_index_repository_fills_the_cache_and_the_lock(
        chart_repository: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, served = chart_repository
    lock_path = tmp_path / "charts.lock.yaml"
    entry = charts.LockedChart(**{**_fields(locked()), "repository": url})
    charts.write_lock(charts.Lock((entry,), lock_path))
    monkeypatch.setattr(charts, "LOCK_FILE", lock_path)
    cache = tmp_path / "cache"
    assert cli.main(["charts", "pull", "--cache", str(cache)]) == 0
    assert charts.locate(entry, [cache]) == cache / entry.directory
    written = charts.read_lock(lock_path).charts[0]
    assert written.digest == entry.digest  # the packaged chart has the reference copy's files
    archive = (served / f"{NAME}-{VERSION}.tgz").read_bytes()
    assert written.archive_digest == "sha256:" + hashlib.sha256(archive).hexdigest()


def test_an_archive_that_does_not_match_its_index_digest_is_refused(
        chart_repository: tuple[str, Path], tmp_path: Path) -> None:
    url, served = chart_repository
    (served / f"{NAME}-{VERSION}.tgz").write_bytes(package(SHARED_CHARTS / locked().directory, NAME,
                                                           {f"{NAME}/extra.txt": b"tampered"}))
    entry = charts.LockedChart(**{**_fields(locked()), "repository": url})
    with pytest.raises(charts.ChartError, match=r"index\.yaml says"):
        charts.pull(entry, tmp_path / "cache")
    assert not (tmp_path / "cache" / entry.directory).exists()


def test_a_chart_whose_files_differ_from_the_lock_is_not_cached(chart_repository: tuple[str, Path],
                                                               tmp_path: Path) -> None:
    url, served = chart_repository
    archive = package(SHARED_CHARTS / locked().directory, NAME, {f"{NAME}/extra.txt": b"not in the lock"})
    (served / f"{NAME}-{VERSION}.tgz").write_bytes(archive)
    index = yaml.safe_load((served / "index.yaml").read_text())
    index["entries"][NAME][0]["digest"] = hashlib.sha256(archive).hexdigest()
    (served / "index.yaml").write_text(yaml.safe_dump(index))
    entry = charts.LockedChart(**{**_fields(locked()), "repository": url})
    with pytest.raises(charts.ChartError, match="the lock says"):
        charts.pull(entry, tmp_path / "cache")
    assert not (tmp_path / "cache" / entry.directory).exists()
    updated = charts.pull(entry, tmp_path / "cache", update=True)
    assert updated.digest != entry.digest and charts.locate(updated, [tmp_path / "cache"])


def test_an_archive_with_an_escaping_path_is_refused(tmp_path: Path) -> None:
    archive = package(SHARED_CHARTS / locked().directory, NAME, {f"{NAME}/../../evil": b"x"})
    with pytest.raises(charts.ChartError, match="unsafe entry"):
        charts.unpack(archive, tmp_path / "chart")
    assert not (tmp_path / "evil").exists()


def _push_chart(registry: PushedImages, repository: str) -> tuple[str, str]:
    pusher = Pusher(registry.registry)
    archive = package(SHARED_CHARTS / locked().directory, NAME)
    config = json.dumps({"name": NAME, "version": VERSION, "apiVersion": "v2"}).encode()
    config_digest = pusher.blob(f"{repository}/{NAME}", config)
    layer_digest = pusher.blob(f"{repository}/{NAME}", archive)
    manifest = {"schemaVersion": 2, "mediaType": charts.OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": config_digest,
                           "size": len(config)},
                "layers": [{"mediaType": charts.HELM_CHART_LAYER, "digest": layer_digest, "size": len(archive)}]}
    digest, _body = pusher.manifest(f"{repository}/{NAME}", VERSION, manifest)
    return digest, layer_digest


@pytest.mark.parametrize("variant", ["plain_registry", "token_registry"])
def test_pull_from_an_oci_registry(variant: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    registry: PushedImages = request.getfixturevalue(variant)
    manifest_digest, _ = _push_chart(registry, "helm")
    entry = charts.LockedChart(**{**_fields(locked()), "repository": f"oci://{registry.registry.host}/helm"})
    pulled = charts.pull(entry, tmp_path / "cache", plain_http=True)
    assert pulled.archive_digest == manifest_digest
    assert pulled.digest == entry.digest
    assert (tmp_path / "cache" / entry.directory / "Chart.yaml").is_file()
    if registry.token_server is not None:  # the bearer challenge was answered
        assert any("repository:helm/tailscale-operator:pull" in " ".join(q.get("scope", []))
                   for q in registry.token_server.requests)
    # the lock's archive digest is checked on the next pull
    stale = charts.LockedChart(**{**_fields(entry), "archive_digest": "sha256:" + "0" * 64})
    with pytest.raises(charts.ChartError, match="pass --update"):
        charts.pull(stale, tmp_path / "other", plain_http=True)


def test_a_missing_oci_chart_fails_the_command_naming_it(plain_registry: PushedImages, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    lock_path = tmp_path / "charts.lock.yaml"
    entry = charts.LockedChart(**{**_fields(locked()), "repository": f"oci://{plain_registry.registry.host}/none"})
    charts.write_lock(charts.Lock((entry,), lock_path))
    monkeypatch.setattr(charts, "LOCK_FILE", lock_path)
    assert cli.main(["charts", "pull", "--cache", str(tmp_path / "cache"), "--plain-http"]) == 1
    assert "failed tailscale-operator 1.102.3" in capsys.readouterr().out
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)


def _fields(entry: charts.LockedChart) -> dict[str, object]:
    return {name: getattr(entry, name) for name in charts.LockedChart.__slots__}  # type: ignore[attr-defined]


def test_a_chart_of_another_application_version_is_refused_even_with_update(
        chart_repository: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = chart_repository
    entry = charts.LockedChart(**{**_fields(locked()), "repository": url, "app_version": "v1.90.0"})
    with pytest.raises(charts.ChartError, match=r"ships appVersion v1\.102\.3, the lock says v1\.90\.0"):
        charts.pull(entry, tmp_path / "cache", update=True)
    assert not (tmp_path / "cache" / entry.directory).exists()
