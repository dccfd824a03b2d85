"""``python -m ops check`` against real servers on loopback: HTTP servers that answer, fail, hang and present
bad TLS, PostgreSQL-protocol answers, and a real sshd (Debian's openssh-server) with a stub ``launchctl``
for the host-side probes, which must all travel in one SSH session."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import phases as phase_engine
from components import health
from components.host.check_agent import HealthCheckAgentArgs, host_probe_step
from ops import check
from ops import plan as offline_plan
from ops.__main__ import main
from tests.servers.sshd import LoopbackSshd, free_port
from tests.servers.web import HttpServer, LoopbackCA, SilentServer, SslRequestServer

PlanOf = Callable[[str | None], offline_plan.Plan]

# What proves each implemented phase, by check name: a phase that lands adds its own row.
EXPECTED_CHECKS: dict[str, list[str]] = {
    "0": [
        "zot /v2/ on localhost", "zot /v2/ via svc:registry", "textfile zot.prom",
        "launchd mcquack.eblume.zot", "launchd mcquack.eblume.zot-metrics",
        "k8s API /readyz via svc:k8s", "textfile minikube.prom",
        "launchd mcquack.eblume.k8s-api-serve", "launchd mcquack.eblume.minikube-metrics",
        "launchd mcquack.eblume.blumeops-check", "textfile blumeops-check.prom",
    ],
    "1": ["argocd /healthz", "postgres k8s-pg:5432"],
    "2": ["grafana /api/health"],
    "3": ["launchd mcquack.eblume.borgmatic", "launchd mcquack.eblume.borgmatic-metrics", "textfile borgmatic.prom"],
    "4": ["feed /healthcheck", "postgres pg:5432"],
    "5": ["pypi /+api"],
    "5.1": [],  # its proof is the nfs-probe Job the update waits for
    "6": ["torrent /transmission/web/", "kiwix /"],
    "7": ["forge /api/healthz"],
    "8": ["ci /healthz"],
    "9": [],  # cleanup: what it proves is in its steps (the uninstalls refuse a running service)
}
# Checks an earlier phase declares that a later phase's amendment retires (phase 4: k8s-pg becomes pg).
RETIRED_CHECKS: dict[str, list[str]] = {"4": ["postgres k8s-pg:5432"]}
IMPLEMENTED = [spec.id for spec in phase_engine.REGISTRY if spec.implemented]


def options(**values: Any) -> check.Options:
    return check.Options(**{"tailnet": "tail.example", **values})


def probe(item: health.HealthCheck, phase: str = "0") -> check.Probe:
    return check.Probe(item, f"urn:test::{item.name}", item.name, phase)


def statuses(results: list[check.Result]) -> dict[str, tuple[str, str]]:
    return {r.probe.check.name: (r.status, r.detail) for r in results}


# ---- derived from the plan -------------------------------------------------------------------------------

@pytest.mark.parametrize("target", IMPLEMENTED)
def test_the_plan_of_each_target_declares_exactly_its_checks(indri_plan: PlanOf, target: str) -> None:
    assert target in EXPECTED_CHECKS, f"phase {target} is implemented: list the checks it adds in EXPECTED_CHECKS"
    chain = IMPLEMENTED[: IMPLEMENTED.index(target) + 1]
    retired = {name for phase in chain for name in RETIRED_CHECKS.get(phase, [])}
    expected = [name for phase in chain for name in EXPECTED_CHECKS[phase] if name not in retired]
    probes = check.probes_from_plan(indri_plan(target).document)
    assert sorted(p.check.name for p in probes) == sorted(expected)
    for item in probes:
        assert item.phase is not None and item.check.name in EXPECTED_CHECKS[item.phase]


def test_checks_follow_the_declaring_components(indri_plan: PlanOf) -> None:
    probes = {p.check.name: p for p in check.probes_from_plan(indri_plan("1").document)}
    zot = probes["launchd mcquack.eblume.zot"]
    assert zot.component == "zot-agent" and isinstance(zot.check, health.LaunchdJob)
    assert zot.check.domain == "gui/501" and zot.check.launchctl == "/bin/launchctl"
    assert zot.check.host.address == "indri" and zot.check.host.user == "erichblume"
    textfile = probes["textfile zot.prom"].check
    assert isinstance(textfile, health.Textfile)
    assert textfile.path == "/opt/homebrew/var/node_exporter/textfile/zot.prom" and textfile.max_age_seconds == 180
    k8s = probes["k8s API /readyz via svc:k8s"].check
    assert isinstance(k8s, health.HttpEndpoint) and k8s.url == "https://k8s.tail8d86e.ts.net/readyz"
    registry = check.resolve(probes["zot /v2/ via svc:registry"].check, "tail8d86e.ts.net")
    assert isinstance(registry, health.HttpEndpoint) and registry.url == "https://registry.tail8d86e.ts.net/v2/"
    pg = check.resolve(probes["postgres k8s-pg:5432"].check, "tail8d86e.ts.net")
    assert isinstance(pg, health.PostgresEndpoint) and (pg.address, pg.port) == ("k8s-pg.tail8d86e.ts.net", 5432)


def test_a_malformed_declaration_names_the_resource_and_field() -> None:
    document = {"resources": [{"urn": "urn:x::zot", "name": "zot", "phase": "0",
                               "inputs": {"healthChecks": [{"kind": "http", "side": "operator", "name": "z"}]}}]}
    message = r"urn:x::zot healthChecks\[0\]: field 'expect' must be list, found None"
    with pytest.raises(check.CheckError, match=message):
        check.probes_from_plan(document)
    document["resources"][0]["inputs"]["healthChecks"] = [{"kind": "smoke-signal"}]
    with pytest.raises(check.CheckError, match="unknown health check kind 'smoke-signal'"):
        check.probes_from_plan(document)


def test_two_components_cannot_claim_one_check_name() -> None:
    item = health.HttpEndpoint(name="same", url="http://127.0.0.1:1/", fix="-").declaration()
    document = {"resources": [{"urn": f"urn:x::{n}", "name": n, "phase": "0", "inputs": {"healthChecks": [item]}}
                              for n in ("a", "b")]}
    with pytest.raises(check.CheckError, match=r"declared twice.*same"):
        check.probes_from_plan(document)


def test_declarations_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="is not an http"):
        health.HttpEndpoint(name="x", url="ftp://x/", fix="-")
    with pytest.raises(ValueError, match="timeout 99s"):
        health.HttpEndpoint(name="x", url="http://x/", fix="-", timeout=99)
    with pytest.raises(ValueError, match="needs the host and its curl"):
        health.HttpEndpoint(name="x", url="http://x/", fix="-", side=health.HOST_SIDE)
    with pytest.raises(ValueError, match="name 'bad\"name'"):
        health.HttpEndpoint(name='bad"name', url="http://x/", fix="-")


# ---- operator side ---------------------------------------------------------------------------------------

def test_http_probes_against_loopback_servers(http_server: list[HttpServer], test_ca: LoopbackCA) -> None:
    plain = HttpServer({"/v2/": 200, "/broken": 503}).start()
    trusted = HttpServer({"/healthz": 200}, tls=(test_ca.cert, test_ca.key)).start()
    untrusted = HttpServer({"/healthz": 200}, tls=(test_ca.self_signed, test_ca.self_signed_key)).start()
    http_server.extend([plain, trusted, untrusted])
    silent = SilentServer().start()
    try:
        checks = [
            health.HttpEndpoint(name="answers", url=plain.url("/v2/"), fix="-"),
            health.HttpEndpoint(name="fails", url=plain.url("/broken"), fix="restart it"),
            health.HttpEndpoint(name="trusted tls", url=trusted.url("/healthz"), fix="-"),
            health.HttpEndpoint(name="bad tls", url=untrusted.url("/healthz"), fix="-"),
            health.HttpEndpoint(name="cluster tls", url=untrusted.url("/healthz"), fix="-", tls="cluster"),
            health.HttpEndpoint(name="hangs", url=f"http://127.0.0.1:{silent.port}/", fix="-", timeout=1),
            health.HttpEndpoint(name="refused", url=f"http://127.0.0.1:{free_port()}/", fix="-"),
        ]
        started = time.monotonic()
        results = check.run_checks([probe(c) for c in checks], options(public_ca=str(test_ca.ca)))
        elapsed = time.monotonic() - started
    finally:
        silent.stop()
    got = statuses(results)
    assert got["answers"] == ("OK", "HTTP 200")
    assert got["fails"][0] == "FAILED" and "HTTP 503" in got["fails"][1] and "expected 200" in got["fails"][1]
    assert got["trusted tls"] == ("OK", "HTTP 200")
    assert got["bad tls"][0] == "FAILED" and "not trusted" in got["bad tls"][1]
    assert got["cluster tls"][0] == "OK" and "not verified: pass --cluster-ca" in got["cluster tls"][1]
    assert got["hangs"][0] == "FAILED" and "within 1s" in got["hangs"][1]
    assert got["refused"][0] == "FAILED" and "refused" in got["refused"][1]
    assert elapsed < 1.8, f"one hung probe with a 1s timeout took {elapsed:.1f}s"
    by_name = {r.probe.check.name: r for r in results}
    assert by_name["fails"].fix == "restart it" and by_name["answers"].fix == ""


def test_cluster_tls_verifies_with_the_given_ca(http_server: list[HttpServer], test_ca: LoopbackCA) -> None:
    server = HttpServer({"/readyz": 200}, tls=(test_ca.cert, test_ca.key)).start()
    http_server.append(server)
    item = health.HttpEndpoint(name="k8s", url=server.url("/readyz"), fix="-", tls="cluster")
    assert statuses(check.run_checks([probe(item)], options(cluster_ca=str(test_ca.ca))))["k8s"] == ("OK", "HTTP 200")
    other = HttpServer({"/readyz": 200}, tls=(test_ca.self_signed, test_ca.self_signed_key)).start()
    http_server.append(other)
    item = health.HttpEndpoint(name="k8s", url=other.url("/readyz"), fix="-", tls="cluster")
    status, detail = statuses(check.run_checks([probe(item)], options(cluster_ca=str(test_ca.ca))))["k8s"]
    assert status == "FAILED" and "not trusted" in detail


@pytest.mark.parametrize(("answer", "status", "detail"), [
    (b"N", "OK", "without TLS"),
    (b"S", "OK", "offers TLS"),
    (b"H", "FAILED", "not PostgreSQL"),
    (b"", "FAILED", "closed the connection"),
])
def test_postgres_probe_reads_the_startup_answer(answer: bytes, status: str, detail: str) -> None:
    server = SslRequestServer(answer).start()
    try:
        item = health.PostgresEndpoint("pg", "127.0.0.1", server.port, "-")
        got = statuses(check.run_checks([probe(item)], options()))["pg"]
    finally:
        server.stop()
    assert got[0] == status and detail in got[1]
    assert server.requests == [check.SSL_REQUEST]


# ---- host side, over one SSH session ---------------------------------------------------------------------

@pytest.fixture
def counting_ssh(tmp_path: Path) -> tuple[str, Path]:
    """An ``ssh`` that logs each invocation, then runs the real one."""
    log = tmp_path / "sessions.log"
    wrapper = tmp_path / "ssh"
    wrapper.write_text(f'#!/bin/bash\necho session >>"{log}"\nexec /usr/bin/ssh "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper), log


def host_checks(server: LoopbackSshd, textfiles: Path, web: HttpServer) -> list[health.HealthCheck]:
    target = server.target()
    launchctl = "launchctl"  # the stub on the session's PATH (SetEnv in the test sshd's config)

    def job(label: str) -> health.LaunchdJob:
        return health.LaunchdJob(target, label, "gui/501", launchctl, f"/logs/{label}.err.log")

    return [
        job("mcquack.eblume.zot"), job("mcquack.eblume.zot-metrics"), job("mcquack.eblume.crashed"),
        job("mcquack.eblume.missing"),
        health.Textfile(target, str(textfiles / "fresh.prom"), 180, "mcquack.eblume.zot-metrics"),
        health.Textfile(target, str(textfiles / "stale.prom"), 180, "mcquack.eblume.minikube-metrics"),
        health.Textfile(target, str(textfiles / "absent.prom"), 180, "mcquack.eblume.absent"),
        health.HttpEndpoint(name="zot on localhost", url=web.url("/v2/"), fix="-", side=health.HOST_SIDE,
                            host=target, curl="/usr/bin/curl"),
        health.HttpEndpoint(name="broken on localhost", url=web.url("/broken"), fix="-", side=health.HOST_SIDE,
                            host=target, curl="/usr/bin/curl"),
    ]


def prepare_host(server: LoopbackSshd, textfiles: Path) -> None:
    server.set_job("mcquack.eblume.zot", last_exit=None)
    server.set_job("mcquack.eblume.zot-metrics", state="not running", last_exit="0")
    server.set_job("mcquack.eblume.crashed", state="not running", last_exit="78: EX_CONFIG")
    server.remove_job("mcquack.eblume.missing")
    textfiles.mkdir(exist_ok=True)
    (textfiles / "fresh.prom").write_text("zot_up 1\n")
    stale = textfiles / "stale.prom"
    stale.write_text("minikube_up 1\n")
    old = time.time() - 600
    os.utime(stale, (old, old))


def test_host_probes_share_one_ssh_session(sshd: LoopbackSshd, tmp_path: Path, http_server: list[HttpServer],
                                           counting_ssh: tuple[str, Path]) -> None:
    web = HttpServer({"/v2/": 200, "/broken": 500}).start()
    http_server.append(web)
    prepare_host(sshd, tmp_path / "textfile")
    ssh, log = counting_ssh
    checks = host_checks(sshd, tmp_path / "textfile", web)
    started = time.monotonic()
    results = check.run_checks([probe(c) for c in checks], options(ssh=ssh, identity=str(sshd.identity)))
    elapsed = time.monotonic() - started
    got = statuses(results)
    assert got["launchd mcquack.eblume.zot"] == ("OK", "loaded, never exited")
    assert got["launchd mcquack.eblume.zot-metrics"] == ("OK", "loaded, last exit code 0")
    assert got["launchd mcquack.eblume.crashed"] == ("FAILED", "loaded, but its last exit code is 78: EX_CONFIG")
    assert got["launchd mcquack.eblume.missing"][0] == "FAILED"
    assert got["launchd mcquack.eblume.missing"][1].startswith("not loaded in gui/501")
    assert got["textfile fresh.prom"][0] == "OK"
    assert got["textfile stale.prom"][0] == "FAILED" and "limit 180s" in got["textfile stale.prom"][1]
    assert got["textfile absent.prom"] == ("FAILED", f"{tmp_path}/textfile/absent.prom does not exist")
    assert got["zot on localhost"][0] == "OK" and "HTTP 200" in got["zot on localhost"][1]
    assert got["broken on localhost"][0] == "FAILED" and "HTTP 500" in got["broken on localhost"][1]
    assert log.read_text().splitlines() == ["session"], "every host probe must travel in one SSH session"
    assert elapsed < 5


def test_a_hung_host_probe_is_reported_within_its_timeout(sshd: LoopbackSshd, tmp_path: Path,
                                                          http_server: list[HttpServer]) -> None:
    web = HttpServer({"/v2/": 200}).start()
    http_server.append(web)
    silent = SilentServer().start()
    silent_port = silent.port
    target = sshd.target()
    sshd.set_job("mcquack.eblume.hung", hang=True)
    sshd.set_job("mcquack.eblume.zot")
    checks: list[health.HealthCheck] = [
        health.LaunchdJob(target, "mcquack.eblume.hung", "gui/501", str(sshd.launchctl), "/l", timeout=3),
        health.LaunchdJob(target, "mcquack.eblume.zot", "gui/501", str(sshd.launchctl), "/l", timeout=3),
        health.HttpEndpoint(name="hung url", url=f"http://127.0.0.1:{silent.port}/", fix="-",
                            side=health.HOST_SIDE, host=target, curl="/usr/bin/curl", timeout=3),
        health.HttpEndpoint(name="hung operator url", url=f"http://127.0.0.1:{silent.port}/", fix="-", timeout=3),
        health.HttpEndpoint(name="fine", url=web.url("/v2/"), fix="-", timeout=3),
    ]
    try:
        started = time.monotonic()
        results = check.run_checks([probe(c) for c in checks], options(identity=str(sshd.identity)))
        elapsed = time.monotonic() - started
    finally:
        silent.stop()
    got = statuses(results)
    assert got["launchd mcquack.eblume.hung"] == ("FAILED", "timed out after 2s")  # 3s minus SSH set-up
    assert got["launchd mcquack.eblume.zot"][0] == "OK"
    assert got["hung url"][0] == "FAILED"
    assert got["hung operator url"] == ("FAILED", f"no answer from http://127.0.0.1:{silent_port}/ within 3s")
    assert got["fine"] == ("OK", "HTTP 200")
    assert elapsed < 3.5, f"the slowest timeout is 3s, the run took {elapsed:.1f}s"
    # the hung launchctl went with its probe's process group, not left running on the host
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and subprocess.run(["pgrep", "-f", "sleep 61.7"], capture_output=True,
                                                          check=False).returncode == 0:
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-f", "sleep 61.7"], capture_output=True, check=False).returncode == 1


def test_the_remote_command_is_a_constant_whatever_the_settings_say(sshd: LoopbackSshd, tmp_path: Path) -> None:
    """sshd runs the remote command through the login shell: a bash path from settings must never reach it."""
    marker = tmp_path / "pwned"
    target = sshd.target()
    hostile = health.SshTarget(target.address, target.port, target.user, target.host_key,
                               f"/usr/bin/touch {marker};/bin/bash")
    sshd.set_job("mcquack.eblume.zot")
    item = health.LaunchdJob(hostile, "mcquack.eblume.zot", "gui/501", str(sshd.launchctl), "/l")
    [result] = check.run_checks([probe(item)], options(identity=str(sshd.identity)))
    assert not marker.exists(), "a setting ran as code on the host"
    assert result.status == "OK"
    command = check.ssh_command(hostile, options(), tmp_path / "k", 3)
    assert command[-1] == "/bin/bash -euo pipefail -s -- check" and command[-3] == "--"
    assert not any(str(marker) in part for part in command)


def test_an_unknown_host_key_fails_every_host_probe_with_the_fix(sshd: LoopbackSshd) -> None:
    target = sshd.target()
    other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvtQ9Pr8mnNRQnwuxLqX2YP5ScexlVgB1oPUWAB2Y0n"
    wrong = health.SshTarget(target.address, target.port, target.user, other_key, "/bin/bash")
    item = health.LaunchdJob(wrong, "mcquack.eblume.zot", "gui/501", "launchctl", "/l")
    [result] = check.run_checks([probe(item)], options(identity=str(sshd.identity)))
    assert result.status == "FAILED" and result.detail.startswith(f"SSH to 127.0.0.1:{sshd.port} failed")
    assert "blumeops:indri.hostKey" in result.fix


def test_phase_nine_sized_run_answers_under_five_seconds(sshd: LoopbackSshd, tmp_path: Path,
                                                         http_server: list[HttpServer]) -> None:
    """Phase 9 deploys about 12 tailnet endpoints, 12 agents and 6 textfiles: the same count, all answering."""
    web = HttpServer({f"/app{i}": 200 for i in range(12)}).start()
    http_server.append(web)
    target = sshd.target()
    (tmp_path / "t").mkdir()
    checks: list[health.HealthCheck] = []
    for i in range(12):
        checks.append(health.HttpEndpoint(name=f"app{i}", url=web.url(f"/app{i}"), fix="-"))
        sshd.set_job(f"mcquack.eblume.agent{i}")
        checks.append(health.LaunchdJob(target, f"mcquack.eblume.agent{i}", "gui/501", str(sshd.launchctl), "/l"))
    for i in range(6):
        (tmp_path / "t" / f"m{i}.prom").write_text("x 1\n")
        checks.append(health.Textfile(target, str(tmp_path / "t" / f"m{i}.prom"), 180, "w"))
    started = time.monotonic()
    results = check.run_checks([probe(c) for c in checks], options(identity=str(sshd.identity)))
    elapsed = time.monotonic() - started
    assert [r.status for r in results] == ["OK"] * len(checks)
    assert elapsed < 5, f"{len(checks)} answering probes took {elapsed:.1f}s"


# ---- the command -----------------------------------------------------------------------------------------

def crafted_plan(path: Path, checks: list[health.HealthCheck]) -> Path:
    document = {"stack": "indri", "project": "blumeops", "targetPhase": "0", "phases": [], "exports": {},
                "resources": [{"urn": f"urn:test::{c.name}", "type": "blumeops:test:Thing", "name": c.name,
                               "custom": False, "parent": None, "phase": "0", "provider": None,
                               "inputs": health.props([c]), "options": {}} for c in checks]}
    path.write_text(json.dumps(document))
    return path


def test_the_command_prints_a_table_and_fails_on_a_failure(tmp_path: Path, http_server: list[HttpServer],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    web = HttpServer({"/ok": 200, "/bad": 502}).start()
    http_server.append(web)
    target = health.SshTarget("127.0.0.1", 1, "nobody", "ssh-ed25519 AAAA", "/bin/bash")
    plan = crafted_plan(tmp_path / "plan.json", [
        health.HttpEndpoint(name="good", url=web.url("/ok"), fix="-"),
        health.HttpEndpoint(name="bad", url=web.url("/bad"), fix="look at the proxy"),
        health.LaunchdJob(target, "mcquack.eblume.zot", "gui/501", "/bin/launchctl", "/l"),
    ])
    assert main(["check", "--plan", str(plan), "--skip", "host"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["status", "check", "phase", "detail", "fix"]
    assert any(line.startswith("OK") and "good" in line for line in lines)
    assert any(line.startswith("FAILED") and "bad" in line and "look at the proxy" in line for line in lines)
    assert any(line.startswith("SKIPPED") and "launchd mcquack.eblume.zot" in line for line in lines)
    assert "1 OK, 1 FAILED, 1 SKIPPED" in lines[-1]

    good_only = crafted_plan(tmp_path / "good.json", [health.HttpEndpoint(name="good", url=web.url("/ok"), fix="-")])
    assert main(["check", "--plan", str(good_only), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and [r["status"] for r in document["results"]] == ["OK"]
    assert document["results"][0]["phase"] == "0" and document["results"][0]["kind"] == "http"


def test_the_command_reads_the_stacks_tailnet_into_the_urls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--phase", "1", "--skip", "host", "--skip", "operator", "--json"]) == 0
    results = {r["name"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert sorted(results) == sorted(EXPECTED_CHECKS["0"] + EXPECTED_CHECKS["1"])
    assert all(r["status"] == "SKIPPED" for r in results.values())
    assert results["argocd /healthz"]["target"] == "https://argocd.tail8d86e.ts.net/healthz"
    assert results["postgres k8s-pg:5432"]["target"] == "k8s-pg.tail8d86e.ts.net:5432"
    assert results["launchd mcquack.eblume.zot"]["target"] == "gui/501/mcquack.eblume.zot"
    assert main(["check", "--phase", "1", "--skip", "host", "--skip", "operator", "--json",
                 "--tailnet", "other.ts.net"]) == 0
    results = {r["name"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert results["zot /v2/ via svc:registry"]["target"] == "https://registry.other.ts.net/v2/"


def test_the_tailnet_comes_from_the_stack_or_the_exported_endpoints() -> None:
    stack = check.StackConfig(project="blumeops", stack="lab", config={}, secret_keys=[])
    exported = {"exports": {"endpoints": {"k8s": "https://k8s.lab.ts.net", "pg": "postgresql://pg.lab.ts.net:5432"}}}
    assert check.tailnet_name(stack, exported) == "lab.ts.net"
    with pytest.raises(check.CheckError, match=r"cannot tell the tailnet's name.*--tailnet"):
        check.tailnet_name(stack, {"exports": {}})
    mixed = {"exports": {"endpoints": {"a": "https://a.one.ts.net", "b": "https://b.two.ts.net"}}}
    with pytest.raises(check.CheckError, match=r"one.ts.net', 'two.ts.net"):
        check.tailnet_name(stack, mixed)
    stack.config["blumeops:tailnet.name"] = "set.ts.net"
    assert check.tailnet_name(stack, mixed) == "set.ts.net"


def test_a_missing_plan_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--plan", str(tmp_path / "nope.json")]) == 1
    assert "--plan: cannot read plan" in capsys.readouterr().err


# ---- the periodic mode -----------------------------------------------------------------------------------

def test_the_periodic_script_writes_the_gauges(sshd: LoopbackSshd, tmp_path: Path) -> None:
    """The agent runs the same script on the host (here: locally, with the stub launchctl by path)."""
    target = sshd.target()
    sshd.set_job("mcquack.eblume.zot")
    sshd.set_job("mcquack.eblume.crashed", last_exit="1")
    fresh = tmp_path / "zot.prom"
    fresh.write_text("zot_up 1\n")
    checks: list[health.HealthCheck] = [
        health.LaunchdJob(target, "mcquack.eblume.zot", "gui/501", str(sshd.launchctl), "/l"),
        health.LaunchdJob(target, "mcquack.eblume.crashed", "gui/501", str(sshd.launchctl), "/l"),
        health.Textfile(target, str(fresh), 180, "mcquack.eblume.zot-metrics"),
    ]
    textfile = tmp_path / "textfile" / "blumeops-check.prom"
    script = tmp_path / "blumeops-check"
    script.write_text(host_probe_step("blumeops-check", checks, str(textfile)).render())
    subprocess.run(["bash", str(script), "agent"], check=True, capture_output=True, text=True, timeout=20)
    lines = textfile.read_text().splitlines()
    assert 'blumeops_check_up{check="launchd mcquack.eblume.zot",kind="launchd"} 1' in lines
    assert 'blumeops_check_up{check="launchd mcquack.eblume.crashed",kind="launchd"} 0' in lines
    assert 'blumeops_check_up{check="textfile zot.prom",kind="textfile"} 1' in lines
    stamp = [line for line in lines if line.startswith("blumeops_check_last_run_timestamp_seconds ")]
    assert len(stamp) == 1 and abs(int(stamp[0].split()[1]) - time.time()) < 30


def test_the_periodic_agent_takes_only_host_side_checks(indri_plan: PlanOf) -> None:
    probes = check.probes_from_plan(indri_plan("0").document)
    host_side = [p.check for p in probes if p.check.side == health.HOST_SIDE]
    operator_side = [p.check for p in probes if p.check.side == health.OPERATOR_SIDE]
    first = host_side[0]
    assert isinstance(first, health.LaunchdJob | health.Textfile | health.HttpEndpoint)
    with pytest.raises(ValueError, match="not host-side checks"):
        HealthCheckAgentArgs(host=None, checks=operator_side, textfile_dir="/t", script_dir="/b",  # type: ignore[arg-type]
                             log_dir="/l", agent_name=None)  # type: ignore[arg-type]


def test_the_probe_script_passes_shellcheck(tmp_path: Path) -> None:
    target = health.SshTarget("indri", 22, "erichblume", "ssh-ed25519 AAAA", "/bin/bash")
    script = tmp_path / "probes.sh"
    script.write_text(host_probe_step("blumeops-check", [
        health.LaunchdJob(target, "mcquack.eblume.zot", "gui/501", "/bin/launchctl", "/l"),
        health.Textfile(target, "/opt/homebrew/var/node_exporter/textfile/zot.prom", 180, "w"),
        health.HttpEndpoint(name="zot", url="http://localhost:5050/v2/", fix="-", side=health.HOST_SIDE,
                            host=target, curl="/usr/bin/curl"),
    ], "/opt/homebrew/var/node_exporter/textfile/blumeops-check.prom").render())
    shellcheck = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "shellcheck"
    done = subprocess.run([str(shellcheck) if shellcheck.exists() else "shellcheck", "-s", "bash", str(script)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


AGENT_PROGRAM = '''
import dataclasses
from components import health
from components.host import AgentName, Host, HostTools
from components.host.check_agent import HealthCheckAgent, HealthCheckAgentArgs

tools = HostTools(**{f.name: f"/usr/bin/{f.name}" for f in dataclasses.fields(HostTools)})
host = Host(address="mac", port=22, user="me", uid=501, home="/Users/me", host_key="ssh-ed25519 AAAA", tools=tools)
target = health.SshTarget.of(host)
checks = [health.LaunchdJob(target, "org.example.zot", "gui/501", "/bin/launchctl", "/logs/zot.err.log"),
          health.Textfile(target, "/var/textfile/zot.prom", 180, "org.example.zot-metrics")]
HealthCheckAgent("health-check", HealthCheckAgentArgs(
    host=host, checks=checks, textfile_dir="/var/textfile", script_dir="/Users/me/bin", log_dir="/var/log",
    agent_name=AgentName("org.example.health-check", "org.example.health-check")))
'''


def installed_file(stdin: str, variable: str) -> str:
    """The value of ``readonly VARIABLE=...`` in a host step's preamble, read as bash reads the quoting."""
    start = stdin.index(f"\nreadonly {variable}=") + len("\nreadonly ")
    lexer = shlex.shlex(stdin[start:], posix=True)
    lexer.whitespace_split = True
    token = lexer.get_token()
    assert token is not None and token.startswith(f"{variable}=")
    return token.removeprefix(f"{variable}=")


def test_the_periodic_agent_component_registers_its_script_agent_and_own_check(tmp_path: Path) -> None:
    """HealthCheckAgent under the mock engine: the script of the given checks, the LaunchAgent every 300 s,
    and its own freshness check (its textfile younger than three intervals) declared like any other."""
    from ops.engine import harness

    (tmp_path / "__main__.py").write_text(AGENT_PROGRAM)
    run = harness.run_program(tmp_path, "blumeops", "test", {}, [])
    by_name = {r.name: r for r in run.registrations}
    component = offline_plan.redact(by_name["health-check"].wire_inputs)
    assert component["checks"] == ["launchd org.example.zot", "textfile zot.prom"]
    assert "artifacts" not in component  # the script travels in its install step's stdin, nowhere else
    install = offline_plan.redact(by_name["health-check-script"].wire_inputs)
    script = installed_file(install["stdin"], "FILE_CONTENT")
    assert installed_file(install["stdin"], "FILE_PATH") == "/Users/me/bin/blumeops-check"
    assert script.startswith("#!/bin/bash\n# blumeops host step blumeops-check (components/host/scripts/health-probes")
    assert "readonly PROBE_1_TARGET=gui/501/org.example.zot" in script
    assert "readonly METRICS_TEXTFILE=/var/textfile/blumeops-check.prom" in script
    [own] = component["healthChecks"]
    assert own["kind"] == "textfile" and own["path"] == "/var/textfile/blumeops-check.prom"
    assert own["maxAgeSeconds"] == 900 and own["writer"] == "org.example.health-check"
    agent = offline_plan.redact(by_name["health-check-agent"].wire_inputs)
    assert agent["startInterval"] == 300
    assert agent["programArguments"] == ["/usr/bin/bash", "/Users/me/bin/blumeops-check", "agent"]
    assert [c["name"] for c in agent["healthChecks"]] == ["launchd org.example.health-check"]
    assert "health-check-script" in by_name and by_name["health-check-script"].type == "command:remote:Command"
