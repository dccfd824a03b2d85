"""Loopback servers for the operator-side probes of ``ops check``.

- ``HttpServer``: a real ``http.server`` on 127.0.0.1 answering each path with a fixed status (``routes``),
  plain or over TLS with a certificate from ``LoopbackCA`` (made with the ``openssl`` CLI: a private CA and a
  leaf for ``localhost``/``127.0.0.1``), or with a self-signed certificate no one trusts (``bad_tls``).
- ``SilentServer``: accepts TCP connections and never answers (a hung endpoint).
- ``SslRequestServer``: answers the first byte a PostgreSQL server sends to an SSLRequest (``S``/``N``), or
  something that is not PostgreSQL.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass(frozen=True, slots=True)
class LoopbackCA:
    ca: Path
    cert: Path  # leaf for localhost and 127.0.0.1, signed by ca
    key: Path
    self_signed: Path  # a leaf for the same names that no CA vouches for
    self_signed_key: Path


def make_ca(directory: Path) -> LoopbackCA:
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=blumeops test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    key, csr, cert = directory / "leaf.key", directory / "leaf.csr", directory / "leaf.crt"
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
             "-out", str(csr), "-subj", "/CN=localhost")
    extensions = directory / "leaf.ext"
    extensions.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(extensions))
    own_key, own = directory / "own.key", directory / "own.crt"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             str(own_key), "-out", str(own), "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return LoopbackCA(ca, cert, key, own, own_key)


@dataclass(slots=True)
class HttpServer:
    routes: Mapping[str, int]
    tls: tuple[Path, Path] | None = None  # (cert, key)
    server: http.server.ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}{path}"

    def start(self) -> HttpServer:
        routes = dict(self.routes)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = routes.get(self.path.split("?", 1)[0], 404)
                body = b"{}"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass(slots=True)
class SilentServer:
    """Accepts and holds connections, never sends a byte."""

    listener: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    held: list[socket.socket] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def start(self) -> SilentServer:
        def accept() -> None:
            while not self.stopped.is_set():
                try:
                    connection, _ = self.listener.accept()
                except OSError:
                    return
                self.held.append(connection)

        threading.Thread(target=accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        for connection in self.held:
            connection.close()


@dataclass(slots=True)
class SslRequestServer:
    """Reads PostgreSQL's 8-byte SSLRequest and answers ``answer`` (b"N", b"S", or anything else)."""

    answer: bytes
    listener: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    requests: list[bytes] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def start(self) -> SslRequestServer:
        def serve() -> None:
            while True:
                try:
                    connection, _ = self.listener.accept()
                except OSError:
                    return
                with connection:
                    self.requests.append(connection.recv(8))
                    if self.answer:
                        connection.sendall(self.answer)

        threading.Thread(target=serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self.listener.close()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def http_server() -> Iterator[list[HttpServer]]:
    """Start servers with ``http_server.append(HttpServer(...).start())``; all stop after the test."""
    servers: list[HttpServer] = []
    yield servers
    for server in servers:
        server.stop()
