"""The devpi export step on the fake machine, with the real devpi-export of the project's venv (the versions the
image installs) on the session's "legacy" server directory (tests/servers/devpi.py: user eblume, index eblume/dev,
an uploaded wheel), the stub Docker Desktop CLI (its build carries out the Dockerfile's COPY lines into the saved
layer) and the real curl pushing to the real docker-registry (tests/servers/registry.py)."""

from __future__ import annotations

import dataclasses
import http.server
import io
import json
import shutil
import subprocess
import tarfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pulumi
import pytest

from components.host.devpi_export import (
    IMPORT_DOCKERFILE,
    DevpiExport,
    DevpiExportArgs,
    parse_image_reference,
)
from components.host.devpi_image import DevpiImageArgs, content_tag
from ops.engine import harness
from tests.host.conftest import Machine
from tests.host.test_devpi_image import MANIFEST_TYPES, docker_calls, image_args, manifest
from tests.host.test_faults import Mounts, _fault, mounts  # noqa: F401 - the fixture
from tests.servers.devpi import DEVPI_ENV, EBLUME_PASSWORD, PACKAGE, VENV_BIN, DevpiServer, DevpiServers, wheel
from tests.servers.registry import PushedImages, free_port

pytestmark = pytest.mark.xdist_group("devpi")
SHELLCHECK = VENV_BIN / "shellcheck"
PULL = "registry.example.ts.net"


def export_args(machine: Machine, registry: PushedImages, server_dir: Path, repository: str,
                **changes: object) -> DevpiExportArgs:
    image = image_args(machine, registry)
    values: dict[str, object] = {
        "host": image.host, "image": image, "server_dir": str(server_dir),
        "devpi_export": str(VENV_BIN / "devpi-export"), "repository": repository,
        # nothing listens there: the legacy server is stopped
        "listen_url": f"http://127.0.0.1:{free_port()}",
    }
    values.update(changes)
    return DevpiExportArgs(**values)  # type: ignore[arg-type]


def offline_image(machine: Machine) -> DevpiImageArgs:
    return DevpiImageArgs(host=machine.host(), pull_registry=PULL, push_registry="localhost:5050")


def snapshot(directory: Path) -> dict[str, tuple[str, bytes, int, int]]:
    """Every entry under ``directory``: kind, bytes (files) or target (links), mode, mtime."""
    entries = {}
    for path in sorted(directory.rglob("*")):
        stat = path.lstat()
        if path.is_symlink():
            entries[str(path)] = ("link", str(path.readlink()).encode(), stat.st_mode, stat.st_mtime_ns)
        elif path.is_dir():
            entries[str(path)] = ("dir", b"", stat.st_mode, stat.st_mtime_ns)
        else:
            entries[str(path)] = ("file", path.read_bytes(), stat.st_mode, stat.st_mtime_ns)
    return entries


def reference(result: subprocess.CompletedProcess[str], args: DevpiExportArgs) -> str:
    assert result.stdout.strip(), result.stderr
    return parse_image_reference(result.stdout, args.image_prefix)


def expected_tag(args: DevpiExportArgs) -> str:
    """The tag computed in Python over the context files and the export as the step kept it."""
    export = Path(args.work_dir) / "export"
    files: dict[str, str | bytes] = dict(args.files)
    files.update({f"import/{path.relative_to(export)}": path.read_bytes()
                  for path in export.rglob("*") if path.is_file()})
    return content_tag(files)


def pulled_root(registry: PushedImages, image: str, into: Path) -> Path:
    """The pushed image's layers, unpacked into ``into`` (what the init container sees)."""
    repository, tag = image.removeprefix(f"{PULL}/").split(":")
    base = f"{registry.registry.base}/v2/{repository}"
    request = urllib.request.Request(f"{base}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
    with urllib.request.urlopen(request, timeout=10) as response:
        document = json.load(response)
    for layer in document["layers"]:
        with urllib.request.urlopen(f"{base}/blobs/{layer['digest']}", timeout=30) as response:
            data = response.read()
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            archive.extractall(into, filter="data")
    return into


def test_the_import_context_is_the_devpi_context_plus_the_copy_of_the_export(machine: Machine) -> None:
    image = offline_image(machine)
    args = DevpiExportArgs(host=image.host, image=image, server_dir="/srv/devpi", devpi_export="/opt/bin/devpi-export")
    assert args.work_dir == f"{image.host.home}/.local/state/blumeops/devpi-export"
    assert set(args.files) == set(image.files)
    assert args.files["Dockerfile"].startswith(image.files["Dockerfile"].rstrip("\n"))
    assert args.files["Dockerfile"].endswith(IMPORT_DOCKERFILE) and "COPY --chown=1000:1000 import/ /import/" in \
        args.files["Dockerfile"]
    assert args.image_prefix == "registry.example.ts.net/blumeops/devpi-import"
    step = args.step("devpi-export")
    assert step.variables["SERVER_DIR"] == "/srv/devpi" and step.variables["DEVPI_EXPORT"] == "/opt/bin/devpi-export"
    for field, value, message in (("server_dir", "devpi", "absolute path"),
                                  ("work_dir", "/srv/devpi/export", "must not contain"),
                                  ("listen_url", "http://indri:3141", "http://localhost"),
                                  ("repository", image.repository, "repository of its own"),
                                  ("repository", "Blumeops/X", "not a registry repository")):
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(args, **{field: value})  # type: ignore[arg-type]


def test_the_stdout_contract() -> None:
    prefix = "registry.example.ts.net/blumeops/devpi-import"
    assert parse_image_reference(f"noise\n{prefix}:0123456789abcdef\n", prefix) == f"{prefix}:0123456789abcdef"
    for stdout in ("", f"{prefix}:0123456789abcdef\nmore", f"{prefix}:0123", f"{prefix}x:0123456789abcdef"):
        with pytest.raises(ValueError, match="last line of stdout"):
            parse_image_reference(stdout, prefix)


def test_the_rendered_scripts_pass_shellcheck(machine: Machine, tmp_path: Path) -> None:
    image = offline_image(machine)
    args = DevpiExportArgs(host=image.host, image=image, server_dir="/srv/devpi", devpi_export="/opt/bin/devpi-export")
    paths = []
    for name, step in (("export", args.step("devpi-export")), ("image", image.step("devpi-image"))):
        path = tmp_path / f"{name}.sh"
        path.write_text(step.render())
        paths.append(str(path))
    result = subprocess.run([str(SHELLCHECK), "--severity=style", *paths], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_build_push_and_an_unchanged_server_builds_nothing(
        machine: Machine, plain_registry: PushedImages, devpi_servers: DevpiServers,
        tmp_path: Path) -> None:
    server = devpi_servers.legacy_dir
    before = snapshot(server)
    args = export_args(machine, plain_registry, server, "blumeops/devpi-import-once")
    result = machine.run(args.step("devpi-export"))
    image = reference(result, args)
    tag = image.rsplit(":", 1)[1]
    assert result.stdout.strip().splitlines() == [image]  # the reference is all stdout carries
    assert tag == expected_tag(args)
    assert [call.split()[1] for call in docker_calls(machine)] == ["info", "buildx", "save"]
    assert manifest(plain_registry, args.repository, tag)[0] == 200
    export = Path(args.work_dir) / "export"
    index = json.loads((export / "dataindex.json").read_text())
    assert "eblume" in index["users"] and "eblume/dev" in index["indexes"]
    assert [p.name for p in export.rglob("*.whl")] == [devpi_servers.wheel_name]
    # the pushed image holds the export at /import, as the init container copies it
    root = pulled_root(plain_registry, image, tmp_path / "root")
    assert (root / "import" / "dataindex.json").read_bytes() == (export / "dataindex.json").read_bytes()
    # a second run: the export is reused, the registry has the tag: nothing is exported, built or pushed
    since = len(machine.calls())
    again = machine.run(args.step("devpi-export"))
    assert reference(again, args) == image and docker_calls(machine, since) == []
    assert "not exporting again" in again.stderr and "already in the registry" in again.stderr
    # delete (the rollback) removes the kept export; a re-raise exports again and gets the same tag
    deleted = machine.run(args.step("devpi-export"), "delete")
    assert "was not touched" in deleted.stderr and not Path(args.work_dir).exists()
    since = len(machine.calls())
    raised = machine.run(args.step("devpi-export"))
    assert reference(raised, args) == image and docker_calls(machine, since) == []
    assert "exported" in raised.stderr
    # the server directory was read, never written; nothing stays in the scratch directory
    assert snapshot(server) == before
    assert list((machine.root / "tmp").iterdir()) == []


def test_the_pushed_export_imports_and_serves_the_package(
        machine: Machine, plain_registry: PushedImages, devpi_servers: DevpiServers,
        tmp_path: Path) -> None:
    args = export_args(machine, plain_registry, devpi_servers.legacy_dir, "blumeops/devpi-import-served")
    image = reference(machine.run(args.step("devpi-export")), args)
    root = pulled_root(plain_registry, image, tmp_path / "root")
    serverdir = tmp_path / "server"
    serverdir.mkdir()
    devpi_servers.entrypoint(serverdir, "init", env={"DEVPI_IMPORT_DIR": str(root / "import")}, check=True)
    server = DevpiServer("from-image", serverdir, tmp_path / "server.log")
    try:
        devpi_servers.start_entrypoint(server)
        assert server.login("eblume", EBLUME_PASSWORD)[0] == 200
        with urllib.request.urlopen(f"{server.url}/eblume/dev/+simple/{PACKAGE}/", timeout=10) as response:
            assert devpi_servers.wheel_name in response.read().decode()
    finally:
        server.stop()


def test_a_changed_server_gets_a_new_export_and_tag(
        machine: Machine, plain_registry: PushedImages, devpi_servers: DevpiServers,
        tmp_path: Path) -> None:
    server = tmp_path / "devpi"
    shutil.copytree(devpi_servers.legacy_dir, server, symlinks=True)
    args = export_args(machine, plain_registry, server, "blumeops/devpi-import-changed")
    first = reference(machine.run(args.step("devpi-export")), args)
    # the legacy server runs once more (by hand) and takes another upload
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", **DEVPI_ENV}
    legacy = DevpiServer("changed", server, tmp_path / "changed.log", port=free_port())
    legacy.start([str(VENV_BIN / "devpi-server"), "--serverdir", str(server), "--secretfile", str(server / ".secret"),
                  "--host", "127.0.0.1", "--port", str(legacy.port)], env)
    try:
        status, token = legacy.login("eblume", EBLUME_PASSWORD)
        assert status == 200 and token
        filename, content = wheel(PACKAGE, "1.0.1", "changed")
        assert legacy.upload("eblume/dev", ("eblume", token), filename, content, PACKAGE, "1.0.1") == 200
    finally:
        legacy.stop()
    since = len(machine.calls())
    result = machine.run(args.step("devpi-export"))
    second = reference(result, args)
    assert second != first and "exported" in result.stderr and "not exporting again" not in result.stderr
    assert [call.split()[1] for call in docker_calls(machine, since)] == ["info", "buildx", "save"]
    assert filename in {p.name for p in (Path(args.work_dir) / "export").rglob("*.whl")}
    assert manifest(plain_registry, args.repository, first.rsplit(":", 1)[1])[0] == 200  # the old tag stays


def test_a_running_legacy_server_is_refused(
        machine: Machine, plain_registry: PushedImages, devpi_servers: DevpiServers) -> None:
    args = export_args(machine, plain_registry, devpi_servers.legacy_dir, "blumeops/devpi-import-running",
                       listen_url=devpi_servers.fresh.url)  # a devpi-server answering /+api
    result = machine.run(args.step("devpi-export"), check=False)
    assert result.returncode != 0 and "still runs" in result.stderr, result.stderr
    assert "nothing was exported" in result.stderr
    assert result.stdout == "" and not Path(args.work_dir).exists() and docker_calls(machine) == []


def test_a_failed_export_leaves_nothing_and_a_non_server_is_refused(
        machine: Machine, plain_registry: PushedImages, devpi_servers: DevpiServers,
        tmp_path: Path) -> None:
    failing = machine.bin / "devpi-export-failing"
    failing.write_text('#!/bin/bash\nmkdir -p "${!#}" && echo partial >"${!#}/half"\necho "boom" >&2\nexit 1\n')
    failing.chmod(0o755)
    args = export_args(machine, plain_registry, devpi_servers.legacy_dir, "blumeops/devpi-import-failing",
                       devpi_export=str(failing))
    result = machine.run(args.step("devpi-export"), check=False)
    assert result.returncode != 0 and "`devpi-export --serverdir" in result.stderr, result.stderr
    assert "boom" in result.stderr and "nothing was exported" in result.stderr
    assert list(Path(args.work_dir).iterdir()) == [] and docker_calls(machine) == []  # the staging went too
    empty = tmp_path / "not-a-server"
    empty.mkdir()
    result = machine.run(dataclasses.replace(args, server_dir=str(empty)).step("devpi-export"), check=False)
    assert result.returncode != 0 and "not a devpi server directory" in result.stderr, result.stderr


def test_a_failed_build_fails_the_step_and_the_next_run_builds(
        machine: Machine, plain_registry: PushedImages, devpi_servers: DevpiServers) -> None:
    args = export_args(machine, plain_registry, devpi_servers.legacy_dir, "blumeops/devpi-import-build")
    machine.fail("docker-build-run")
    result = machine.run(args.step("devpi-export"), check=False)
    assert result.returncode != 0 and "`docker buildx build` of blumeops/devpi-import-build:" in result.stderr
    assert "nothing was pushed" in result.stderr and result.stdout == ""
    machine.heal("docker-build-run")
    result = machine.run(args.step("devpi-export"))
    assert "not exporting again" in result.stderr  # the export survived the failed build
    assert manifest(plain_registry, args.repository, reference(result, args).rsplit(":", 1)[1])[0] == 200


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_full_or_read_only_work_dir_exports_nothing(
        machine: Machine, plain_registry: PushedImages, devpi_servers: DevpiServers,
        mounts: Mounts, fault: str) -> None:  # noqa: F811
    server = devpi_servers.legacy_dir
    before = snapshot(server)
    args = export_args(machine, plain_registry, server, f"blumeops/devpi-import-{fault}")
    state = Path(args.work_dir).parent
    heal = _fault(mounts, state, fault)
    result = machine.run(args.step("devpi-export"), check=False)
    assert result.returncode != 0 and "full" in result.stderr and "read-only" in result.stderr, result.stderr
    assert str(state) in result.stderr, result.stderr
    assert result.stdout == "" and docker_calls(machine) == []
    assert not (Path(args.work_dir) / "export").exists() and not (Path(args.work_dir) / ".export-staging").exists()
    heal()
    result = machine.run(args.step("devpi-export"))
    assert reference(result, args) and (Path(args.work_dir) / "export.done").is_file()
    assert snapshot(server) == before


@pytest.fixture
def refusing_registry() -> Iterator[str]:
    """A registry that has nothing (HEAD: 404) and refuses every upload (POST: 403)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_failed_push_fails_the_step(machine: Machine, plain_registry: PushedImages,
                                      devpi_servers: DevpiServers, refusing_registry: str) -> None:
    args = export_args(machine, plain_registry, devpi_servers.legacy_dir, "blumeops/devpi-import-push")
    args = dataclasses.replace(args, image=dataclasses.replace(args.image, push_registry=refusing_registry))
    result = machine.run(args.step("devpi-export"), check=False)
    assert result.returncode != 0 and "refused to start the upload" in result.stderr and "(HTTP 403)" in result.stderr
    assert result.stdout == ""


def test_the_component_exposes_the_image_the_step_printed(machine: Machine) -> None:
    image = offline_image(machine)
    args = DevpiExportArgs(host=image.host, image=image, server_dir="/srv/devpi", devpi_export="/opt/bin/devpi-export")
    printed = f"{args.image_prefix}:0123456789abcdef"

    def program() -> None:
        pulumi.export("image", DevpiExport("devpi", args).image)

    outputs = {"command:remote:Command": lambda _: {"stdout": f"{printed}\n", "stderr": ""}}
    result = harness.run(program, "blumeops", "test", {}, [], extra_outputs=outputs)
    assert result.exports["image"] == printed
    step = next(record for record in result.registrations if record.name == "devpi-export")
    assert step.wire_inputs["create"] == "/bin/bash -euo pipefail -s -- create"
    assert step.wire_inputs["triggers"] == ["/srv/devpi", args.work_dir]
    assert step.custom_timeouts == ("100m", "100m", "100m")
