"""TailnetNameRelease's step, rendered as the program renders it and run with bash and the real curl against a
loopback stand-in of the Tailscale API (the tailnet cannot be reached from here): the OAuth exchange, the
Service read, deleted and recreated byte for byte, and the secret never in an argument list or a log."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.tailnet import TailnetNameReleaseArgs
from tests.host.conftest import Machine, machine  # noqa: F401 (the fake machine fixture)
from tests.host.test_hardening import quick
from tests.servers.tailscale_api import ALLOCATED_IPV6 as ALLOCATED_IPV6  # re-exported: test_faults imports it
from tests.servers.tailscale_api import CLIENT_ID, CLIENT_SECRET, TOKEN, created_service
from tests.servers.tailscale_api import FakeTailscaleApi as FakeTailscaleApi  # re-exported, as ALLOCATED_IPV6

SHELLCHECK = Path(sys.executable).parent / "shellcheck"
GRAFANA = {"name": "svc:grafana", "addrs": ["100.100.1.7", "fd7a:115c:a1e0::1:7"], "comment": "grafana on indri",
           "ports": ["tcp:443"], "tags": ["tag:homelab"], "annotations": {}}


@pytest.fixture
def api() -> Iterator[FakeTailscaleApi]:
    with FakeTailscaleApi() as fake:
        yield fake


@pytest.fixture
def curl_machine(machine: Machine) -> Machine:  # noqa: F811 (the fixture imported above)
    """The fake machine with the real curl, behind a wrapper that logs every argument list it gets."""
    real = shutil.which("curl")
    assert real, "curl is needed on the test machine"
    wrapper = machine.bin / "curl-logged"
    wrapper.write_text(f'#!/bin/bash\nprintf "%s\\n" "$*" >>"$STUB_STATE/curl-argv.log"\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return machine


def release_args(machine: Machine, api: FakeTailscaleApi, **changes: Any) -> TailnetNameReleaseArgs:  # noqa: F811
    host = machine.host()
    host = dataclasses.replace(host, tools=dataclasses.replace(host.tools, curl=str(machine.bin / "curl-logged")))
    values: dict[str, Any] = {
        "host": host, "service": "svc:grafana", "oauth_client_id": CLIENT_ID,
        "oauth_client_secret": pulumi.Output.from_input("unused: the tests pass the secret to render"),
        "api_url": api.url,
    }
    values.update(changes)
    return TailnetNameReleaseArgs(**values)


def run(machine: Machine, args: TailnetNameReleaseArgs, action: str = "create", secret: str = CLIENT_SECRET,  # noqa: F811
        check: bool = True) -> subprocess.CompletedProcess[str]:
    return machine.run(args.step("grafana-release-service"), action, {"OAUTH_CLIENT_SECRET": secret}, check=check)


def curl_arguments(machine: Machine) -> str:  # noqa: F811
    log = machine.state / "curl-argv.log"
    return log.read_text() if log.exists() else ""


def test_the_service_is_deleted_kept_and_recreated_as_it_was(curl_machine: Machine,
                                                             api: FakeTailscaleApi) -> None:
    original = json.dumps(GRAFANA).encode()
    api.services["svc:grafana"] = original
    args = release_args(curl_machine, api)

    created = run(curl_machine, args)
    assert "svc:grafana" not in api.services
    assert api.service_calls() == ["GET", "DELETE", "GET"]
    assert json.loads(created.stdout) == GRAFANA, "the create prints the definition it deleted"
    kept = Path(args.state_dir, "service.json")
    assert json.loads(kept.read_text()) == GRAFANA
    assert oct(kept.stat().st_mode & 0o777) == "0o600" and oct(kept.parent.stat().st_mode & 0o777) == "0o700"

    deleted = run(curl_machine, args, "delete")
    recreated = json.loads(api.services["svc:grafana"])
    # sent without its IPv6 address (the API refuses one on creation), recreated with the same IPv4 address
    assert recreated == {**GRAFANA, "addrs": ["100.100.1.7", ALLOCATED_IPV6]}
    assert api.service_calls()[3:] == ["GET", "PUT", "GET"]
    assert "recreated the Tailscale Service svc:grafana" in deleted.stderr
    assert not kept.parent.exists()


def test_the_secret_and_the_token_never_reach_an_argument_list_or_a_log(curl_machine: Machine,
                                                                        api: FakeTailscaleApi) -> None:
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    args = release_args(curl_machine, api)
    outputs = [run(curl_machine, args), run(curl_machine, args, "delete")]
    arguments = curl_arguments(curl_machine)
    calls = arguments.splitlines()
    assert len(calls) == 8 and all("--config /dev/fd/8" in call for call in calls), arguments  # secrets on fd 8
    rendered = args.step("grafana-release-service").render()
    for secret in (CLIENT_SECRET, TOKEN):
        assert secret not in arguments
        assert secret not in rendered
        for result in outputs:
            assert secret not in result.stdout and secret not in result.stderr
    assert not list((curl_machine.root / "tmp").iterdir()), "the token's temp file is gone"


def test_create_twice_deletes_once(curl_machine: Machine, api: FakeTailscaleApi) -> None:
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    args = release_args(curl_machine, api)
    run(curl_machine, args)
    second = run(curl_machine, args)
    assert api.service_calls().count("DELETE") == 1
    assert "free already" in second.stderr
    assert json.loads(second.stdout) == GRAFANA, "nothing was redefined in between: the first copy is the record"
    assert [path.name for path in Path(args.state_dir).iterdir()] == ["service.json"], "one record, nothing aside"


REDEFINED = {  # what the operator made by hand in the admin console after a release
    "comment": {"comment": "grafana, by hand"},
    "ports": {"ports": ["tcp:443", "tcp:80"]},
    "tags": {"tags": ["tag:homelab", "tag:web"]},
    "annotations": {"annotations": {"owner": "erich"}},
    "addrs": {"addrs": ["100.100.2.8", "fd7a:115c:a1e0::2:8"]},
}


def aside(args: TailnetNameReleaseArgs) -> list[Path]:
    return sorted(Path(args.state_dir).glob("service.json.*.prev"))


@pytest.mark.parametrize("field", list(REDEFINED))
def test_a_service_redefined_since_the_release_is_the_one_a_rollback_restores(
        curl_machine: Machine, api: FakeTailscaleApi, field: str) -> None:
    """Released, made again by hand with another definition, released again: the second release keeps the new
    definition as the record (the old one aside, never dropped) and says so; the rollback recreates the new one
    and checks it against the new one."""
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    args = release_args(curl_machine, api)
    run(curl_machine, args)
    redefined = {**GRAFANA, **REDEFINED[field]}
    api.services["svc:grafana"] = json.dumps(redefined).encode()
    second = run(curl_machine, args)
    assert api.service_calls().count("DELETE") == 2 and "svc:grafana" not in api.services
    assert f"differs from the definition kept in {args.state_dir}/service.json in its {field}" in second.stderr
    assert json.loads(second.stdout) == redefined, "the definition deleted last is the record"
    assert json.loads(Path(args.state_dir, "service.json").read_text()) == redefined
    [old] = aside(args)
    assert json.loads(old.read_text()) == GRAFANA and str(old) in second.stderr
    assert oct(old.stat().st_mode & 0o777) == "0o600"

    deleted = run(curl_machine, args, "delete")
    assert "recreated the Tailscale Service svc:grafana" in deleted.stderr
    ipv4 = [address for address in redefined["addrs"] if ":" not in address]
    assert json.loads(api.services["svc:grafana"]) == {**redefined, "addrs": [*ipv4, ALLOCATED_IPV6]}
    assert not Path(args.state_dir, "service.json").exists()
    assert aside(args) == [old], "the older definition stays aside"


def test_a_rollback_that_meets_a_redefined_service_refuses_and_changes_nothing(curl_machine: Machine,
                                                                               api: FakeTailscaleApi) -> None:
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    args = release_args(curl_machine, api)
    run(curl_machine, args)
    kept = Path(args.state_dir, "service.json")
    record = kept.read_bytes()
    theirs = b'{"name":"svc:grafana","addrs":["100.100.4.4"],"comment":"theirs","ports":["tcp:80"],"tags":[]}'
    api.services["svc:grafana"] = theirs
    writes = len(api.writes)
    failed = run(curl_machine, args, "delete", check=False)
    assert failed.returncode != 0
    assert f"svc:grafana exists and differs from the definition kept in {kept} in its comment" in failed.stderr
    assert "admin console" in failed.stderr and f"move {kept} away" in failed.stderr, "the fixes are named"
    assert api.services["svc:grafana"] == theirs and api.writes[writes:] == [], "nothing was changed"
    assert kept.read_bytes() == record
    # the operator's fix: their Service goes, the rollback then recreates the kept one
    del api.services["svc:grafana"]
    run(curl_machine, args, "delete")
    assert json.loads(api.services["svc:grafana"]) == {**GRAFANA, "addrs": ["100.100.1.7", ALLOCATED_IPV6]}
    assert not kept.parent.exists()


def test_a_name_that_is_free_already_is_left_alone_both_ways(curl_machine: Machine,
                                                              api: FakeTailscaleApi) -> None:
    args = release_args(curl_machine, api)
    created = run(curl_machine, args)
    assert created.stdout.strip() == "null" and "free already" in created.stderr
    assert "DELETE" not in api.service_calls()
    api.requests.clear()
    deleted = run(curl_machine, args, "delete")
    assert "nothing to recreate" in deleted.stderr
    assert api.requests == [], "a delete with nothing kept does not even ask for a token"


def test_delete_without_create_is_a_no_op_that_says_so(curl_machine: Machine, api: FakeTailscaleApi) -> None:
    deleted = run(curl_machine, release_args(curl_machine, api), "delete")
    assert "this step deleted nothing" in deleted.stderr and api.requests == []


def test_a_service_that_exists_again_as_kept_is_not_overwritten(curl_machine: Machine,
                                                                api: FakeTailscaleApi) -> None:
    """Made again as it was (other addresses, no empty annotations): left alone, the copy dropped."""
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    args = release_args(curl_machine, api)
    run(curl_machine, args)
    again = {key: value for key, value in GRAFANA.items() if key != "annotations"}
    again["addrs"] = ["100.100.3.3", "fd7a:115c:a1e0::3:3"]
    api.services["svc:grafana"] = json.dumps(again).encode()
    deleted = run(curl_machine, args, "delete")
    assert "exists again: leaving it as it is" in deleted.stderr
    assert "at 100.100.3.3, not 100.100.1.7" in deleted.stderr
    assert api.services["svc:grafana"] == json.dumps(again).encode()
    assert "PUT" not in api.service_calls()
    assert not Path(args.state_dir).exists()


def test_a_refused_deletion_fails_and_the_next_run_completes_it(curl_machine: Machine,
                                                                  api: FakeTailscaleApi) -> None:
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    args = release_args(curl_machine, api)
    api.fail["DELETE"] = 403
    failed = run(curl_machine, args, check=False)
    assert failed.returncode != 0 and "DELETE svc:grafana answered HTTP 403" in failed.stderr
    assert "services scope" in failed.stderr
    assert "svc:grafana" in api.services
    again = run(curl_machine, args)
    assert "svc:grafana" not in api.services
    assert "differs" not in again.stderr and aside(args) == [], "the same Service: the one record stands"
    run(curl_machine, args, "delete")
    assert json.loads(api.services["svc:grafana"])["ports"] == GRAFANA["ports"]


def test_a_wrong_secret_is_refused_with_the_setting_named(curl_machine: Machine, api: FakeTailscaleApi) -> None:
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    failed = run(curl_machine, release_args(curl_machine, api), secret="tskey-client-wrong", check=False)
    assert failed.returncode != 0 and "HTTP 401" in failed.stderr
    assert "blumeops:tailnet.oauthClientId" in failed.stderr
    assert api.service_calls() == [] and "svc:grafana" in api.services


def test_an_unreachable_api_fails_clearly(curl_machine: Machine, api: FakeTailscaleApi) -> None:
    api.server.shutdown()
    api.server.server_close()
    failed = run(curl_machine, release_args(curl_machine, api), check=False)
    assert failed.returncode != 0 and f"could not reach {api.url}" in failed.stderr


def test_curl_missing_is_refused(machine: Machine, api: FakeTailscaleApi) -> None:  # noqa: F811
    failed = run(machine, release_args(machine, api), check=False)  # no curl-logged on this machine
    assert failed.returncode != 0 and "blumeops:tools.curl" in failed.stderr


def test_the_rendered_step_passes_shellcheck(machine: Machine, api: FakeTailscaleApi,  # noqa: F811
                                             tmp_path: Path) -> None:
    path = tmp_path / "release.sh"
    path.write_text(release_args(machine, api).step("grafana-release-service").render())
    result = subprocess.run([str(SHELLCHECK), "--severity=style", str(path)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"service": "grafana"}, "not a Tailscale Service name"),
        ({"api_url": "http://api.tailscale.com"}, "must be https"),
        ({"oauth_client_id": " "}, "oauth_client_id is empty"),
        ({"state_root": "state"}, "must be an absolute path"),
    ],
)
def test_bad_arguments_are_refused_with_the_argument_named(machine: Machine, api: FakeTailscaleApi,  # noqa: F811
                                                           changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        release_args(machine, api, **changes)


# ---- hangs: an API that never answers stops the step, it is never read as "no such Service" ----------------


def run_quick(machine: Machine, args: TailnetNameReleaseArgs,  # noqa: F811
              action: str = "create") -> subprocess.CompletedProcess[str]:
    """The step with its call bounds at 2 s (the real ones are a minute), so a hang ends quickly here."""
    text = quick(args.step("grafana-release-service").render({"OAUTH_CLIENT_SECRET": CLIENT_SECRET}))
    started = time.monotonic()
    result = machine.run_text(text, action, check=False)
    assert time.monotonic() - started < 15
    return result


def test_an_api_that_never_answers_stops_the_step(curl_machine: Machine, api: FakeTailscaleApi) -> None:
    """A loopback listener that accepts connections and never answers (its backlog takes them; nobody
    reads): curl is killed at its bound, the step fails saying so and keeps nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        args = release_args(curl_machine, api, api_url=f"http://127.0.0.1:{silent.getsockname()[1]}")
        result = run_quick(curl_machine, args)
    assert result.returncode != 0
    assert "did not finish within 2s: killed" in result.stderr, result.stderr
    assert not Path(args.state_dir).exists()
    assert not list((curl_machine.root / "tmp").iterdir()), "the scratch directory (and fd 8's text) went with it"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_hung_call_stops_the_step_and_the_next_run_completes(curl_machine: Machine, api: FakeTailscaleApi,
                                                               method: str) -> None:
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    args = release_args(curl_machine, api)
    api.hang.add(method)
    result = run_quick(curl_machine, args)
    assert result.returncode != 0
    assert "did not finish within 2s: killed" in result.stderr, result.stderr
    assert "svc:grafana" in api.services, "nothing was decided on a call that did not answer"
    kept = Path(args.state_dir, "service.json")
    assert kept.exists() == (method == "DELETE"), "kept before the DELETE, not before the GET answered"
    api.hang.clear()
    run(curl_machine, args)
    assert "svc:grafana" not in api.services
    assert json.loads(kept.read_text()) == GRAFANA
    run(curl_machine, args, "delete")
    assert json.loads(api.services["svc:grafana"])["ports"] == GRAFANA["ports"]


def test_the_api_refuses_an_ipv6_address_on_creation(curl_machine: Machine, api: FakeTailscaleApi) -> None:
    """The stand-in is no kinder than the API: the kept definition sent as it was is refused."""
    assert created_service(json.dumps(GRAFANA).encode()) is None
    assert created_service(json.dumps({**GRAFANA, "addrs": ["100.100.1.7"]}).encode()) is not None


def test_a_service_recreated_differently_fails_and_keeps_the_copy(curl_machine: Machine,
                                                                  api: FakeTailscaleApi) -> None:
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    args = release_args(curl_machine, api)
    run(curl_machine, args)

    def drops_tags(body: bytes) -> bytes | None:  # an API that recreates without the tags
        made = created_service(body)
        return None if made is None else json.dumps({**json.loads(made), "tags": []}).encode()

    api.create = drops_tags
    failed = run(curl_machine, args, "delete", check=False)
    assert failed.returncode != 0 and "differs from the kept definition" in failed.stderr
    assert "in its tags" in failed.stderr
    assert Path(args.state_dir, "service.json").exists(), "the copy stays for the next try"


def test_a_service_with_only_an_ipv4_address_and_none_at_all_are_recreated(curl_machine: Machine,
                                                                           api: FakeTailscaleApi) -> None:
    for addrs in (["100.100.1.7"], []):
        definition = {**GRAFANA, "addrs": addrs}
        api.services["svc:grafana"] = json.dumps(definition).encode()
        args = release_args(curl_machine, api)
        run(curl_machine, args)
        run(curl_machine, args, "delete")
        recreated = json.loads(api.services.pop("svc:grafana"))
        assert recreated["ports"] == GRAFANA["ports"] and recreated["addrs"][1] == ALLOCATED_IPV6
