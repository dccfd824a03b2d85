"""ZotRegistry's steps and agent script, rendered exactly as the program renders them, on the fake machine."""

from __future__ import annotations

import dataclasses
import json
import plistlib
from pathlib import Path

import pytest

from phases.p0_foundation import ZOT_AGENT
from tests.host.conftest import Machine

SECRET = "dckr_pat_test-token-0123456789"


def create_zot(machine: Machine, **changes: object) -> None:
    args = machine.zot_args(**changes)
    machine.run(args.config_step("zot-config"))
    machine.run(args.agent().step("zot-agent-install"))
    machine.run(args.ready_step("zot-ready"))
    machine.run(args.serve().step("zot-serve-entry"))
    machine.run(args.metrics_script_step("zot-metrics-script"))
    machine.run(args.metrics_agent().step("zot-metrics-agent-install"))


def delete_zot(machine: Machine) -> None:
    args = machine.zot_args()
    # Pulumi deletes dependants first: reverse order of creation.
    machine.run(args.metrics_agent().step("zot-metrics-agent-install"), "delete")
    machine.run(args.metrics_script_step("zot-metrics-script"), "delete")
    machine.run(args.serve().step("zot-serve-entry"), "delete")
    machine.run(args.ready_step("zot-ready"), "delete")
    machine.run(args.agent().step("zot-agent-install"), "delete")
    machine.run(args.config_step("zot-config"), "delete")


def test_first_run_installs_zot_and_its_agents(machine: Machine) -> None:
    create_zot(machine)
    args = machine.zot_args()
    config = json.loads(Path(args.config_path).read_text())
    assert config == args.config()
    plist = plistlib.loads(Path(args.agent().plist_path).read_bytes())
    assert plist["ProgramArguments"] == [args.binary, "serve", args.config_path]
    assert (machine.state / "launchd" / ZOT_AGENT.label).exists()
    assert (machine.state / "launchd" / "mcquack.eblume.zot-metrics").exists()
    assert (machine.state / "serve" / "svc:registry").read_text().split() == ["https", "443", "http://localhost:5050"]
    assert Path(args.metrics_script_path).stat().st_mode & 0o777 == 0o755
    assert machine.restarts() == []  # first start is the bootstrap, not a restart
    assert not Path(args.credentials_path).exists()


def test_second_run_changes_nothing(machine: Machine) -> None:
    create_zot(machine)
    before, calls = machine.files(), len(machine.calls())
    create_zot(machine)
    assert machine.mutating_calls(since=calls) == []
    assert machine.files() == before


def test_changed_config_restarts_zot_exactly_once(machine: Machine) -> None:
    create_zot(machine)
    calls = len(machine.calls())
    create_zot(machine, log_level="debug")
    assert json.loads(Path(machine.zot_args().config_path).read_text())["log"]["level"] == "debug"
    assert machine.restarts() == [ZOT_AGENT.label]
    assert machine.mutating_calls(since=calls) == [f"launchctl kickstart -k gui/501/{ZOT_AGENT.label}"]


def test_rejected_config_leaves_the_old_one_and_restarts_nothing(machine: Machine) -> None:
    create_zot(machine)
    args = machine.zot_args()
    before = Path(args.config_path).read_bytes()
    machine.fail("zot-verify")
    result = machine.run(machine.zot_args(log_level="debug").config_step("zot-config"), check=False)
    assert result.returncode != 0
    assert "zot verify" in result.stderr and "left as it was" in result.stderr
    assert Path(args.config_path).read_bytes() == before
    assert sorted(p.name for p in Path(args.config_path).parent.iterdir()) == ["config.json"]  # no temp left
    assert machine.restarts() == []


def test_missing_or_foreign_binary_is_refused_with_build_instructions(machine: Machine) -> None:
    result = machine.run(machine.zot_args(binary=str(machine.root / "nope")).config_step("zot-config"), check=False)
    assert result.returncode != 0
    assert "missing" in result.stderr and "make binary" in result.stderr
    (machine.state / "zot-arch").write_text("x86_64")
    result = machine.run(machine.zot_args().config_step("zot-config"), check=False)
    assert result.returncode != 0 and "not an arm64 binary" in result.stderr and "make binary" in result.stderr
    assert not Path(machine.zot_args().config_path).exists()


def test_docker_hub_credentials_are_written_0600_from_stdin_only(machine: Machine) -> None:
    args = machine.zot_args(docker_hub_user="eblume", docker_hub_token=object())
    step = args.config_step("zot-config")
    assert step.secrets == ("CREDENTIALS_JSON",)
    assert SECRET not in step.render()  # the reviewer's rendering carries a placeholder
    credentials = args.credentials_json(args.docker_hub_host, "eblume", SECRET)
    machine.run(step, secrets={"CREDENTIALS_JSON": credentials})
    path = Path(args.credentials_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {"registry-1.docker.io": {"username": "eblume", "password": SECRET}}
    assert json.loads(Path(args.config_path).read_text())["extensions"]["sync"]["credentialsFile"] == str(path)


def test_failed_plist_lint_leaves_no_plist_and_loads_nothing(machine: Machine) -> None:
    args = machine.zot_args()
    machine.run(args.config_step("zot-config"))
    machine.fail("plutil-lint")
    result = machine.run(args.agent().step("zot-agent-install"), check=False)
    assert result.returncode != 0 and "plutil -lint rejected" in result.stderr
    launch_agents = Path(args.agent().plist_path).parent
    assert list(launch_agents.iterdir()) == []
    assert machine.mutating_calls() == []


def test_failed_bootstrap_is_retried_by_the_next_run(machine: Machine) -> None:
    args = machine.zot_args()
    machine.run(args.config_step("zot-config"))
    machine.fail("launchctl-bootstrap")
    agent = dataclasses.replace(args.agent(), retry_delay_seconds=0)
    result = machine.run(agent.step("zot-agent-install"), check=False)
    assert result.returncode != 0 and "bootstrap" in result.stderr
    machine.heal("launchctl-bootstrap")
    machine.run(args.agent().step("zot-agent-install"))
    assert (machine.state / "launchd" / ZOT_AGENT.label).exists()


def test_readiness_wait_fails_clearly_when_zot_never_answers(machine: Machine) -> None:
    result = machine.run(machine.zot_args().ready_step("zot-ready"), check=False)
    assert result.returncode != 0
    assert "did not answer on http://localhost:5050/v2/" in result.stderr and "mcquack.zot.err.log" in result.stderr


def test_serve_failure_is_reported(machine: Machine) -> None:
    machine.fail("tailscale-set")
    result = machine.run(machine.zot_args().serve().step("zot-serve-entry"), check=False)
    assert result.returncode != 0 and "tagged node" in result.stderr


def test_metrics_agent_script_writes_zot_up(machine: Machine) -> None:
    args = machine.zot_args()
    textfile = machine.home / "textfile" / "zot.prom"
    machine.run_text(args.metrics_script(), "agent")
    assert "zot_up 0" in textfile.read_text()
    create_zot(machine)
    machine.run_text(Path(args.metrics_script_path).read_text(), "agent")  # the installed copy
    assert "zot_up 1" in textfile.read_text() and "# TYPE zot_up gauge" in textfile.read_text()
    assert [p.name for p in textfile.parent.iterdir()] == ["zot.prom"]


def test_delete_after_create_restores_the_machine(machine: Machine) -> None:
    before = machine.tree()
    create_zot(machine)
    delete_zot(machine)
    # Log directories stay (they are shared: ~/Library/Logs, /opt/homebrew/var/log).
    after = {p for p in machine.tree() if not p.startswith(("home/Library", "home/log"))}
    assert after == before
    assert not (machine.state / "launchd" / ZOT_AGENT.label).exists()


# ---- one owner of zot's restart: the agent step -------------------------------------------------------


def restart_steps(machine: Machine, **changes: object) -> None:
    """The steps that restart zot and wait for it: config, agent, ready."""
    args = machine.zot_args(**changes)
    machine.run(args.config_step("zot-config"))
    machine.run(args.agent().step("zot-agent-install"))
    machine.run(args.ready_step("zot-ready"))


def zot_launchctl_calls(machine: Machine, since: int) -> list[str]:
    return [call.split(" gui/")[0] for call in machine.mutating_calls(since=since)]


def test_config_step_restarts_nothing_and_leaves_the_marker(machine: Machine) -> None:
    restart_steps(machine)
    args = machine.zot_args(log_level="debug")
    calls = len(machine.calls())
    machine.run(args.config_step("zot-config"))
    assert machine.mutating_calls(since=calls) == []
    marker = Path(f"{args.config_path}.blumeops-restart-pending")
    assert marker.exists() and str(marker) in args.agent().restart_markers
    machine.run(args.agent().step("zot-agent-install"))
    assert not marker.exists()
    assert machine.mutating_calls(since=calls) == [f"launchctl kickstart -k gui/501/{ZOT_AGENT.label}"]


def test_changed_config_and_plist_restart_zot_exactly_once(machine: Machine) -> None:
    restart_steps(machine)
    calls = len(machine.calls())
    restart_steps(machine, log_level="debug", log_dir=str(machine.home / "Library/Logs/zot"))
    assert json.loads(Path(machine.zot_args().config_path).read_text())["log"]["level"] == "debug"
    # one reload (the plist changed, so launchd must read it again) and no kickstart besides
    assert zot_launchctl_calls(machine, calls) == ["launchctl bootout", "launchctl bootstrap"]
    assert machine.restarts() == []
    calls = len(machine.calls())
    restart_steps(machine, log_level="debug", log_dir=str(machine.home / "Library/Logs/zot"))
    assert machine.mutating_calls(since=calls) == []


def test_failed_kickstart_is_retried_by_the_next_run(machine: Machine) -> None:
    restart_steps(machine)
    args = machine.zot_args(log_level="debug")
    machine.run(args.config_step("zot-config"))
    machine.fail("launchctl-kickstart")
    result = machine.run(args.agent().step("zot-agent-install"), check=False)
    assert result.returncode != 0 and "kickstart" in result.stderr and "next run retries" in result.stderr
    machine.heal("launchctl-kickstart")
    # pulumi re-runs the failed update with the same stdin: the files already hold the new content
    calls = len(machine.calls())
    machine.run(args.config_step("zot-config"))
    machine.run(args.agent().step("zot-agent-install"))
    assert machine.mutating_calls(since=calls) == [f"launchctl kickstart -k gui/501/{ZOT_AGENT.label}"]
    assert machine.restarts() == [ZOT_AGENT.label]
    calls = len(machine.calls())
    machine.run(args.config_step("zot-config"))
    machine.run(args.agent().step("zot-agent-install"))
    assert machine.mutating_calls(since=calls) == []


@pytest.mark.parametrize(("fault", "retry"), [
    # bootout failed: the old job still runs the old plist, so the retry is a full reload
    ("launchctl-bootout", ["launchctl bootout", "launchctl bootstrap"]),
    # bootstrap failed after the bootout: the job is not loaded, the retry loads it
    ("launchctl-bootstrap", ["launchctl bootstrap"]),
])
def test_failed_reload_of_a_changed_plist_is_retried_by_the_next_run(machine: Machine, fault: str,
                                                                     retry: list[str]) -> None:
    restart_steps(machine)
    args = machine.zot_args(log_dir=str(machine.home / "Library/Logs/zot"))
    agent = dataclasses.replace(args.agent(), retry_delay_seconds=0)
    machine.fail(fault)
    result = machine.run(agent.step("zot-agent-install"), check=False)
    assert result.returncode != 0 and fault.split("-")[1] in result.stderr
    assert Path(agent.plist_path).read_text() == agent.plist() + "\n"  # the new plist is in place
    machine.heal(fault)
    calls = len(machine.calls())
    machine.run(agent.step("zot-agent-install"))
    assert zot_launchctl_calls(machine, calls) == retry
    assert plistlib.loads((machine.state / "launchd" / ZOT_AGENT.label).read_bytes())["StandardOutPath"] == \
        args.out_log
    calls = len(machine.calls())
    machine.run(agent.step("zot-agent-install"))
    assert machine.mutating_calls(since=calls) == []
    assert not Path(f"{agent.plist_path}.blumeops-restart-pending").exists()


def test_credentials_change_alone_restarts_zot_once_and_reruns_the_readiness_wait(machine: Machine) -> None:
    args = machine.zot_args(docker_hub_user="eblume", docker_hub_token=object())
    old = args.credentials_json(args.docker_hub_host, "eblume", SECRET)
    new = args.credentials_json(args.docker_hub_host, "eblume", SECRET + "-rotated")

    def run_all(credentials: str) -> None:
        signal = args.restart_signal(credentials)
        machine.run(args.config_step("zot-config"), secrets={"CREDENTIALS_JSON": credentials})
        machine.run(args.agent(signal).step("zot-agent-install"))
        machine.run(args.ready_step("zot-ready", signal))

    run_all(old)
    calls = len(machine.calls())
    run_all(new)
    assert json.loads(Path(args.credentials_path).read_text())["registry-1.docker.io"]["password"].endswith("-rotated")
    assert machine.mutating_calls(since=calls) == [f"launchctl kickstart -k gui/501/{ZOT_AGENT.label}"]
    # both the agent step and the ready step change with the credentials (Pulumi re-runs a step whose stdin
    # changed), while the config step's rendering does not carry the secret unless given it
    old_signal, new_signal = args.restart_signal(old), args.restart_signal(new)
    assert old_signal != new_signal and SECRET not in old_signal
    for render in (lambda s: args.agent(s).step("a").render(), lambda s: args.ready_step("r", s).render()):
        assert render(old_signal) != render(new_signal)


def test_ready_step_follows_every_restart_signal(machine: Machine) -> None:
    base = machine.zot_args()
    renderings = {
        "base": base.ready_step("zot-ready").render(),
        "config": machine.zot_args(log_level="debug").ready_step("zot-ready").render(),
        "plist": machine.zot_args(log_dir=str(machine.home / "x")).ready_step("zot-ready").render(),
        "credentials": base.ready_step("zot-ready", base.restart_signal("{}")).render(),
    }
    assert len(set(renderings.values())) == len(renderings)
