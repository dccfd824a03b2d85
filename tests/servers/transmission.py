"""A real Transmission on loopback for the tests: Debian's `transmission-daemon` (3.00) and its tools.

- `TransmissionDaemon` runs `transmission-daemon --foreground` with a temp config dir: RPC on 127.0.0.1:<free
  port> (optionally with a username and password), no DHT, LPD, PEX, uTP or port mapping, and added torrents
  left stopped, so it never talks to anything but loopback. `rpc()` speaks its JSON RPC (the session-id
  handshake included) for what a test checks or arranges: the torrents held, adding one, renaming, removing.
- `TorrentFiles` is a loopback HTTP server serving `.torrent` files made by `transmission-create` from tiny
  files, once per session, and counting the requests for each (the daemon fetches a URL it is given).
- `LateProxy` holds a free port and refuses connections on it until `open()`, then forwards them to a target:
  a Transmission whose RPC is not answering yet.

The session fixture `transmission_daemon` starts one daemon and one file server per worker.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers.registry import INSTALL_SCRIPT, free_port

TOOLS = ("transmission-daemon", "transmission-remote", "transmission-create", "transmission-show")
# The torrents the file server offers, each made from a tiny file of that name. The first carries the name
# of a real ZIM of the homelab's list, as a torrent carried over from the brew daemon would be named.
TORRENT_FILES = ("alpha.zim", "beta.zim", "gamma.zim", "wikipedia_en_top1m_maxi_2025-09.zim")


def ensure_transmission() -> None:
    """Install Debian's transmission-daemon/-cli with the project's script if missing; skip (fail in CI) if not."""
    if all(shutil.which(tool) for tool in TOOLS):
        return
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    if all(shutil.which(tool) for tool in TOOLS):
        return
    reason = ("transmission-daemon/transmission-cli are missing and install-test-servers.sh could not install "
              f"them: {(result.stderr or result.stdout).strip()}")
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class RpcError(RuntimeError):
    pass


@dataclass
class TransmissionDaemon:
    root: Path
    auth: tuple[str, str] | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _session_id: str = ""

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def rpc_url(self) -> str:
        return f"http://{self.server}/transmission/rpc"

    def start(self) -> TransmissionDaemon:
        config, downloads = self.root / "config", self.root / "downloads"
        config.mkdir(parents=True, exist_ok=True)
        downloads.mkdir(exist_ok=True)
        settings: dict[str, Any] = {
            "rpc-enabled": True, "rpc-bind-address": "127.0.0.1", "rpc-port": self.port,
            "rpc-whitelist-enabled": True, "rpc-whitelist": "127.0.0.1",
            "rpc-authentication-required": self.auth is not None,
            "bind-address-ipv4": "127.0.0.1", "bind-address-ipv6": "::1", "peer-port": free_port(),
            "peer-port-random-on-start": False, "port-forwarding-enabled": False, "dht-enabled": False,
            "lpd-enabled": False, "pex-enabled": False, "utp-enabled": False, "blocklist-enabled": False,
            "start-added-torrents": False, "download-dir": str(downloads), "incomplete-dir-enabled": False,
            "watch-dir-enabled": False, "message-level": 1,
        }
        if self.auth is not None:
            settings["rpc-username"], settings["rpc-password"] = self.auth
        (config / "settings.json").write_text(json.dumps(settings, indent=1))
        self.process = subprocess.Popen(
            ["transmission-daemon", "--foreground", "--config-dir", str(config), "--logfile",
             str(self.root / "daemon.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transmission-daemon exited {self.process.returncode}: {self.log()}")
            if self.answers() in (401, 409):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"transmission-daemon did not answer on {self.rpc_url}: {self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        path = self.root / "daemon.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def answers(self) -> int | None:
        """The HTTP status of an unauthenticated request to the RPC (None: no connection)."""
        try:
            with urllib.request.urlopen(urllib.request.Request(self.rpc_url, method="GET"), timeout=2) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None

    def rpc(self, method: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"method": method, "arguments": arguments or {}}).encode()
        headers = {"Content-Type": "application/json"}
        if self.auth is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
        for _ in range(2):
            request = urllib.request.Request(self.rpc_url, data=body,
                                             headers={**headers, "X-Transmission-Session-Id": self._session_id})
            try:
                with urllib.request.urlopen(request, timeout=30) as reply:
                    answer: dict[str, Any] = json.loads(reply.read())
            except urllib.error.HTTPError as error:
                if error.code == 409:
                    self._session_id = error.headers.get("X-Transmission-Session-Id", "")
                    continue
                raise
            if answer.get("result") != "success":
                raise RpcError(f"{method}: {answer.get('result')}")
            return dict(answer.get("arguments") or {})
        raise RpcError(f"{method}: no session id after the 409 handshake")

    def torrents(self) -> dict[str, str]:
        """The torrents held: info hash -> name."""
        found = self.rpc("torrent-get", {"fields": ["hashString", "name"]})["torrents"]
        return {str(t["hashString"]): str(t["name"]) for t in found}

    def add_file(self, torrent: Path) -> str:
        """Adds a .torrent file's content directly (not by URL); its info hash."""
        added = self.rpc("torrent-add", {"metainfo": base64.b64encode(torrent.read_bytes()).decode(),
                                         "paused": True})
        entry = added.get("torrent-added") or added["torrent-duplicate"]
        return str(entry["hashString"])

    def rename(self, info_hash: str, old: str, new: str) -> None:
        self.rpc("torrent-rename-path", {"ids": [info_hash], "path": old, "name": new})

    def remove_all(self) -> None:
        self.rpc("torrent-remove", {"delete-local-data": True})
        deadline = time.monotonic() + 5
        while self.torrents() and time.monotonic() < deadline:
            time.sleep(0.02)


@dataclass(frozen=True, slots=True)
class Torrent:
    name: str  # the torrent's name (its file's)
    path: Path  # the .torrent file
    info_hash: str


class TorrentFiles:
    """`.torrent` files on a loopback HTTP server that counts the requests for each path."""

    def __init__(self, directory: Path, names: tuple[str, ...] = TORRENT_FILES) -> None:
        self.directory = directory
        self.hits: Counter[str] = Counter()
        self.torrents = self._create(names)
        hits, lock, served = self.hits, threading.Lock(), directory / "torrents"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with lock:
                    hits[path] += 1
                file = served / path.lstrip("/")
                if "/" in path.lstrip("/") or not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-bittorrent")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _create(self, names: tuple[str, ...]) -> dict[str, Torrent]:
        """One .torrent per name, made at once (transmission-create reports its progress in 0.5 s steps)."""
        sources, torrents = self.directory / "sources", self.directory / "torrents"
        sources.mkdir(parents=True, exist_ok=True)
        torrents.mkdir(parents=True, exist_ok=True)
        running = []
        for name in names:
            (sources / name).write_bytes(name.encode() * 64)
            running.append(subprocess.Popen(
                ["transmission-create", "-o", str(torrents / f"{name}.torrent"), str(sources / name)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        made = {}
        for name, process in zip(names, running, strict=True):
            output, _ = process.communicate(timeout=60)
            assert process.returncode == 0, output.decode(errors="replace")
            torrent = torrents / f"{name}.torrent"
            shown = subprocess.run(["transmission-show", str(torrent)], check=True, capture_output=True,
                                   text=True).stdout
            found = re.search(r"^\s*Hash:\s*([0-9a-f]{40})\s*$", shown, re.MULTILINE)
            assert found, shown
            made[name] = Torrent(name, torrent, found.group(1))
        return made

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, name: str) -> str:
        """The URL of a torrent's file (a name not offered gives a URL that answers 404)."""
        return f"http://127.0.0.1:{self.port}/{name}.torrent"

    def fetched(self, name: str) -> int:
        return self.hits[f"/{name}.torrent"]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LateProxy:
    """A port that refuses connections until `open()`, then forwards each connection to `target`."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))  # held, not listening: a connect is refused
        self.port = int(self.sock.getsockname()[1])
        self.opened = threading.Event()
        self._closed = False

    def open_after(self, seconds: float) -> None:
        timer = threading.Timer(seconds, self.open)
        timer.daemon = True
        timer.start()

    def open(self) -> None:
        self.sock.listen(16)
        self.opened.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        """One direction of a connection; its end is passed on as a half-close (the other direction goes on)."""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        self.sock.close()


@dataclass(frozen=True, slots=True)
class TransmissionSession:
    daemon: TransmissionDaemon
    files: TorrentFiles


@pytest.fixture(scope="session")
def transmission_daemon() -> Iterator[TransmissionSession]:
    ensure_transmission()
    root = Path(tempfile.mkdtemp(prefix="blumeops-transmission-"))
    files = TorrentFiles(root / "files")
    daemon = TransmissionDaemon(root / "daemon")
    try:
        daemon.start()
        yield TransmissionSession(daemon, files)
    finally:
        daemon.stop()
        files.stop()
        shutil.rmtree(root, ignore_errors=True)
