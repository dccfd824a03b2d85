"""The devpi image's entrypoint and the data move, against the real devpi-server and devpi-web (pinned as in
the image's requirements.txt) on loopback: tests/servers/devpi.py starts them once per session."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.devpi import (
    EBLUME_PASSWORD,
    ENTRYPOINT,
    LEGACY_ROOT_PASSWORD,
    PACKAGE,
    ROOT,
    ROOT_PASSWORD,
    VERSION,
    DevpiServers,
)

IMAGE = ROOT / "components" / "host" / "images" / "devpi"
pytestmark = pytest.mark.xdist_group("devpi")


def pins(path: Path) -> dict[str, str]:
    names = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^ \\;]+)", line.strip())
        if match:
            names[re.sub(r"[-_.]+", "-", match[1].lower())] = match[2]
    return names


def test_the_tests_run_the_versions_the_image_installs() -> None:
    image = pins(IMAGE / "requirements.txt")
    dev = pins(ROOT / "requirements-dev.txt") | pins(ROOT / "constraints.txt")
    assert {"devpi-server", "devpi-web"} <= set(image)
    assert {name: dev.get(name) for name in image} == image
    from importlib.metadata import version
    assert version("devpi-server") == image["devpi-server"] and version("devpi-web") == image["devpi-web"]
    # every requirement of the image is pinned with a hash (pip --require-hashes)
    text = (IMAGE / "requirements.txt").read_text()
    assert text.count("--hash=sha256:") == len(image)


def test_first_start_initialises_and_the_api_answers(devpi_servers: DevpiServers) -> None:
    fresh = devpi_servers.fresh
    status, answer = fresh.request("GET", "/+api")
    assert status == 200 and answer["type"] == "apiconfig"
    assert (fresh.serverdir / ".serverversion").is_file()
    assert f"initialised {fresh.serverdir}" in fresh.log.read_text()
    assert sorted(p.name for p in fresh.serverdir.iterdir() if p.name.startswith(".blumeops")) == []
    assert (fresh.serverdir / ".secret").stat().st_mode & 0o077 == 0
    # the port is DEVPI_LISTEN_PORT, not the DEVPI_PORT Kubernetes injects (tcp://10.96.0.12:3141)
    assert devpi_servers.env["DEVPI_PORT"].startswith("tcp://")


def test_the_root_password_logs_in(devpi_servers: DevpiServers) -> None:
    for server in (devpi_servers.fresh, devpi_servers.imported):
        status, token = server.login("root", ROOT_PASSWORD)
        assert status == 200 and token, server.name
        assert server.login("root", ROOT_PASSWORD + "x")[0] == 401, server.name
    # the imported server's root takes the deployment's password, not the exported one
    assert devpi_servers.imported.login("root", LEGACY_ROOT_PASSWORD)[0] == 401


def test_the_password_never_reaches_arguments_nor_logs(devpi_servers: DevpiServers) -> None:
    calls = devpi_servers.argv_log.read_text()
    assert "devpi-init --serverdir" in calls and "devpi-import --serverdir" in calls
    assert "devpi-passwd --serverdir" in calls
    for text in (calls, devpi_servers.fresh.log.read_text(), devpi_servers.imported.log.read_text()):
        assert ROOT_PASSWORD not in text


def test_an_exported_package_installs_with_pip_from_the_new_server(devpi_servers: DevpiServers,
                                                                   tmp_path: Path) -> None:
    imported = devpi_servers.imported
    assert imported.login("eblume", EBLUME_PASSWORD)[0] == 200  # the user came along, with its password
    status, answer = imported.request("GET", "/eblume/dev")
    result = answer["result"]
    assert status == 200 and isinstance(result, dict) and result["bases"] == ["root/pypi"]
    # pip with no configuration of this machine (no find-links, no extra index): only the new server
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull,
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--target", str(tmp_path / "site"),
         "--index-url", f"{imported.url}/eblume/dev/+simple/", f"{PACKAGE}=={VERSION}"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert devpi_servers.wheel_name in installed.stdout
    module = tmp_path / "site" / PACKAGE.replace("-", "_") / "__init__.py"
    assert devpi_servers.marker in module.read_text()


def test_a_failed_import_leaves_the_directory_uninitialised_and_the_next_start_imports(
        devpi_servers: DevpiServers, tmp_path: Path) -> None:
    serverdir, broken = tmp_path / "server", tmp_path / "broken-export"
    serverdir.mkdir()
    shutil.copytree(devpi_servers.export_dir, broken)
    (broken / "dataindex.json").write_text('{"dumpversion": "2", "users": {"eblume": ')
    result = devpi_servers.entrypoint(serverdir, "init", env={"DEVPI_IMPORT_DIR": str(broken)})
    assert result.returncode != 0 and "devpi-import of" in result.stderr and "next start" in result.stderr
    assert not (serverdir / ".serverversion").exists()
    devpi_servers.entrypoint(serverdir, "init", env={"DEVPI_IMPORT_DIR": str(devpi_servers.export_dir)}, check=True)
    assert (serverdir / ".serverversion").is_file()
    assert sorted(p.name for p in serverdir.iterdir() if p.name.startswith(".blumeops")) == []


def test_a_move_cut_short_is_cleared_and_foreign_files_are_refused(devpi_servers: DevpiServers,
                                                                   tmp_path: Path) -> None:
    # files moved up by an initialisation killed before .serverversion: cleared, then initialised again
    serverdir = tmp_path / "cut"
    serverdir.mkdir()
    (serverdir / ".blumeops-init-moving").touch()
    (serverdir / ".sqlite").write_text("half")
    (serverdir / "lost+found").mkdir()
    result = devpi_servers.entrypoint(serverdir, "init", check=True)
    assert "cut short" in result.stderr and (serverdir / ".serverversion").is_file()
    assert (serverdir / "lost+found").is_dir() and (serverdir / ".sqlite").read_bytes() != b"half\n"
    # a directory with data but no .serverversion, not this entrypoint's: refused, nothing touched
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "+files").mkdir()
    result = devpi_servers.entrypoint(foreign, "init")
    assert result.returncode != 0 and "refusing to initialise over it" in result.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["+files"]
    # no password, nothing to initialise with
    empty = tmp_path / "empty"
    empty.mkdir()
    result = devpi_servers.entrypoint(empty, "init", env={"DEVPI_ROOT_PASSWORD": ""})
    assert result.returncode != 0 and "DEVPI_ROOT_PASSWORD is not set" in result.stderr
    assert not (empty / ".serverversion").exists()


def test_a_second_start_does_not_initialise_again(devpi_servers: DevpiServers) -> None:
    fresh = devpi_servers.fresh
    status, token = fresh.login("root", ROOT_PASSWORD)
    assert status == 200
    assert fresh.request("PUT", "/root/kept", {"type": "stage", "bases": []}, auth=("root", token))[0] in (200, 201)
    nodeinfo = (fresh.serverdir / ".nodeinfo").read_bytes()
    calls = devpi_servers.argv_log.read_text().count("\n")
    fresh.stop()
    # a restart needs no password: nothing is initialised
    devpi_servers.start_entrypoint(fresh, {"DEVPI_ROOT_PASSWORD": ""})
    assert "is initialised: not initialising again" in fresh.log.read_text()
    new_calls = devpi_servers.argv_log.read_text().splitlines()[calls:]
    assert [call.split()[0] for call in new_calls] == ["devpi-server"]
    assert (fresh.serverdir / ".nodeinfo").read_bytes() == nodeinfo
    assert fresh.request("GET", "/root/kept")[0] == 200
    assert fresh.login("root", ROOT_PASSWORD)[0] == 200


def test_an_export_offered_to_an_initialised_directory_is_not_imported_and_says_so(
        devpi_servers: DevpiServers) -> None:
    """After a rollback and a new cutover the init container is offered a new export: the kept directory is
    not imported into again (that would overwrite what the cluster's server received), and the log says so."""
    imported = devpi_servers.imported
    before = (imported.serverdir / ".serverversion").read_bytes()
    result = devpi_servers.entrypoint(imported.serverdir, "init",
                                      env={"DEVPI_IMPORT_DIR": str(devpi_servers.export_dir)}, check=True)
    assert "WARNING: an export is offered in" in result.stderr and "it is not imported" in result.stderr
    assert (imported.serverdir / ".serverversion").read_bytes() == before


def test_the_entrypoint_passes_shellcheck() -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run([str(shellcheck), str(ENTRYPOINT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
