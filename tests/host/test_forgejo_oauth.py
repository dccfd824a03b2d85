"""The forge's OAuth2 application step on the fake machine with the real curl and jq, against a loopback HTTP server
that speaks the endpoints it uses as Forgejo's API documents them (``/api/v1/user/applications/oauth2``: GET a page
of the user's applications, POST one, PATCH one, which issues a new client secret, DELETE one; a token in the
``Authorization: token <t>`` header, 401 without it)."""

from __future__ import annotations

import dataclasses
import http.server
import itertools
import json
import shutil
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pulumi
import pytest

from components.host.forgejo_oauth import ForgejoOAuthAppArgs, parse_application
from tests.host.conftest import Machine

TOKEN = "fj-admin-token-0123456789abcdef"
PREFIX = "/api/v1/user/applications/oauth2"


class FakeForge:
    """The applications of one user, and every request the step made (method, path, Authorization)."""

    def __init__(self) -> None:
        self.apps: dict[int, dict[str, Any]] = {}
        self.ids = itertools.count(1)
        self.secrets = itertools.count(1)
        self.requests: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def add(self, name: str, redirect: str = "https://old/authorize") -> int:
        app_id = next(self.ids)
        self.apps[app_id] = {"id": app_id, "name": name, "client_id": f"client-{app_id}",
                             "redirect_uris": [redirect], "confidential_client": True}
        return app_id

    def answer(self, method: str, path: str, auth: str, body: bytes) -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path, auth))
            if auth != f"token {TOKEN}":
                return 401, {"message": "token is required"}
            url = urlparse(path)
            if url.path == PREFIX and method == "GET":
                query = parse_qs(url.query)
                page, limit = int(query.get("page", ["1"])[0]), int(query.get("limit", ["30"])[0])
                listed = sorted(self.apps.values(), key=lambda a: a["id"])[(page - 1) * limit:page * limit]
                return 200, listed
            if url.path == PREFIX and method == "POST":
                sent = json.loads(body)
                app_id = self.add(sent["name"], sent["redirect_uris"][0])
                return 201, {**self.apps[app_id], "client_secret": f"secret-{next(self.secrets)}"}
            app_id = int(url.path.rsplit("/", 1)[1]) if url.path.startswith(PREFIX + "/") else 0
            if app_id not in self.apps:
                return 404, {"message": "not found"}
            if method == "PATCH":
                sent = json.loads(body)
                self.apps[app_id].update(name=sent["name"], redirect_uris=sent["redirect_uris"])
                return 200, {**self.apps[app_id], "client_secret": f"secret-{next(self.secrets)}"}
            if method == "DELETE":
                del self.apps[app_id]
                return 204, None
            return 405, {"message": "method"}


@pytest.fixture
def forge() -> Iterator[tuple[FakeForge, str]]:
    state = FakeForge()

    class Handler(http.server.BaseHTTPRequestHandler):
        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, payload = state.answer(self.command, self.path, self.headers.get("Authorization", ""),
                                           self.rfile.read(length))
            body = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_DELETE = handle_any  # noqa: N815 - http.server's names

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def step(machine: Machine, url: str, action: str = "create", token: str = TOKEN, check: bool = True):  # type: ignore[no-untyped-def]
    host = machine.host()
    host = dataclasses.replace(host, tools=dataclasses.replace(host.tools, curl=shutil.which("curl") or "curl",
                                                              jq=shutil.which("jq") or "jq"))
    args = ForgejoOAuthAppArgs(host=host, forge_url=url, name="woodpecker",
                               redirect_uri="https://ci.tail8d86e.ts.net/authorize",
                               token=pulumi.Output.secret(token))
    return machine.run(args.step("woodpecker-oauth-app"), action, secrets={"TOKEN": token}, check=check)


def test_the_application_is_created_and_its_secret_printed(machine: Machine, forge: tuple[FakeForge, str]) -> None:
    state, url = forge
    result = step(machine, url)
    printed = parse_application(result.stdout)
    assert printed == {"id": "1", "client_id": "client-1", "client_secret": "secret-1"}
    assert state.apps[1]["redirect_uris"] == ["https://ci.tail8d86e.ts.net/authorize"]
    assert TOKEN not in result.stderr and "secret-1" not in result.stderr
    assert all(auth == f"token {TOKEN}" for _, _, auth in state.requests)


def test_an_application_of_the_same_name_is_adopted_not_duplicated(machine: Machine,
                                                                     forge: tuple[FakeForge, str]) -> None:
    state, url = forge
    for number in range(60):  # the adopted one is on the second page of 50
        state.add(f"other-{number}")
    existing = state.add("woodpecker")
    result = step(machine, url)
    assert "adopted the OAuth2 application woodpecker" in result.stderr
    assert parse_application(result.stdout)["client_id"] == f"client-{existing}"
    assert [a for a in state.apps.values() if a["name"] == "woodpecker"] == [state.apps[existing]]
    assert state.apps[existing]["redirect_uris"] == ["https://ci.tail8d86e.ts.net/authorize"]
    assert ("GET", f"{PREFIX}?page=2&limit=50", f"token {TOKEN}") in state.requests


def test_the_delete_removes_it_and_a_second_delete_finds_nothing(machine: Machine,
                                                                 forge: tuple[FakeForge, str]) -> None:
    state, url = forge
    step(machine, url)
    keep = state.add("someone-else")
    step(machine, url, "delete")
    assert list(state.apps) == [keep]
    assert "nothing to delete" in step(machine, url, "delete").stderr


def test_a_refused_token_says_which_setting_to_fix(machine: Machine, forge: tuple[FakeForge, str]) -> None:
    state, url = forge
    result = step(machine, url, token="wrong-token-0000000000", check=False)
    assert result.returncode != 0 and "HTTP 401" in result.stderr
    assert "blumeops:woodpecker.forgejoToken" in result.stderr and "write:user" in result.stderr
    assert state.apps == {}
