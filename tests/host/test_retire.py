"""LegacyServiceRetirement's step, rendered as the program renders it and run on the fake machine: a brew
service or a mcquack LaunchAgent and its serve entry are retired, and the delete restores both byte for byte
(the stub toolbox's records compared before and after). The brew and launchctl stubs follow Homebrew's own
services code (formula_wrapper.rb, cli.rb, system.rb) and launchd's per-domain lookups."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.host import (
    BrewService,
    HostStep,
    LegacyLaunchAgent,
    LegacyServiceRetirementArgs,
)
from tests.host.conftest import Machine
from tests.host.test_hardening import quick

SHELLCHECK = Path(sys.executable).parent / "shellcheck"
LABEL = "mcquack.eblume.devpi"
RETIRE_CALLS = ("brew services stop", "brew services start", "brew services run", "launchctl bootstrap",
                "launchctl bootout",
                "tailscale serve --service", "tailscale serve clear")


def brew_args(machine: Machine, serve: str | None = "svc:grafana", formula: str = "grafana",
              **changes: object) -> LegacyServiceRetirementArgs:
    values: dict[str, object] = {
        "host": machine.host(), "service": BrewService(formula, str(machine.bin / "brew")), "serve_service": serve,
    }
    values.update(changes)
    return LegacyServiceRetirementArgs(**values)  # type: ignore[arg-type]


def agent_args(machine: Machine, serve: str | None = "svc:pypi") -> LegacyServiceRetirementArgs:
    return LegacyServiceRetirementArgs(host=machine.host(), service=LegacyLaunchAgent(LABEL), serve_service=serve)


# The owner's own edits of a brew plist (an environment variable): `brew services start` would regenerate it.
CUSTOM_PLIST = ('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>Label</key>'
                "<string>homebrew.mxcl.grafana</string><key>EnvironmentVariables</key><dict>"
                "<key>GF_PATHS_DATA</key><string>/Users/erichblume/grafana</string></dict></dict></plist>\n")


def install_brew_service(machine: Machine, formula: str = "grafana", status: str | None = "started",
                         registered: bool = True, root: bool = False) -> Path:
    """A formula installed; its job loaded with ``status`` (None: not loaded); its plist installed in
    ~/Library/LaunchAgents as `brew services start` leaves it (``registered``), or in the boot path of a
    `sudo brew services start` (``root``: loaded in the system domain, which the user's brew does not see)."""
    (machine.state / "brew/Cellar" / formula / "11.4.0").mkdir(parents=True)
    if status is not None and not root:
        (machine.state / "brew/services").mkdir(parents=True, exist_ok=True)
        (machine.state / "brew/services" / formula).write_text(status + "\n")
    directory = machine.state / "brew/LaunchDaemons" if root else machine.home / "Library/LaunchAgents"
    plist = directory / f"homebrew.mxcl.{formula}.plist"
    if registered or root:
        directory.mkdir(parents=True, exist_ok=True)
        plist.write_text(CUSTOM_PLIST.replace("grafana", formula))
        plist.chmod(0o644)
    return plist


def serve(machine: Machine, service: str, *lines: str) -> None:
    (machine.state / "serve").mkdir(exist_ok=True)
    (machine.state / "serve" / service).write_text("".join(line + "\n" for line in lines))


def load_agent(machine: Machine) -> Path:
    plist = machine.home / f"Library/LaunchAgents/{LABEL}.plist"
    plist.parent.mkdir(parents=True)
    plist.write_text('<?xml version="1.0"?>\n<plist version="1.0"><dict><key>Label</key>'
                     f"<string>{LABEL}</string></dict></plist>\n")
    plist.chmod(0o640)
    (machine.state / "launchd").mkdir(exist_ok=True)
    loaded = machine.state / "launchd" / LABEL  # as the launchctl stub's bootstrap leaves it (cp)
    loaded.write_text(plist.read_text())
    loaded.chmod(0o640)
    return plist


def stub_records(machine: Machine) -> dict[str, tuple[bytes, int]]:
    """What the host runs, as the stubs record it (brew services, launchd, serve entries) and the user's
    LaunchAgents: content and mode. The retirement's own record is not part of it."""
    return {path: value[:2] for path, value in machine.files().items()
            if "/.local/state/blumeops/" not in path and not path.endswith("restarts.log")}


def retire_calls(machine: Machine, since: int = 0) -> list[str]:
    return [call for call in machine.calls()[since:] if call.startswith(RETIRE_CALLS)]


def step(args: LegacyServiceRetirementArgs) -> HostStep:
    return args.step("grafana-retire")


# ---- brew services -------------------------------------------------------------------------------------


def test_brew_service_and_serve_entry_are_retired_and_restored_byte_for_byte(machine: Machine) -> None:
    install_brew_service(machine)
    serve(machine, "svc:grafana", "https 443 http://localhost:3000")
    serve(machine, "svc:registry", "https 443 http://localhost:5050")
    before = stub_records(machine)
    args = brew_args(machine)

    created = machine.run(step(args))
    assert not (machine.state / "brew/services/grafana").exists()
    assert not (machine.state / "serve/svc:grafana").exists()
    assert (machine.state / "serve/svc:registry").exists(), "only the retired service's entry is cleared"
    assert retire_calls(machine) == ["brew services stop grafana", "tailscale serve clear svc:grafana"]
    assert not (machine.home / "Library/LaunchAgents/homebrew.mxcl.grafana.plist").exists(), "unregistered"
    record = json.loads(created.stdout)
    assert record == {
        "kind": "brew", "name": "grafana", "state": "started true true", "serveService": "svc:grafana",
        "serveEntry": {"TCP": {"443": {"HTTPS": True}},
                       "Web": {"grafana.tail8d86e.ts.net:443": {"Handlers": {"/": {"Proxy": "http://localhost:3000"}}}}},
    }
    record_dir = Path(args.record_dir)
    assert oct(record_dir.stat().st_mode & 0o777) == "0o700"

    calls = len(machine.calls())
    deleted = machine.run(step(args), "delete")
    kept = f"{record_dir}/agent.plist"
    assert retire_calls(machine, calls) == [f"brew services start --file={kept} grafana",
                                           "tailscale serve --service=svc:grafana --https=443 http://localhost:3000"]
    assert "restored brew service grafana" in deleted.stderr
    # the owner's own plist, not the one brew would generate from the formula
    assert stub_records(machine) == before
    assert not record_dir.exists(), "the record is removed once the service is back"


def test_create_twice_mutates_once(machine: Machine) -> None:
    install_brew_service(machine)
    serve(machine, "svc:grafana", "https 443 http://localhost:3000")
    args = brew_args(machine)
    first = machine.run(step(args))
    calls = len(machine.calls())
    record = {path: value for path, value in machine.files().items() if "/.local/state/" in path}
    second = machine.run(step(args))
    assert retire_calls(machine, calls) == []
    assert "was retired before" in second.stderr and "already stopped" in second.stderr
    assert {path: value for path, value in machine.files().items() if "/.local/state/" in path} == record
    assert json.loads(second.stdout) == json.loads(first.stdout), "the first record stays the record"


def test_delete_twice_restores_once(machine: Machine) -> None:
    install_brew_service(machine)
    serve(machine, "svc:grafana", "https 443 http://localhost:3000")
    args = brew_args(machine)
    machine.run(step(args))
    machine.run(step(args), "delete")
    calls = len(machine.calls())
    again = machine.run(step(args), "delete")
    assert retire_calls(machine, calls) == []
    assert "nothing to do" in again.stderr


def test_delete_without_create_is_a_no_op_that_says_so(machine: Machine) -> None:
    install_brew_service(machine, status=None, registered=False)
    before = machine.files()
    result = machine.run(step(brew_args(machine)), "delete")
    assert "was not retired by this step" in result.stderr and "nothing to do" in result.stderr
    assert retire_calls(machine) == [] and machine.files() == before


def test_a_service_already_gone_is_recorded_as_such_and_not_started_on_rollback(machine: Machine) -> None:
    install_brew_service(machine, status=None, registered=False)  # installed, not loaded nor registered
    args = brew_args(machine)
    created = machine.run(step(args))
    assert retire_calls(machine) == []
    assert "already stopped and unregistered (none false false)" in created.stderr
    assert json.loads(created.stdout)["state"] == "none false false"
    assert json.loads(created.stdout)["serveEntry"] is None
    deleted = machine.run(step(args), "delete")
    assert retire_calls(machine) == []
    assert "was none when it was retired: left as it is" in deleted.stderr
    assert "had no serve entry" in deleted.stderr


def test_a_formula_that_is_not_installed_counts_as_retired(machine: Machine) -> None:
    created = machine.run(step(brew_args(machine)))
    assert json.loads(created.stdout)["state"] == "absent false false"
    assert retire_calls(machine) == []
    machine.run(step(brew_args(machine)), "delete")
    assert retire_calls(machine) == []


def test_brew_missing_is_refused_before_anything_changes(machine: Machine) -> None:
    serve(machine, "svc:grafana", "https 443 http://localhost:3000")
    (machine.bin / "brew").unlink()
    result = machine.run(step(brew_args(machine)), check=False)
    assert result.returncode != 0
    assert f"Homebrew is not at {machine.bin / 'brew'}" in result.stderr and "blumeops:tools.brew" in result.stderr
    assert (machine.state / "serve/svc:grafana").exists()
    assert not Path(brew_args(machine).record_dir).exists()


def test_a_failing_stop_fails_the_step_and_the_next_run_finishes_the_retirement(machine: Machine) -> None:
    install_brew_service(machine)
    serve(machine, "svc:grafana", "https 443 http://localhost:3000")
    args = brew_args(machine)
    machine.fail("brew-stop")
    result = machine.run(step(args), check=False)
    assert result.returncode != 0 and "brew services stop grafana` failed" in result.stderr
    assert (machine.state / "serve/svc:grafana").exists(), "the entry stays while the service still runs"
    machine.heal("brew-stop")
    second = machine.run(step(args))
    # the record written before the failure (state "started") is the one kept
    assert json.loads(second.stdout)["state"] == "started true true"
    assert not (machine.state / "brew/services/grafana").exists()
    assert not (machine.state / "serve/svc:grafana").exists()


def test_failing_serve_status_fails_before_anything_stops(machine: Machine) -> None:
    install_brew_service(machine)
    machine.fail("tailscale-status")
    result = machine.run(step(brew_args(machine)), check=False)
    assert result.returncode != 0 and "tailscale serve status --json` failed" in result.stderr
    assert (machine.state / "brew/services/grafana").read_text() == "started\n"


@pytest.mark.parametrize(("key", "how", "message"), [
    ("tailscale-set", "fail", "must exist again"),
    ("tailscale-status", "hang", "did not finish within 2s: killed"),  # killed at its bound (2 s here)
])
def test_a_failing_restore_of_the_entry_is_retried_by_the_next_delete(machine: Machine, key: str, how: str,
                                                                      message: str) -> None:
    install_brew_service(machine)
    serve(machine, "svc:grafana", "https 443 http://localhost:3000")
    before = stub_records(machine)
    args = brew_args(machine)
    machine.run(step(args))
    machine.fail(key, how=how)
    result = run_quick(machine, args, "delete")
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert Path(args.record_dir, "record").exists(), "the record stays until the restore succeeded"
    machine.heal(key, how=how)
    machine.run(step(args), "delete")
    assert stub_records(machine) == before


def test_an_entry_with_several_ports_is_restored_in_full(machine: Machine) -> None:
    install_brew_service(machine, "forgejo")
    # sorted by port as a string, as tailscaled prints its map keys
    serve(machine, "svc:forge", "tcp 22 tcp://localhost:2200", "https 443 http://localhost:3001")
    before = stub_records(machine)
    args = brew_args(machine, serve="svc:forge", formula="forgejo")
    machine.run(args.step("forge-retire"))
    assert not (machine.state / "serve/svc:forge").exists()
    machine.run(args.step("forge-retire"), "delete")
    assert stub_records(machine) == before
    plan = [c for c in machine.calls() if c.startswith("tailscale serve --service")]
    assert plan == ["tailscale serve --service=svc:forge --tcp=22 tcp://localhost:2200",
                    "tailscale serve --service=svc:forge --https=443 http://localhost:3001"]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"TCP": {"443": {"HTTPS": True}}, "Web": {"grafana.tail8d86e.ts.net:443": {"Handlers": {
            "/": {"Proxy": "http://localhost:3000"}, "/api": {"Proxy": "http://localhost:3001"}}}}},
         "a web server on port 443 that is not a single proxy on /"),
        ({"TCP": {"443": {"HTTPS": True}}, "Web": {"grafana.tail8d86e.ts.net:443": {"Handlers": {
            "/": {"Text": "hello"}}}}}, "a web server on port 443 that is not a single proxy on /"),
        ({"TCP": {"5432": {"TCPForward": "localhost:5432", "ProxyProtocol": 2}}},
         'port 5432 with settings "ProxyProtocol":2'),
        ({"TCP": {"443": {"HTTPS": True}}, "Tun": True}, "Tun mode"),
    ],
)
def test_an_entry_that_could_not_be_recreated_is_refused_before_anything_stops(
        machine: Machine, entry: dict[str, object], problem: str) -> None:
    install_brew_service(machine)
    (machine.state / "serve-status.json").write_text(json.dumps({"Services": {"svc:grafana": entry}}))
    result = machine.run(step(brew_args(machine)), check=False)
    assert result.returncode != 0
    assert problem in result.stderr and "nothing was changed" in result.stderr
    assert retire_calls(machine) == []
    assert not Path(brew_args(machine).record_dir, "record").exists()


def test_a_restore_that_does_not_reproduce_the_record_fails_loudly(machine: Machine) -> None:
    install_brew_service(machine)
    serve(machine, "svc:grafana", "https 443 http://localhost:3000")
    args = brew_args(machine)
    machine.run(step(args))
    # the host now answers with something else than the recorded entry (a changed tailscaled)
    (machine.state / "serve-status.json").write_text(json.dumps({"Services": {"svc:grafana": {
        "TCP": {"443": {"HTTPS": True}},
        "Web": {"grafana.tail8d86e.ts.net:443": {"Handlers": {"/": {"Proxy": "http://127.0.0.1:3000"}}}}}}}))
    result = machine.run(step(args), "delete", check=False)
    assert result.returncode != 0
    assert "not as recorded" in result.stderr and "delete" in result.stderr


def test_retirement_without_a_serve_entry_leaves_tailscale_alone(machine: Machine) -> None:
    install_brew_service(machine, "transmission-cli")
    args = brew_args(machine, serve=None, formula="transmission-cli")
    machine.run(args.step("transmission-retire"))
    machine.run(args.step("transmission-retire"), "delete")
    assert [c for c in machine.calls() if c.startswith("tailscale")] == []
    assert (machine.state / "brew/services/transmission-cli").read_text() == "started\n"


def test_a_root_service_is_refused_with_the_commands_to_take(machine: Machine) -> None:
    """`sudo brew services start grafana`: the user's brew reads it as none, yet it runs and restarts at boot."""
    install_brew_service(machine, root=True)
    serve(machine, "svc:grafana", "https 443 http://localhost:3000")
    before = machine.files()
    result = machine.run(step(brew_args(machine)), check=False)
    assert result.returncode != 0
    assert "runs as root" in result.stderr and "LaunchDaemons" in result.stderr
    assert "`sudo " in result.stderr and "services stop grafana &&" in result.stderr
    assert retire_calls(machine) == [] and machine.files() == before, "nothing stopped, cleared or recorded"


@pytest.mark.parametrize(("status", "registered", "restore"), [
    ("stopped", True, "start --file"),  # loaded, exited 0: still registered, it would load again at login
    ("error", True, "start --file"),
    ("started", False, "run"),  # `brew services run`: loaded, not registered
    (None, True, None),  # registered, not loaded: its plist would load it at the next login
])
def test_every_brew_state_that_can_run_is_stopped_and_restored_as_it_was(
        machine: Machine, status: str | None, registered: bool, restore: str | None) -> None:
    plist = install_brew_service(machine, status=status, registered=registered)
    args = brew_args(machine, serve=None)
    before = stub_records(machine)
    machine.run(step(args))
    assert retire_calls(machine) == ["brew services stop grafana"]
    assert not plist.exists() and not (machine.state / "brew/services/grafana").exists()
    calls = len(machine.calls())
    machine.run(step(args), "delete")
    restored = retire_calls(machine, calls)
    if restore is None:
        assert restored == [] and plist.read_text() == CUSTOM_PLIST, "the plist is back, not loaded"
        assert not (machine.state / "brew/services/grafana").exists()
    elif restore == "run":
        assert restored == ["brew services run grafana"] and not plist.exists()
    else:
        assert restored == [f"brew services start --file={args.record_dir}/agent.plist grafana"]
        assert plist.read_text() == CUSTOM_PLIST
    if restore != "start --file":
        assert stub_records(machine) == before
    assert not Path(args.record_dir).exists()


def test_a_plain_start_would_lose_the_owners_plist(machine: Machine) -> None:
    """Why the kept plist: the stub regenerates it from the formula, as `brew services start` does."""
    install_brew_service(machine, status=None, registered=False)
    subprocess.run([str(machine.bin / "brew"), "services", "start", "grafana"], check=True, capture_output=True,
                   env={"STUB_STATE": str(machine.state), "HOME": str(machine.home), "PATH": "/usr/bin:/bin"})
    generated = (machine.home / "Library/LaunchAgents/homebrew.mxcl.grafana.plist").read_text()
    assert generated != CUSTOM_PLIST and "EnvironmentVariables" not in generated


# ---- mcquack LaunchAgents ------------------------------------------------------------------------------


def test_an_agent_loaded_in_the_user_domain_is_found_and_restored_there(machine: Machine) -> None:
    """ansible may have loaded the devpi agent into user/<uid> rather than gui/<uid>."""
    plist = load_agent(machine)
    (machine.state / "launchd-domain").mkdir(exist_ok=True)
    (machine.state / "launchd-domain" / LABEL).write_text("user/501")
    args = agent_args(machine, serve=None)
    created = machine.run(args.step("devpi-retire"))
    assert json.loads(created.stdout)["state"] == "loaded user/501"
    assert retire_calls(machine) == [f"launchctl bootout user/501/{LABEL}"]
    assert not plist.exists() and not (machine.state / "launchd" / LABEL).exists()
    calls = len(machine.calls())
    machine.run(args.step("devpi-retire"), "delete")
    assert retire_calls(machine, calls) == [f"launchctl bootstrap user/501 {plist}"]
    assert (machine.state / "launchd-domain" / LABEL).read_text() == "user/501" and plist.exists()



def test_launch_agent_is_booted_out_its_plist_kept_and_both_restored(machine: Machine) -> None:
    plist = load_agent(machine)
    serve(machine, "svc:pypi", "https 443 http://127.0.0.1:3141")
    before, plist_stat = stub_records(machine), plist.stat()
    args = agent_args(machine)
    machine.run(args.step("devpi-retire"))
    assert not plist.exists() and not (machine.state / "launchd" / LABEL).exists()
    assert Path(args.record_dir, "agent.plist").exists()
    assert retire_calls(machine) == [f"launchctl bootout gui/501/{LABEL}", "tailscale serve clear svc:pypi"]
    calls = len(machine.calls())
    machine.run(args.step("devpi-retire"))
    assert retire_calls(machine, calls) == []
    machine.run(args.step("devpi-retire"), "delete")
    assert stub_records(machine) == before, "plist, launchd and serve state as before"
    assert plist.stat().st_mtime_ns == plist_stat.st_mtime_ns, "the very file was put back"


def test_an_unloaded_agent_is_not_loaded_on_rollback(machine: Machine) -> None:
    plist = load_agent(machine)
    (machine.state / "launchd" / LABEL).unlink()
    args = agent_args(machine, serve=None)
    machine.run(args.step("devpi-retire"))
    assert not plist.exists()
    result = machine.run(args.step("devpi-retire"), "delete")
    assert plist.exists() and not (machine.state / "launchd" / LABEL).exists()
    assert "was unloaded when it was retired: not loading it" in result.stderr


def test_an_agent_that_is_already_gone_is_recorded_and_left_alone(machine: Machine) -> None:
    args = agent_args(machine, serve=None)
    created = machine.run(args.step("devpi-retire"))
    assert json.loads(created.stdout)["state"] == "absent" and retire_calls(machine) == []
    deleted = machine.run(args.step("devpi-retire"), "delete")
    assert "was absent when it was retired: not loading it" in deleted.stderr and retire_calls(machine) == []


def test_a_failing_bootout_keeps_the_plist_and_the_next_run_retires(machine: Machine) -> None:
    plist = load_agent(machine)
    args = agent_args(machine, serve=None)
    machine.fail("launchctl-bootout")
    failed = machine.run(args.step("devpi-retire"), check=False)
    assert failed.returncode != 0 and f"launchctl bootout gui/501/{LABEL} failed" in failed.stderr
    assert plist.exists(), "nothing moved while the agent still runs"
    machine.heal("launchctl-bootout")
    machine.run(args.step("devpi-retire"))
    assert not plist.exists() and not (machine.state / "launchd" / LABEL).exists()
    machine.run(args.step("devpi-retire"), "delete")
    assert plist.exists() and (machine.state / "launchd" / LABEL).exists()


def test_a_plist_that_came_back_different_is_not_overwritten(machine: Machine) -> None:
    plist = load_agent(machine)
    args = agent_args(machine, serve=None)
    machine.run(args.step("devpi-retire"))
    plist.write_text("<plist>another</plist>\n")
    result = machine.run(args.step("devpi-retire"), check=False)
    assert result.returncode != 0 and "came back and differs" in result.stderr
    assert plist.read_text() == "<plist>another</plist>\n"


# ---- the precondition hook and the rendering -----------------------------------------------------------


def test_the_rendered_step_passes_shellcheck(machine: Machine, tmp_path: Path) -> None:
    paths = []
    for name, args in (("brew", brew_args(machine)), ("agent", agent_args(machine)),
                       ("plain", brew_args(machine, serve=None))):
        path = tmp_path / f"{name}.sh"
        path.write_text(step(args).render())
        paths.append(str(path))
    result = subprocess.run([str(SHELLCHECK), "--severity=style", *paths], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"service": BrewService("Grafana Server", "/opt/homebrew/bin/brew")}, "not a Homebrew formula name"),
        ({"service": BrewService("grafana", "brew")}, "must be an absolute path"),
        ({"service": LegacyLaunchAgent("a/b")}, "not a launchd label"),
        ({"serve_service": "grafana"}, "not a Tailscale Service name"),
        ({"state_root": "~/state"}, "state_root '~/state' must be an absolute path"),
    ],
)
def test_bad_arguments_are_refused_with_the_argument_named(machine: Machine, changes: dict[str, object],
                                                           message: str) -> None:
    with pytest.raises(ValueError, match=message):
        brew_args(machine, **changes)


# ---- hangs: a call that does not answer stops the step; it is never read as "stopped" or "no entry" -------


def run_quick(machine: Machine, args: LegacyServiceRetirementArgs,
              action: str = "create") -> subprocess.CompletedProcess[str]:
    """The step with its call bounds at 2 s (the real ones are minutes), so a hang ends quickly here."""
    started = time.monotonic()
    result = machine.run_text(quick(step(args).render()), action, check=False)
    assert time.monotonic() - started < 15
    return result


@pytest.mark.parametrize(("key", "kind", "recorded"), [
    ("brew-info", "brew", False),  # brew services info: the state to record
    ("tailscale-status", "brew", False),  # tailscale serve status: the entry to record
    ("launchctl-print", "agent", False),  # whether the agent is loaded
    ("brew-stop", "brew", True),  # brew services stop, after the record was written
    ("tailscale-clear", "agent", True),  # tailscale serve clear, after the agent went
])
def test_a_hang_stops_the_retirement_and_the_next_run_completes(machine: Machine, key: str, kind: str,
                                                                recorded: bool) -> None:
    if kind == "brew":
        install_brew_service(machine)
        serve(machine, "svc:grafana", "https 443 http://localhost:3000")
        args = brew_args(machine)
    else:
        load_agent(machine)
        serve(machine, "svc:pypi", "https 443 http://127.0.0.1:3141")
        args = agent_args(machine)
    before = stub_records(machine)
    machine.fail(key, how="hang")
    result = run_quick(machine, args)
    assert result.returncode != 0
    assert "did not finish within 2s: killed" in result.stderr, result.stderr
    record = Path(args.record_dir, "record")
    assert record.exists() == recorded, "a record only of what was read to the end"
    if not recorded:
        faults = str(machine.state / "hang")
        assert retire_calls(machine) == []
        assert {path: value for path, value in stub_records(machine).items() if not path.startswith(faults)} == before
    assert not list((machine.root / "tmp").iterdir()), "no scratch file stays"
    machine.heal(key, how="hang")
    created = machine.run(step(args))
    assert json.loads(created.stdout)["state"] == ("started true true" if kind == "brew" else "loaded gui/501")
    assert json.loads(created.stdout)["serveEntry"] is not None
    machine.run(step(args), "delete")
    assert stub_records(machine) == before

