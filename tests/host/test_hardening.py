"""The host steps under the faults a careless operator and a flaky machine produce: a tool missing or hanging,
a transient error, a failed sub-step, files the program did not write, JSON holding null."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from components.host.minikube import MANAGED_MARK
from components.host.script import library_for
from tests.host.conftest import BASH, UPSTREAMS, Machine
from tests.host.test_minikube_scripts import create_cluster, write_profile
from tests.host.test_zot_scripts import create_zot, delete_zot

QUICK_BOUNDS = "readonly BLUMEOPS_QUICK=2 BLUMEOPS_CHANGE=2 BLUMEOPS_LONG=2"


def quick(text: str) -> str:
    """A rendering whose call bounds are 2 s (the real ones are minutes), so a hang ends quickly here."""
    bounds = re.compile(r"^readonly BLUMEOPS_QUICK=\d+ BLUMEOPS_CHANGE=\d+ BLUMEOPS_LONG=\d+$", re.MULTILINE)
    assert bounds.search(text), "the bounds moved: update quick()"
    return bounds.sub(QUICK_BOUNDS, text)


# ---- die, missing tools, hangs ------------------------------------------------------------------------


def test_a_missing_tailscale_is_one_clear_error(machine: Machine) -> None:
    (machine.bin / "tailscale").unlink()
    result = machine.run(machine.zot_args().serve().step("zot-serve-entry"), check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "tailscale is missing" in errors[0] or "is missing or not executable" in errors[0]
    assert str(machine.bin / "tailscale") in errors[0]


def test_die_inside_a_command_substitution_stops_the_step(machine: Machine) -> None:
    """serve_status_file dies inside $(...): the step stops there, with that one error, exit 1."""
    machine.fail("tailscale-status")
    result = machine.run(machine.zot_args().serve().step("zot-serve-entry"), check=False)
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if "ERROR" in line] == [
        "blumeops[zot-serve-entry]: ERROR: `tailscale serve status --json` failed: is Tailscale running and "
        "logged in on this host?"]
    assert machine.mutating_calls() == []


def test_a_missing_plutil_is_reported_as_missing(machine: Machine) -> None:
    (machine.bin / "plutil").unlink()
    result = machine.run(machine.zot_args().agent().step("zot-agent-install"), check=False)
    assert result.returncode != 0
    assert "plutil is missing or not executable" in result.stderr
    assert "rejected" not in result.stderr
    assert not Path(machine.zot_args().agent().plist_path).exists()


@pytest.mark.parametrize(("key", "step"), [
    ("tailscale-status", lambda m: m.zot_args().serve().step("zot-serve-entry")),
    ("launchctl-print", lambda m: m.zot_args().agent().step("zot-agent-install")),
    ("docker-info", lambda m: m.cluster_args().cluster_step("minikube-cluster")),
])
def test_a_hanging_tool_is_killed_at_its_bound(machine: Machine, key: str, step: object) -> None:
    if key == "launchctl-print":
        machine.run(machine.zot_args().config_step("zot-config"))
    machine.fail(key, how="hang")
    rendered = step(machine).render()  # type: ignore[operator]
    started = time.monotonic()
    result = machine.run_text(quick(rendered), "create", check=False)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "did not finish within 2s: killed" in result.stderr
    assert elapsed < 15
    assert not list((machine.root / "tmp").iterdir())  # the scratch directory went with the step


def test_bounded_passes_the_status_and_never_the_steps_stdin(machine: Machine) -> None:
    """A bounded command reads /dev/null, not the rest of the script (bash -s reads the script from stdin)."""
    (machine.bin / "reader").write_text("#!/bin/bash\ncat\nexit 7\n")
    (machine.bin / "reader").chmod(0o755)
    text = "readonly STEP=bounded-test\n" + library_for("bounded") + f"""
status=0
bounded 5 {machine.bin}/reader || status=$?
echo "status $status"
echo "still reading the script"
"""
    result = machine.run_text(text, "create")
    assert result.stdout == "status 7\nstill reading the script\n"


@pytest.mark.slow  # keeps both cores busy for a few seconds
def test_a_tool_that_exits_at_once_never_waits_out_the_bound_on_a_loaded_machine(machine: Machine) -> None:
    """The step's shell stops the watchdog as soon as the tool has exited. A TERM to a subshell that had only just
    forked was lost, and the step then waited the whole bound: on a loaded machine every thirty or so quick calls
    (one in 13 to 39 here, 2026-12-02). Two busy loops load the machine while 300 calls of `false` run under a
    20 s bound; together they must take less than one bound."""
    text = "readonly STEP=bounded-test\n" + library_for("bounded") + """
for i in $(seq 300); do
  bounded 20 false || true
done
echo done
"""
    busy = [subprocess.Popen(["bash", "-c", "while :; do :; done"]) for _ in range(2)]
    try:
        started = time.monotonic()
        result = machine.run_text(text, "create")
        elapsed = time.monotonic() - started
    finally:
        for process in busy:
            process.kill()
            process.wait()
    assert result.stdout == "done\n" and elapsed < 20, f"300 quick calls took {elapsed:.1f} s"


def test_bounded_tells_a_timeout_from_a_failure_every_time(machine: Machine) -> None:
    """Repeated, so that a race between the watchdog and the step's shell would show: a quick command is
    never reported as timed out, a hanging one always is (and stops the step)."""
    lib = "readonly STEP=bounded-test\n" + library_for("bounded")
    quick_runs = lib + """
for i in $(seq 1 30); do
  status=0
  bounded 5 false || status=$?
  printf 'quick %s\\n' "$status"
done
"""
    assert machine.run_text(quick_runs, "create").stdout.splitlines() == ["quick 1"] * 30
    for _ in range(4):
        result = machine.run_text(lib + "bounded 1 sleep 30\necho survived\n", "create", check=False)
        assert result.returncode == 1 and "survived" not in result.stdout
        assert "`sleep 30` did not finish within 1s: killed" in result.stderr


def _left(marker: str) -> list[str]:
    done = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return done.stdout.split()


@pytest.mark.parametrize("hang", ["sleep {m} & wait", "bash -c 'sleep {m}'", "sleep {m} | cat"])
def test_a_hung_tool_that_forked_is_killed_with_every_process_it_started(machine: Machine, hang: str) -> None:
    """The bound kills the tool's whole process group: a child it forked (holding the step's stdout, so the SSH
    session, open) goes too, whether the call is plain or inside $(...)."""
    marker = f"{31 + len(hang) / 100:.2f}"  # a sleep of its own, to find what is left
    tool = machine.bin / "forker"
    tool.write_text("#!/bin/bash\n" + hang.format(m=marker) + "\n")
    tool.chmod(0o755)
    lib = "readonly STEP=bounded-test\n" + library_for("bounded")
    for form in (f"bounded 1 {tool}\n", f"answer=$(bounded 1 {tool})\n"):
        started = time.monotonic()
        result = machine.run_text(lib + form + "echo survived\n", "create", check=False)
        elapsed = time.monotonic() - started
        assert result.returncode == 1 and "survived" not in result.stdout, form
        assert "did not finish within 1s: killed" in result.stderr
        assert elapsed < 8, f"the step took {elapsed:.1f}s: a forked child kept its output open"
        assert _left(f"sleep {marker}") == [], "a process the tool started outlived the bound"


@pytest.mark.slow  # each case waits out the bound's grace for what the tool left
@pytest.mark.parametrize(("leave", "status"), [
    ("sleep {m} &", 0),
    ("sleep {m} &", 5),
    ("(trap '' TERM; exec sleep {m}) &", 0),  # a child deaf to TERM: KILL after the grace
    ("bash -c 'sleep {m} & sleep {m}' &", 0),  # a grandchild too
])
def test_a_tool_that_exits_leaving_a_child_behind_takes_it_along(machine: Machine, leave: str,
                                                                 status: int) -> None:
    """A tool whose leader exits (whatever its status) while a child it started runs on: the call returns at
    once with the leader's status, and nothing of the tool's process group outlives it. Left running, the
    child would hold the step's stdout (the SSH session) or the pipe of a $(...) open until it ended."""
    # a sleep of its own, to find what is left (the pid: another run of this test may be going on beside it)
    marker = f"36{len(leave):02d}.{os.getpid()}{status}"
    tool = machine.bin / "leaver"
    tool.write_text("#!/bin/bash\n" + leave.format(m=marker) + f"\necho answer\nexit {status}\n")
    tool.chmod(0o755)
    lib = "readonly STEP=bounded-test\n" + library_for("bounded")
    forms = {
        f"code=0; bounded 30 {tool} || code=$?\n": "answer\n",
        f"code=0; out=$(bounded 30 {tool}) || code=$?\necho \"got $out\"\n": "got answer\n",
    }
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(machine.root / "tmp"), "LANG": "C"}
    (machine.root / "tmp").mkdir(exist_ok=True)
    try:
        for form, output in forms.items():
            started = time.monotonic()
            try:  # a bound of its own: a child holding the output open would keep machine.run_text for minutes
                result = subprocess.run([BASH, "-euo", "pipefail", "-s", "--", "create"],
                                        input=lib + form + 'echo "status $code"\n', text=True, capture_output=True,
                                        env=env, timeout=10, check=False)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{form!r}: the step did not end within 10 s: a child the tool left kept its output open")
            elapsed = time.monotonic() - started
            assert result.returncode == 0, result.stderr
            assert result.stdout == output + f"status {status}\n", form
            assert elapsed < 5, f"the step took {elapsed:.1f}s: a child the tool left kept its output open"
            assert _left(f"sleep {marker}") == [], "a process the tool started outlived the call"
            assert not list((machine.root / "tmp").iterdir()), "no scratch left"
    finally:
        for pid in _left(f"sleep {marker}"):  # what a failed run left: by pid, nothing else
            os.kill(int(pid), signal.SIGKILL)


def test_a_step_killed_from_outside_takes_its_running_tool_along(machine: Machine) -> None:
    marker = "33.07"
    tool = machine.bin / "forker"
    tool.write_text(f"#!/bin/bash\nsleep {marker} & wait\n")
    tool.chmod(0o755)
    script = machine.root / "killed.sh"
    script.write_text("readonly STEP=bounded-test\n" + library_for("bounded") + f"bounded 60 {tool}\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(machine.root / "tmp"), "LANG": "C"}
    (machine.root / "tmp").mkdir(exist_ok=True)
    step = subprocess.Popen(["bash", "-euo", "pipefail", str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not _left(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _left(f"sleep {marker}"), "the tool did not start"
    step.send_signal(signal.SIGTERM)
    step.communicate(timeout=10)
    time.sleep(0.2)
    assert _left(f"sleep {marker}") == [], "the tool's process group outlived the step"
    assert not list((machine.root / "tmp").iterdir()), "no scratch left"


# ---- transient errors never mutate --------------------------------------------------------------------


def test_a_transient_status_failure_does_not_start_a_running_cluster(machine: Machine) -> None:
    create_cluster(machine)
    calls = len(machine.calls())
    machine.fail("minikube-status", how="once")
    machine.run(machine.cluster_args(status_retry_delay_seconds=0).cluster_step("minikube-cluster"))
    assert machine.mutating_calls(since=calls) == []
    assert len([c for c in machine.calls()[calls:] if c.startswith("minikube status")]) == 2


def test_a_status_that_never_answers_stops_without_a_start(machine: Machine) -> None:
    write_profile(machine, status="Running")
    machine.fail("minikube-status")
    result = machine.run(machine.cluster_args(status_retry_delay_seconds=0).cluster_step("minikube-cluster"),
                         check=False)
    assert result.returncode != 0 and "'Unknown'" in result.stderr and "starts nothing" in result.stderr
    assert [c for c in machine.mutating_calls() if "start" in c or "delete" in c] == []


@pytest.mark.parametrize("state", ["Paused", "Starting", "Error"])
def test_only_a_stopped_cluster_is_started(machine: Machine, state: str) -> None:
    write_profile(machine, status=state)
    result = machine.run(machine.cluster_args().cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0 and f"is '{state}'" in result.stderr
    assert [c for c in machine.calls() if c.startswith("minikube start")] == []


# ---- failed sub-steps are retried ---------------------------------------------------------------------


def test_a_new_upstream_on_a_running_cluster_gets_its_node_folder_first(machine: Machine) -> None:
    create_cluster(machine)
    more = (*UPSTREAMS, type(UPSTREAMS[0])("registry.k8s.io", "https://registry.k8s.io"))
    calls = len(machine.calls())
    machine.run(machine.cluster_args(upstreams=more).cluster_step("minikube-cluster"))
    mutations = machine.mutating_calls(since=calls)
    assert mutations[0] == "minikube -p minikube ssh -- sudo mkdir -p /etc/containerd/certs.d/registry.k8s.io"
    assert mutations[1].startswith("minikube -p minikube cp ") and len(mutations) == 2
    assert (machine.state / "node/etc/containerd/certs.d/registry.k8s.io/hosts.toml").exists()


def test_a_failed_copy_into_the_node_is_retried_by_the_next_run(machine: Machine) -> None:
    create_cluster(machine)
    from tests.host.test_faults import MOVED_DOCKER_HUB
    moved = machine.cluster_args(upstreams=MOVED_DOCKER_HUB)
    machine.fail("minikube-cp")
    result = machine.run(moved.cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0 and "next run retries" in result.stderr
    machine.heal("minikube-cp")
    node = machine.state / "node/etc/containerd/certs.d/docker.io/hosts.toml"
    assert "registry-1.docker.io" in node.read_text()
    # the same stdin again (pulumi re-runs a failed update): the file sync already holds the new file
    machine.run(moved.cluster_step("minikube-cluster"))
    assert "mirror.gcr.io" in node.read_text()
    calls = len(machine.calls())
    machine.run(moved.cluster_step("minikube-cluster"))
    assert machine.mutating_calls(since=calls) == []


# ---- files the program did not write ------------------------------------------------------------------


def test_a_pre_existing_zot_install_is_backed_up_and_restored_on_delete(machine: Machine) -> None:
    args = machine.zot_args(docker_hub_user="eblume", docker_hub_token=object())
    plain = machine.zot_args()
    theirs = {
        Path(args.config_path): '{"distSpecVersion": "1.0.0", "theirs": true}\n',
        Path(args.credentials_path): '{"registry-1.docker.io": {"username": "old", "password": "kept"}}\n',
        Path(args.agent().plist_path): "<?xml version='1.0'?><plist><dict/></plist>\n",
    }
    for path, text in theirs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (machine.state / "launchd").mkdir()
    (machine.state / "launchd" / plain.agent_name.label).write_text("their job")  # their zot is loaded
    create_zot(machine)
    assert json.loads(Path(args.config_path).read_text()) == plain.config()
    assert Path(args.agent().plist_path).read_text() == plain.agent().plist() + "\n"
    assert Path(args.credentials_path).read_text() == theirs[Path(args.credentials_path)]  # not ours: kept
    delete_zot(machine)
    for path, text in theirs.items():
        assert path.read_text() == text, path
    assert (machine.state / "launchd" / plain.agent_name.label).exists()  # their job loaded again
    # a second delete leaves their files alone
    delete_zot(machine)
    for path, text in theirs.items():
        assert path.read_text() == text, path


def test_their_credentials_are_backed_up_when_the_program_writes_its_own(machine: Machine) -> None:
    args = machine.zot_args(docker_hub_user="eblume", docker_hub_token=object())
    path = Path(args.credentials_path)
    path.parent.mkdir(parents=True)
    path.write_text("theirs\n")
    step = args.config_step("zot-config")
    machine.run(step, secrets={"CREDENTIALS_JSON": '{"x": 1}'})
    assert path.read_text() == '{"x": 1}\n'
    machine.run(step, "delete", secrets={"CREDENTIALS_JSON": '{"x": 1}'})
    assert path.read_text() == "theirs\n"


def test_an_unmarked_hosts_toml_is_the_operators_and_is_kept(machine: Machine) -> None:
    args = machine.cluster_args()
    theirs = Path(args.mirror_path("ghcr.io"))
    theirs.parent.mkdir(parents=True)
    theirs.write_text('server = "https://ghcr.io"\n')
    empty = Path(args.mirror_path("quay.io"))
    empty.parent.mkdir(parents=True)
    empty.write_text("")  # nobody's: the program may write it
    result = machine.run(args.cluster_step("minikube-cluster"))
    assert theirs.read_text() == 'server = "https://ghcr.io"\n'
    assert "kept" in result.stderr and "ghcr.io" in result.stderr
    assert empty.read_text().startswith(MANAGED_MARK)
    machine.run(args.cluster_step("minikube-cluster"), "delete")
    assert theirs.read_text() == 'server = "https://ghcr.io"\n'
    assert empty.read_text() == ""  # what was there before the program wrote it


# ---- JSON holding null ---------------------------------------------------------------------------------


def test_a_profile_config_holding_null_is_read(machine: Machine) -> None:
    write_profile(machine, status="Running")
    config = machine.home / ".minikube/profiles/minikube/config.json"
    document = json.loads(config.read_text())
    document.update({"Mount": None, "KubernetesConfig": {**document["KubernetesConfig"], "ExtraOptions": None,
                                                         "ShouldLoadCachedImages": None}, "Note": "null"})
    config.write_text(json.dumps(document, indent=2))
    machine.run(machine.cluster_args().cluster_step("minikube-cluster"))
    assert [c for c in machine.calls() if c.startswith("minikube start")] == []


def test_a_null_driver_stops_the_step(machine: Machine) -> None:
    write_profile(machine, status="Running")
    config = machine.home / ".minikube/profiles/minikube/config.json"
    config.write_text(config.read_text().replace('"docker"', "null"))
    result = machine.run(machine.cluster_args(allow_replace=True).cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0 and "cannot read Driver" in result.stderr
    assert machine.mutating_calls() == []


def test_a_serve_status_holding_null_is_read(machine: Machine) -> None:
    create_zot(machine)
    tailscale = machine.bin / "tailscale"
    real = tailscale.read_text()
    # the real status carries nulls (e.g. "AllowFunnel": null) beside the entries
    tailscale.write_text(real.replace("""  ((first)) || printf '}'
  printf '}\\n'""", """  ((first)) || printf '}'
  printf ', "AllowFunnel": null, "Foreground": null}\\n'"""))
    status = machine.run_text("readonly STEP=t\n" + library_for("serve_status_file") + f"""
TAILSCALE={tailscale}
cat "$(serve_status_file)"
""", "create").stdout
    assert '"AllowFunnel": null' in status
    calls = len(machine.calls())
    machine.run(machine.zot_args().serve().step("zot-serve-entry"))
    assert machine.mutating_calls(since=calls) == []
    machine.run(machine.zot_args().serve().step("zot-serve-entry"), "delete")
    assert not (machine.state / "serve/svc:registry").exists()


def test_a_cut_off_serve_status_changes_nothing(machine: Machine) -> None:
    create_zot(machine)
    tailscale = machine.bin / "tailscale"
    cut_off = "status)\n  stub_fail status\n  printf '{\"Services\": {'; exit 0\n"
    tailscale.write_text(tailscale.read_text().replace("status)\n  stub_fail status\n", cut_off))
    calls = len(machine.calls())
    result = machine.run(machine.zot_args().serve().step("zot-serve-entry"), check=False)
    assert result.returncode != 0 and "no whole JSON object" in result.stderr
    assert machine.mutating_calls(since=calls) == []


# ---- scratch files -------------------------------------------------------------------------------------


def test_the_serve_agent_leaves_no_scratch_files(machine: Machine) -> None:
    create_cluster(machine)
    args = machine.cluster_args()
    for _ in range(3):
        machine.run_text(Path(args.api_serve_script_path).read_text(), "agent")
    assert list((machine.root / "tmp").iterdir()) == []


def test_delete_leaves_a_file_the_program_did_not_write(machine: Machine) -> None:
    """Written by someone else after the step's create (no adoption record, other content): kept."""
    args = machine.zot_args()
    step = args.metrics_script_step("zot-metrics-script")
    machine.run(step)
    path = Path(args.metrics_script_path)
    (machine.home / ".blumeops/adopted").joinpath(str(path).replace("/", "%2F") + ".managed").unlink()
    path.write_text("#!/bin/bash\necho theirs\n")
    result = machine.run(step, "delete")
    assert path.read_text() == "#!/bin/bash\necho theirs\n" and "left" in result.stderr
    path.write_text(args.metrics_script() + "\n")  # what an earlier version of the program wrote: removed
    machine.run(step, "delete")
    assert not path.exists()


@pytest.mark.parametrize("signal_name", ["SIGHUP", "SIGTERM", "SIGINT"])
def test_a_step_killed_mid_run_leaves_no_scratch_and_the_next_run_completes(machine: Machine,
                                                                            signal_name: str) -> None:
    """Killed while a call hangs (the SSH session went away): the step ends at the latest when that call's
    bound ends (bash runs a trap only once the command substitution it waits for is done), removes its
    scratch files, and the next run completes."""
    create_zot(machine)
    machine.fail("tailscale-status", how="hang")
    step = machine.zot_args().serve().step("zot-serve-entry")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STUB_STATE": str(machine.state),
           "TMPDIR": str(machine.root / "tmp"), "HOME": str(machine.home), "LANG": "C"}
    script = machine.root / "step.sh"
    script.write_text(quick(step.render()))
    with script.open() as stdin:
        process = subprocess.Popen([BASH, "-euo", "pipefail", "-s", "--", "create"], stdin=stdin,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    deadline = time.monotonic() + 10
    while not list((machine.root / "tmp").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list((machine.root / "tmp").iterdir()), "the step never reached its scratch directory"
    process.send_signal(getattr(signal, signal_name))
    process.communicate(timeout=15)
    assert process.returncode != 0
    assert list((machine.root / "tmp").iterdir()) == []
    machine.heal("tailscale-status", how="hang")
    machine.run(step)
