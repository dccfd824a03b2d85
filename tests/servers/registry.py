"""A real OCI registry on loopback for the tests: Debian's `docker-registry` (distribution 2.8).

- `RegistryServer` starts `/usr/bin/docker-registry serve <config>` on 127.0.0.1:<free port> with a
  temp storage dir, optionally with `auth: token` (realm = `TokenServer` below).
- `TokenServer` is a tiny in-process token endpoint on 127.0.0.1 that hands out RS256 JWTs signed
  with `openssl dgst -sha256 -sign` by a self-signed key made with the `openssl` CLI. The JWT header
  carries `kid` = the libtrust key ID of that key, which is how distribution 2.8 looks up a token's
  signing key among the certificates of `rootcertbundle`.
- `Pusher` uploads blobs (POST + PUT) and manifests (PUT) with plain HTTP calls, answering the
  registry's bearer challenge when it has one.

Session fixtures `plain_registry` and `token_registry` are defined here; a test module imports them.
"""

from __future__ import annotations

import base64
import hashlib
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
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REGISTRY_BIN = Path("/usr/bin/docker-registry")
INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-test-servers.sh"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ensure_registry_binary() -> None:
    """Install docker-registry with the project's script if missing; skip (or fail in CI) if impossible."""
    if REGISTRY_BIN.exists():
        return
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    if REGISTRY_BIN.exists():
        return
    reason = (f"{REGISTRY_BIN} is missing and {INSTALL_SCRIPT.name} could not install it: "
              f"{(result.stderr or result.stdout).strip()}")
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


# ---------------------------------------------------------------------------------------------
# token server


@dataclass
class SigningKey:
    key_pem: Path
    cert_pem: Path
    kid: str

    @classmethod
    def generate(cls, directory: Path) -> SigningKey:
        key, cert = directory / "token.key", directory / "token.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", "/CN=blumeops-test-token-issuer"],
            check=True, capture_output=True,
        )
        spki = subprocess.run(
            ["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"], check=True, capture_output=True
        ).stdout
        der = subprocess.run(
            ["openssl", "pkey", "-pubin", "-outform", "DER"], input=spki, check=True, capture_output=True
        ).stdout
        return cls(key, cert, libtrust_key_id(der))

    def sign(self, data: bytes) -> bytes:
        return subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key_pem)], input=data, check=True, capture_output=True
        ).stdout


def libtrust_key_id(spki_der: bytes) -> str:
    """docker/libtrust KeyID: base32 of the first 240 bits of sha256(SPKI DER), in 12 groups of 4."""
    encoded = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


@dataclass
class TokenServer:
    signing_key: SigningKey
    issuer: str = "blumeops-test-issuer"
    service: str = "blumeops-test-registry"
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def issue(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.signing_key.kid}
        claims = {"iss": self.issuer, "sub": "", "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": hashlib.sha256(os.urandom(16)).hexdigest(), "access": access}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        return f"{signing_input}.{b64url(self.signing_key.sign(signing_input.encode()))}"

    def start(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parsed = urllib.parse.urlparse(self.path)
                query = urllib.parse.parse_qs(parsed.query)
                owner.requests.append(query)
                if parsed.path != "/token" or query.get("service") != [owner.service]:
                    self.send_response(400)
                    self.end_headers()
                    return
                scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
                body = json.dumps({"token": owner.issue(scopes), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# ---------------------------------------------------------------------------------------------
# registry


@dataclass
class RegistryServer:
    directory: Path
    token_server: TokenServer | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def config(self) -> str:
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.directory / 'storage'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            "  secret: blumeops-test-only",
        ]
        if self.token_server is not None:
            lines += [
                "auth:",
                "  token:",
                f"    realm: {self.token_server.realm}",
                f"    service: {self.token_server.service}",
                f"    issuer: {self.token_server.issuer}",
                f"    rootcertbundle: {self.token_server.signing_key.cert_pem}",
            ]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        self.port = free_port()
        config = self.directory / "config.yml"
        config.write_text(self.config(), encoding="utf-8")
        log = (self.directory / "registry.log").open("wb")
        self.process = subprocess.Popen([str(REGISTRY_BIN), "serve", str(config)], stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.directory / 'registry.log').read_text()}")
            try:
                urllib.request.urlopen(f"{self.base}/v2/", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # 401 from a token-auth registry: it is up
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start within 20 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


class Pusher:
    """Uploads blobs and manifests with plain HTTP, answering a bearer challenge when asked."""

    def __init__(self, registry: RegistryServer):
        self.registry = registry
        self._token: dict[str, str] = {}

    def _request(self, method: str, url: str, repository: str, data: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
        for _attempt in range(2):
            request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
            if repository in self._token:
                request.add_header("Authorization", f"Bearer {self._token[repository]}")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, dict(response.headers.items())
            except urllib.error.HTTPError as error:
                challenge = error.headers.get("WWW-Authenticate", "")
                if error.code != 401 or not challenge.startswith("Bearer ") or repository in self._token:
                    raise AssertionError(f"{method} {url}: HTTP {error.code} {error.read()!r}") from error
                params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
                query = urllib.parse.urlencode({"service": params["service"],
                                                "scope": f"repository:{repository}:pull,push"})
                with urllib.request.urlopen(f"{params['realm']}?{query}", timeout=10) as response:
                    self._token[repository] = json.load(response)["token"]
        raise AssertionError(f"{method} {url}: still unauthorized")

    def blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        _status, headers = self._request("POST", f"{self.registry.base}/v2/{repository}/blobs/uploads/", repository,
                                         data=b"")
        location = urllib.parse.urljoin(self.registry.base, headers["Location"])
        separator = "&" if "?" in location else "?"
        self._request("PUT", f"{location}{separator}digest={urllib.parse.quote(digest)}", repository, data=data,
                      headers={"Content-Type": "application/octet-stream"})
        return digest

    def manifest(self, repository: str, reference: str, document: dict[str, Any]) -> tuple[str, bytes]:
        body = json.dumps(document, indent=2).encode()
        self._request("PUT", f"{self.registry.base}/v2/{repository}/manifests/{reference}", repository, data=body,
                      headers={"Content-Type": document["mediaType"]})
        return sha256_digest(body), body

    def image(self, repository: str, reference: str, *, os_name: str, architecture: str, variant: str = "",
              docker: bool = False) -> tuple[str, int]:
        """A single-platform image; returns (manifest digest, size)."""
        platform: dict[str, str] = {"os": os_name, "architecture": architecture}
        if variant:
            platform["variant"] = variant
        config = json.dumps({**platform, "rootfs": {"type": "layers", "diff_ids": []},
                             "config": {}, "marker": os.urandom(8).hex()}).encode()
        layer = os.urandom(64)
        config_type, layer_type = (DOCKER_CONFIG, DOCKER_LAYER) if docker else (OCI_CONFIG, OCI_LAYER)
        if architecture == "unknown":
            layer_type = IN_TOTO
        document = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": self.blob(repository, config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": self.blob(repository, layer), "size": len(layer)}],
        }
        digest, body = self.manifest(repository, reference, document)
        return digest, len(body)


@dataclass(frozen=True)
class PushedImages:
    """What the fixture pushed: reference -> (expected platforms, expected manifest digest)."""

    registry: RegistryServer
    token_server: TokenServer | None
    images: dict[str, tuple[tuple[str, ...], str]]


def push_test_images(registry: RegistryServer) -> dict[str, tuple[tuple[str, ...], str]]:
    pusher = Pusher(registry)
    images: dict[str, tuple[tuple[str, ...], str]] = {}

    # A multi-platform OCI index with a BuildKit attestation entry (unknown/unknown).
    repo = "blumeops/multi"
    amd64 = pusher.image(repo, "amd64-tmp", os_name="linux", architecture="amd64")
    arm64 = pusher.image(repo, "arm64-tmp", os_name="linux", architecture="arm64", variant="v8")
    attestation = pusher.image(repo, "att-tmp", os_name="unknown", architecture="unknown")
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd64[0], "size": amd64[1],
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm64[0], "size": arm64[1],
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": attestation[0], "size": attestation[1],
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                             "vnd.docker.reference.digest": amd64[0]}},
        ],
    }
    digest, _ = pusher.manifest(repo, "v1.0.0", index)
    images[f"{registry.host}/{repo}:v1.0.0"] = (("linux/amd64", "linux/arm64"), digest)

    # A Docker manifest list (arm/v7 + arm64).
    repo = "blumeops/list"
    arm7 = pusher.image(repo, "arm7-tmp", os_name="linux", architecture="arm", variant="v7", docker=True)
    arm64 = pusher.image(repo, "arm64-tmp", os_name="linux", architecture="arm64", docker=True)
    manifest_list = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [
            {"mediaType": DOCKER_MANIFEST, "digest": arm7[0], "size": arm7[1],
             "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
            {"mediaType": DOCKER_MANIFEST, "digest": arm64[0], "size": arm64[1],
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }
    digest, _ = pusher.manifest(repo, "2.0", manifest_list)
    images[f"{registry.host}/{repo}:2.0"] = (("linux/arm/v7", "linux/arm64"), digest)

    # A single-platform Docker v2 image, amd64 only.
    digest, _ = pusher.image("blumeops/amd64only", "1.0", os_name="linux", architecture="amd64", docker=True)
    images[f"{registry.host}/blumeops/amd64only:1.0"] = (("linux/amd64",), digest)

    # A single-platform OCI image, arm64.
    digest, _ = pusher.image("blumeops/single", "3", os_name="linux", architecture="arm64")
    images[f"{registry.host}/blumeops/single:3"] = (("linux/arm64",), digest)
    return images


def _serve(token: bool) -> Iterator[PushedImages]:
    ensure_registry_binary()
    directory = Path(tempfile.mkdtemp(prefix="blumeops-registry-"))
    token_server = None
    registry = None
    try:
        if token:
            token_server = TokenServer(SigningKey.generate(directory))
            token_server.start()
        registry = RegistryServer(directory, token_server)
        registry.start()
        images = push_test_images(registry)
        if token_server is not None:
            token_server.requests.clear()
        yield PushedImages(registry, token_server, images)
    finally:
        if registry is not None:
            registry.stop()
        if token_server is not None:
            token_server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def plain_registry() -> Iterator[PushedImages]:
    """docker-registry on 127.0.0.1 over plain HTTP without auth, with the test images pushed."""
    yield from _serve(token=False)


@pytest.fixture(scope="session")
def token_registry() -> Iterator[PushedImages]:
    """docker-registry on 127.0.0.1 with `auth: token` against an in-process token server."""
    yield from _serve(token=True)
