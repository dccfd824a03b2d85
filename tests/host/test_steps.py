"""HostStep itself: the constant command string, the timeouts, the preamble's quoting of hostile values, and
the lib.sh blocks each step carries (a helper's change re-runs only the steps that use it)."""

from __future__ import annotations

import random
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from components.host import HostStep
from components.host import script as host_script_module
from components.host.launch_agent import install_file_step
from components.host.script import (
    STEP_COMMANDS,
    ansi_c_quote,
    library_blocks,
    library_for,
    reviewable,
    secret_placeholder,
)
from ops.plan import build_plan
from ops.stack import load_stack
from tests.host.conftest import BASH, Machine

# ---- the command string is a constant -----------------------------------------------------------------


def _commands(plan: Any) -> list[dict[str, Any]]:
    return [r for r in plan.resources if r["type"] == "command:remote:Command"]


@pytest.mark.parametrize("phase", ["0", "1"])
def test_every_command_string_in_the_plan_is_a_constant_form(indri_plan, phase: str) -> None:  # type: ignore[no-untyped-def]
    commands = _commands(indri_plan(phase))
    assert len(commands) >= 13
    for step in commands:
        inputs = step["inputs"]
        assert inputs["create"] == STEP_COMMANDS["create"] == "/bin/bash -euo pipefail -s -- create"
        assert inputs["delete"] == STEP_COMMANDS["delete"] == "/bin/bash -euo pipefail -s -- delete"
        assert "update" not in inputs and "environment" not in inputs


def test_no_setting_reaches_the_command_string() -> None:
    """A bash path the operator sets names the agents' bash in their plists only (a path with a space, a
    quote or a second word is refused by the settings: tests/foundation/test_settings.py)."""
    stack = load_stack("indri", "0")
    stack.config["blumeops:tools.bash"] = "/opt/homebrew-5.3/bin/bash"
    plan = build_plan(stack)
    for step in _commands(plan):
        assert step["inputs"]["create"] == STEP_COMMANDS["create"]
        assert step["inputs"]["delete"] == STEP_COMMANDS["delete"]
    agent = next(r for r in plan.resources if r["name"] == "zot-metrics-agent")
    assert agent["inputs"]["programArguments"][0] == "/opt/homebrew-5.3/bin/bash"


class _Captured:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append({"name": name, **kwargs})
        return self.calls[-1]


def test_every_step_has_timeouts(machine: Machine, monkeypatch: pytest.MonkeyPatch) -> None:
    captured = _Captured()
    monkeypatch.setattr(host_script_module.command.remote, "Command", captured)
    step = machine.zot_args().ready_step("zot-ready")
    step.register(machine.host())
    step.register(machine.host(), timeout_minutes=40, identity=("x",))
    step.register(machine.host(), identity=("y",))
    timeouts = [call["opts"].custom_timeouts for call in captured.calls]
    assert [(t.create, t.update, t.delete) for t in timeouts] == [("10m",) * 3, ("40m",) * 3, ("10m",) * 3]
    assert [call["triggers"] for call in captured.calls] == [None, ["x"], ["y"]]
    assert {call["create"] for call in captured.calls} == {STEP_COMMANDS["create"]}
    with pytest.raises(ValueError, match="timeout_minutes"):
        step.register(machine.host(), timeout_minutes=0)


def test_the_cluster_step_gets_the_long_timeout(machine: Machine) -> None:
    with pytest.raises(ValueError, match="cluster_timeout_minutes"):
        machine.cluster_args(cluster_timeout_minutes=0)
    assert machine.cluster_args().cluster_timeout_minutes >= 30


# ---- hostile values round-trip through the preamble --------------------------------------------------

HOSTILE = [
    "", " ", "'", '"', "''", "'\"'\"'", "\\", "\\'", "$HOME", "${HOME}", "$(touch pwned)", "`touch pwned`",
    "; touch pwned;", "a\nb", "\n", "line\r\nwindows", "\t", "-n", "--", "*", "?[a]", "~", "~root", "!",
    "$'x'", "a b  c", "\x01\x1b[31m\x7f", "é ü ß", "日本語", "😀", "\u2028", "#", "a=b", "0", "true",
    "x" * 5000, "}\n{", "EOF", "'$(touch pwned)'", "\"$(touch pwned)\"", "\\\n", "%s%n",
]


def _random_hostile(count: int) -> list[str]:
    alphabet = [*"'\"\\$`!*?[]{}()<>|&;~#% \t\n\r-=", "\x01", "\x7f", "é", "😀", "a", "Z", "0"]
    generator = random.Random(20261128)
    return ["".join(generator.choice(alphabet) for _ in range(generator.randint(1, 40))) for _ in range(count)]


def _round_trip(tmp_path: Path, assignments: list[str], names: list[str]) -> list[str]:
    """Run the assignments under bash and read each variable back, NUL-separated."""
    script = "\n".join(assignments) + "\n" + "".join(f'printf "%s\\0" "${name}"\n' for name in names)
    result = subprocess.run([BASH, "-euo", "pipefail", "-s"], input=script.encode(), capture_output=True,
                            cwd=tmp_path, check=True)
    assert not (tmp_path / "pwned").exists()
    return result.stdout.decode().split("\0")[:-1]


def test_hostile_values_round_trip_through_the_preamble(tmp_path: Path) -> None:
    values = HOSTILE + _random_hostile(300)
    variables = {f"V_{index}": value for index, value in enumerate(values)}
    # a hostile value in the step's words stays one comment line, like the rest of the preamble
    step = HostStep("hostile", "install-file", variables, does="writes x\nreadonly PWNED=1; touch pwned",
                    undoes="\r\n$(touch pwned)")
    text = step.render()
    assert "\nreadonly PWNED" not in text and "# does: writes x?readonly PWNED=1; touch pwned" in text
    preamble = text.split("\n\n# ---- components/host/scripts/lib.sh", 1)[0]
    got = _round_trip(tmp_path, [preamble], list(variables))
    assert got == values


def test_hostile_secrets_round_trip_as_one_line_each(tmp_path: Path) -> None:
    values = HOSTILE + _random_hostile(300)
    assignments = [f"readonly S_{index}={ansi_c_quote(value)}" for index, value in enumerate(values)]
    assert all("\n" not in line for line in assignments)
    assert _round_trip(tmp_path, assignments, [f"S_{index}" for index in range(len(values))]) == values


def test_hostile_values_reach_the_machine_unchanged(machine: Machine) -> None:
    """The real steps, on the fake machine: a file's content and a secret land byte for byte."""
    for index, value in enumerate(HOSTILE[:20] + _random_hostile(20)):
        path = machine.home / f"file {index} ';$(x)"
        machine.run(install_file_step(f"hostile-{index}", str(path), value, "0644"))
        assert path.read_bytes() == value.encode() + b"\n"
    args = machine.zot_args(docker_hub_user="u", docker_hub_token=object())
    secret = "p'\"$(touch pwned)`x`\n\\;"
    machine.run(args.config_step("zot-config"), secrets={"CREDENTIALS_JSON": secret})
    assert Path(args.credentials_path).read_text() == secret + "\n"
    assert not list(machine.root.rglob("pwned"))


def test_nul_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="FILE_CONTENT holds a NUL"):
        install_file_step("nul", "/x", "a\0b", "0644")
    step = HostStep("nul", "zot-ready", {}, secrets=("RESTART_SIGNAL",), does="waits", undoes="nothing")
    with pytest.raises(ValueError, match="secret RESTART_SIGNAL holds a NUL"):
        step.render({"RESTART_SIGNAL": "a\0b"})


def test_reviewable_hides_every_secret_and_keeps_the_rest(machine: Machine) -> None:
    args = machine.zot_args(docker_hub_user="u", docker_hub_token=object())
    step = args.config_step("zot-config")
    sent = step.render({"CREDENTIALS_JSON": '{"registry": {"password": "hunter2\\n\'x"}}'})
    shown = reviewable(sent)
    assert "hunter2" not in shown
    assert secret_placeholder("CREDENTIALS_JSON") in shown
    assert shown == step.render()  # the placeholder rendering, exactly
    assert reviewable(args.metrics_script()) == args.metrics_script()


def test_a_missing_script_is_refused_at_declaration() -> None:
    with pytest.raises(ValueError, match="no host script"):
        HostStep("x", "no-such-script", does="x", undoes="y")


def test_a_step_says_what_it_does_and_undoes_or_is_refused() -> None:
    for does, undoes in (("", "y"), ("x", ""), (" ", "y")):
        with pytest.raises(ValueError, match=r"say what it (does|undoes) in words"):
            HostStep("x", "install-file", does=does, undoes=undoes)
    text = HostStep("x", "install-file", does="writes /x", undoes="removes /x").render()
    assert text.splitlines()[3:5] == ["# does: writes /x", "# undo: removes /x"]


# ---- each step carries only the lib.sh it uses --------------------------------------------------------


def _all_steps(machine: Machine) -> dict[str, str]:
    zot, cluster = machine.zot_args(), machine.cluster_args()
    steps = [
        zot.config_step("zot-config"), zot.agent().step("zot-agent-install"), zot.ready_step("zot-ready"),
        zot.serve().step("zot-serve-entry"), zot.metrics_script_step("zot-metrics-script"),
        cluster.cluster_step("minikube-cluster"), cluster.api_serve_script("minikube-api-serve"),
        cluster.kubeconfig_step("minikube-kubeconfig"), cluster.api_serve_job().install_step("serve-script"),
        cluster.metrics_job().install_step("metrics-script"),
    ]
    return {step.name: step.render() for step in steps}


def test_each_step_carries_only_the_helpers_it_uses(machine: Machine) -> None:
    steps = _all_steps(machine)
    assert "serve_clear()" not in steps["zot-ready"] and "adopt_file()" not in steps["zot-ready"]
    assert "bounded()" in steps["zot-ready"]  # what it calls, and what that calls (die, log)
    assert "die()" in steps["zot-ready"]
    assert "serve_clear()" in steps["zot-serve-entry"] and "json_without_null()" in steps["zot-serve-entry"]
    assert "serve_clear()" not in steps["minikube-kubeconfig"]
    assert len(steps["zot-ready"]) < len(steps["zot-serve-entry"])


def test_a_changed_helper_reruns_only_the_steps_that_use_it(machine: Machine,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    before = _all_steps(machine)
    original = host_script_module.script_text

    def edited(script: str) -> str:
        text = original(script)
        if script == host_script_module.LIBRARY:
            text = text.replace('    log "cleared the serve entries of $1"',
                                '    log "cleared every serve entry of $1"')
        return text

    monkeypatch.setattr(host_script_module, "script_text", edited)
    library_blocks.cache_clear()
    try:
        after = _all_steps(machine)
    finally:
        library_blocks.cache_clear()
    changed = sorted(name for name in before if before[name] != after[name])
    # the serve entry's and svc:k8s's steps, and the install of the agent script that clears svc:k8s
    assert changed == ["minikube-api-serve", "serve-script", "zot-serve-entry"]


def test_every_helper_a_step_calls_is_in_its_stdin(machine: Machine) -> None:
    defined = {name for block in library_blocks() for name in block.defines if not name.isupper()}
    for name, text in _all_steps(machine).items():
        body = text.split("\n# ---- components/host/scripts/", 2)[-1]
        for helper in defined:
            if f"{helper} " in body or f"{helper}\n" in body or f"$({helper}" in body:
                assert f"\n{helper}()" in text, f"{name} calls {helper} but does not carry it"


def test_the_prologue_is_in_every_step() -> None:
    prologue = library_for("")
    assert "set -euo pipefail" in prologue and "readonly BLUMEOPS_QUICK=" in prologue
    assert "bounded()" not in prologue and "adopt_file()" not in prologue


def test_host_tools_are_a_table_the_stubs_follow(machine: Machine) -> None:
    """Every tool of HostTools has a stub on the fake machine (a generic one unless toolbox/ has its own)."""
    for tool in fields(machine.host().tools):
        if tool.name != "bash":
            assert (machine.bin / tool.name).exists(), tool.name



def test_every_command_of_the_plan_registers_with_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole indri plan (phase 1) built with the real Command wrapped: every host step carries
    customTimeouts, the cluster step the long one (above the sum of its in-script bounds)."""
    real = host_script_module.command.remote.Command
    seen: dict[str, Any] = {}

    def recording(name: str, **kwargs: Any) -> Any:
        seen[name] = kwargs["opts"].custom_timeouts
        return real(name, **kwargs)

    monkeypatch.setattr(host_script_module.command.remote, "Command", recording)
    plan = build_plan(load_stack("indri", "1"))
    assert len(seen) >= 13 and set(seen) == {step["name"] for step in _commands(plan)}
    for name, timeouts in seen.items():
        expected = "70m" if name == "minikube-cluster" else "10m"
        assert (timeouts.create, timeouts.update, timeouts.delete) == (expected,) * 3, name
