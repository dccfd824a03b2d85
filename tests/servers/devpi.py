"""Real devpi servers on loopback for the tests: devpi-server and devpi-web from PyPI, pinned in
requirements-dev.txt/constraints.txt to the versions of the image's requirements.txt, run through the image's
own entrypoint (components/host/images/devpi/entrypoint.sh).

`devpi_servers` (session-scoped) starts, once:

- "fresh": an empty server directory initialised by the entrypoint (devpi-init with the root password);
- "legacy": a server made as indri's LaunchAgent ran it (devpi-init, devpi-server with --secretfile), where the
  user eblume, the index eblume/dev (bases root/pypi) and a wheel uploaded to it are created over devpi's HTTP
  API; then it is stopped and exported with devpi-export, as the host step does;
- "imported": an empty server directory the entrypoint initialises by importing that export.

Every server runs with --offline-mode (root/pypi never reaches PyPI) and a cheap argon2 cost for its secret's
key derivation (devpi's hidden --argon2-memory-cost: the default takes 8 s per start on this machine), both as
devpi's own DEVPISERVER_* environment variables, which the entrypoint passes through. The entrypoint runs with
DEVPI_PORT set as Kubernetes sets it for a Service named devpi, and with devpi's tools behind shims that record
their arguments, so a test can show the root password never reaches a process's arguments.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.processes import stop_group
from tests.servers.registry import free_port

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "components" / "host" / "images" / "devpi" / "entrypoint.sh"
VENV_BIN = Path(sys.executable).parent
TOOLS = ("devpi-init", "devpi-import", "devpi-passwd", "devpi-gen-secret", "devpi-server")
ROOT_PASSWORD = "root test-pw \"'$x"  # quotes, a dollar and a space: the entrypoint quotes it right
LEGACY_ROOT_PASSWORD = "legacy-root-pw-5e1d"
EBLUME_PASSWORD = "eblume-test-pw-93c0"
PACKAGE, VERSION = "blumeops-devpi-probe", "1.0.0"
# What devpi reads from its environment (DEVPISERVER_<OPTION>): offline, and a cheap key derivation.
DEVPI_ENV = {"DEVPISERVER_OFFLINE_MODE": "1", "DEVPISERVER_ARGON2_MEMORY_COST": "8",
             "DEVPISERVER_ARGON2_PARALLELISM": "1"}


def wheel(name: str, version: str, marker: str) -> tuple[str, bytes]:
    """A minimal pure-Python wheel whose module holds ``marker``: (file name, bytes)."""
    module, dist = name.replace("-", "_"), f"{name.replace('-', '_')}-{version}"
    files = {
        f"{module}/__init__.py": f"MARKER = {marker!r}\n".encode(),
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: blumeops-tests\nRoot-Is-Purelib: true\n"
                                   b"Tag: py3-none-any\n",
    }
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
              f"{len(data)}" for path, data in files.items()]
    files[f"{dist}.dist-info/RECORD"] = ("\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


@dataclass
class DevpiServer:
    """One devpi-server process on 127.0.0.1."""

    name: str
    serverdir: Path
    log: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, argv: list[str], env: Mapping[str, str], timeout: float = 60) -> None:
        self.launch(argv, env)
        self.wait(timeout)

    def launch(self, argv: list[str], env: Mapping[str, str]) -> None:
        self.port = self.port or free_port()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, env={**env, "DEVPI_LISTEN_PORT": str(self.port)}, stdout=log,
                                            stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)

    def wait(self, timeout: float = 60) -> None:
        """Until /+api answers; a process that exits or never answers fails the caller."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"devpi {self.name} exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/+api", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"devpi {self.name} did not answer /+api within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        stop_group(self.process)

    # ---- devpi's HTTP API (what devpi-client sends) -----------------------------------------------------

    def request(self, method: str, path: str, body: object = None, auth: tuple[str, str] | None = None,
                data: bytes | None = None, content_type: str = "application/json") -> tuple[int, dict[str, object]]:
        payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(f"{self.url}{path}", data=payload, method=method,
                                         headers={"Accept": "application/json", "Content-Type": content_type})
        if auth is not None:
            request.add_header("X-Devpi-Auth", base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
                return response.status, json.loads(text) if text.strip().startswith(b"{") else {}
        except urllib.error.HTTPError as error:
            text = error.read()
            return error.code, json.loads(text) if text.strip().startswith(b"{") else {"text": text.decode()}

    def login(self, user: str, password: str) -> tuple[int, str]:
        """POST /+login: (status, the token devpi hands out)."""
        status, answer = self.request("POST", "/+login", {"user": user, "password": password})
        result = answer.get("result")
        return status, str(result.get("password", "")) if isinstance(result, dict) else ""

    def upload(self, index: str, auth: tuple[str, str], filename: str, content: bytes, name: str,
               version: str) -> int:
        """The legacy upload protocol (:action file_upload), as twine and `uv publish` send it."""
        boundary = "blumeops" + hashlib.sha256(content).hexdigest()[:16]
        parts = []
        for key, value in ((":action", "file_upload"), ("name", name), ("version", version),
                           ("protocol_version", "1"), ("filetype", "bdist_wheel"), ("pyversion", "py3")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        status, _ = self.request("POST", f"/{index}/", auth=auth, data=b"".join(parts),
                                 content_type=f"multipart/form-data; boundary={boundary}")
        return status


@dataclass
class DevpiServers:
    directory: Path
    env: dict[str, str]
    fresh: DevpiServer
    imported: DevpiServer
    export_dir: Path
    marker: str
    argv_log: Path
    wheel_name: str
    servers: list[DevpiServer] = field(default_factory=list)

    @property
    def legacy_dir(self) -> Path:
        """The stopped "legacy" server's directory (made by make_legacy_export): the host's server as it was."""
        return self.directory / "legacy"

    def entrypoint(self, serverdir: Path, *args: str, env: Mapping[str, str] | None = None,
                   check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run the entrypoint to its end (``init``), as an init container would."""
        merged = {**self.env, "DEVPI_SERVERDIR": str(serverdir), **(env or {})}
        result = subprocess.run(["bash", str(ENTRYPOINT), *args], env=merged, capture_output=True, text=True,
                                timeout=120, check=False, stdin=subprocess.DEVNULL, start_new_session=True)
        if check and result.returncode != 0:
            raise AssertionError(f"entrypoint {args} failed ({result.returncode}):\n{result.stderr}")
        return result

    def start_entrypoint(self, server: DevpiServer, env: Mapping[str, str] | None = None, wait: bool = True) -> None:
        server.launch(["bash", str(ENTRYPOINT)], {**self.env, "DEVPI_SERVERDIR": str(server.serverdir), **(env or {})})
        if wait:
            server.wait()


def shims(directory: Path, argv_log: Path) -> Path:
    """devpi's tools behind shims that append their arguments to ``argv_log`` and exec the real tool."""
    directory.mkdir()
    for tool in TOOLS:
        shim = directory / tool
        shim.write_text(f'#!/bin/bash\nprintf "%s\\n" "{tool} $*" >>{argv_log}\nexec {VENV_BIN / tool} "$@"\n')
        shim.chmod(0o755)
    return directory


def make_legacy_export(directory: Path, env: Mapping[str, str], marker: str) -> tuple[Path, str]:
    """The host's server, made and filled as it was, stopped and exported: (export directory, wheel file)."""
    serverdir = directory / "legacy"
    subprocess.run([str(VENV_BIN / "devpi-init"), "--serverdir", str(serverdir), "--root-passwd",
                    LEGACY_ROOT_PASSWORD], env=dict(env), check=True, capture_output=True, timeout=120)
    subprocess.run([str(VENV_BIN / "devpi-gen-secret"), "--secretfile", str(serverdir / ".secret")], env=dict(env),
                   check=True, capture_output=True, timeout=60)
    legacy = DevpiServer("legacy", serverdir, directory / "legacy.log", port=free_port())
    legacy.start([str(VENV_BIN / "devpi-server"), "--serverdir", str(serverdir), "--secretfile",
                  str(serverdir / ".secret"), "--host", "127.0.0.1", "--port", str(legacy.port)], env)
    try:
        status, _ = legacy.request("PUT", "/eblume", {"password": EBLUME_PASSWORD, "email": "eblume@example.org"})
        assert status == 201, f"creating the user eblume: HTTP {status}"
        status, token = legacy.login("eblume", EBLUME_PASSWORD)
        assert status == 200 and token, f"logging in as eblume: HTTP {status}"
        status, _ = legacy.request("PUT", "/eblume/dev", {"type": "stage", "bases": ["root/pypi"]},
                                   auth=("eblume", token))
        assert status in (200, 201), f"creating eblume/dev: HTTP {status}"
        filename, content = wheel(PACKAGE, VERSION, marker)
        status = legacy.upload("eblume/dev", ("eblume", token), filename, content, PACKAGE, VERSION)
        assert status == 200, f"uploading {filename}: HTTP {status}"
    finally:
        legacy.stop()
    export = directory / "export"
    subprocess.run([str(VENV_BIN / "devpi-export"), "--serverdir", str(serverdir), str(export)], env=dict(env),
                   check=True, capture_output=True, timeout=120)
    return export, filename


@pytest.fixture(scope="session")
def devpi_servers() -> Iterator[DevpiServers]:
    directory = Path(tempfile.mkdtemp(prefix="blumeops-devpi-"))
    argv_log = directory / "argv.log"
    bin_dir = shims(directory / "bin", argv_log)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(directory), "LANG": "C.UTF-8", **DEVPI_ENV}
    entry_env = {**env, "DEVPI_ROOT_PASSWORD": ROOT_PASSWORD, "DEVPI_HOST": "127.0.0.1",
                 # what Kubernetes injects into the pods of a namespace with a Service named devpi
                 "DEVPI_PORT": "tcp://10.96.0.12:3141", "DEVPI_SERVICE_PORT": "3141"}
    marker = hashlib.sha256(os.urandom(16)).hexdigest()[:16]
    fresh = DevpiServer("fresh", directory / "fresh", directory / "fresh.log")
    imported = DevpiServer("imported", directory / "imported", directory / "imported.log")
    try:
        for server in (fresh, imported):
            server.serverdir.mkdir()
        servers = DevpiServers(directory, entry_env, fresh, imported, directory / "export", marker, argv_log, "",
                               [fresh, imported])
        # the fresh server starts while the legacy one is made and exported (two cores)
        servers.start_entrypoint(fresh, wait=False)
        servers.export_dir, servers.wheel_name = make_legacy_export(directory, env, marker)
        servers.start_entrypoint(imported, {"DEVPI_IMPORT_DIR": str(servers.export_dir)})
        fresh.wait()
        yield servers
    finally:
        for server in (fresh, imported):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)
