"""absolute-launchagent-paths."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy.proxy import UnknownValueError
from rules.launch_agents import absolute_launchagent_paths, command_words

TYPE = "blumeops:host:LaunchAgent"
HOME = "/Users/erichblume"
ZOT = f"{HOME}/code/3rd/zot/bin/zot-darwin-arm64"


def agent(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "label": "mcquack.eblume.zot",
        "plistPath": f"{HOME}/Library/LaunchAgents/mcquack.eblume.zot.plist",
        "programArguments": [ZOT, "serve", f"{HOME}/.config/zot/config.json"],
        "environmentVariables": {"PATH": "/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin"},
        "workingDirectory": f"{HOME}/zot",
        "standardOutPath": f"{HOME}/Library/Logs/mcquack.zot.out.log",
        "standardErrorPath": f"{HOME}/Library/Logs/mcquack.zot.err.log",
        "runAtLoad": True,
        "keepAlive": True,
    }
    props.update(overrides)
    return props


def violations(check: Any, props: dict[str, Any]) -> list[str]:
    return check(absolute_launchagent_paths, TYPE, props, name="zot-agent")


def test_absolute_agent_passes(check: Any) -> None:
    assert violations(check, agent()) == []
    minimal = {"label": "x", "plistPath": f"{HOME}/Library/LaunchAgents/x.plist", "programArguments": ["/bin/date"],
               "standardOutPath": "/tmp/x.log", "standardErrorPath": "/tmp/x.err", "runAtLoad": False,
               "keepAlive": False, "startInterval": 60}
    assert violations(check, minimal) == []


@pytest.mark.parametrize(
    ("program", "expected"),
    [
        ("~/bin/zot", "`~`"),
        ("$HOME/zot", "variable"),
        ("bin/zot", "relative path"),
        ("zot", "bare command name"),
        ("./zot", "relative path"),
    ],
)
def test_program_must_be_absolute(check: Any, program: str, expected: str) -> None:
    [message] = violations(check, agent(programArguments=[program, "serve"]))
    assert "mcquack.eblume.zot" in message and "programArguments[0]" in message
    assert program in message and expected in message


@pytest.mark.parametrize("argument", ["~/zot/config.json", "$HOME/zot/config.json", "config/zot.json",
                                      "--config=~/zot.json", "./config.json"])
def test_path_arguments_must_be_absolute(check: Any, argument: str) -> None:
    [message] = violations(check, agent(programArguments=[ZOT, "serve", argument]))
    assert "programArguments[2]" in message


def test_non_path_arguments_are_fine(check: Any) -> None:
    arguments = [ZOT, "serve", "--port", "5050", "--url=https://registry.example/v2/x", "svc:registry/x",
                 "--log-level=info"]
    assert violations(check, agent(programArguments=arguments)) == []


def test_shell_c_commands_must_be_absolute(check: Any) -> None:
    [message] = violations(check, agent(programArguments=["/bin/sh", "-c", "zot serve"]))
    assert "'zot'" in message and "-c" in message
    script = f"exec {ZOT} serve {HOME}/.config/zot/config.json"
    assert violations(check, agent(programArguments=["/bin/sh", "-c", script])) == []
    script = f"cd {HOME}/zot && test -f config.json && exec {ZOT} serve config.json"
    assert violations(check, agent(programArguments=["/bin/bash", "-ec", script])) == []
    script = "set -e; curl -s http://localhost:5050/v2/ | grep ok\n/usr/bin/true || exec minikube status"
    messages = violations(check, agent(programArguments=["/bin/zsh", "-c", script]))
    assert sorted(m.split("runs ")[1].split(",")[0] for m in messages) == ["'curl'", "'grep'", "'minikube'"]


def test_shell_words_parser() -> None:
    assert command_words("A=1 /bin/a x; if b; then c >out; fi && $(d) | e 'f; g'") == [
        "/bin/a", "b", "c", "$", "d", "e"]


def test_paths_in_plist_fields(check: Any) -> None:
    messages = violations(check, agent(workingDirectory="zot", standardOutPath="~/Library/Logs/zot.log",
                                       standardErrorPath="$HOME/zot.err", plistPath="Library/LaunchAgents/x.plist"))
    assert len(messages) == 4
    for field in ("workingDirectory", "standardOutPath", "standardErrorPath", "plistPath"):
        assert any(field in m for m in messages), field


def test_path_entries(check: Any) -> None:
    [message] = violations(check, agent(environmentVariables={"PATH": "~/bin:/usr/bin:/bin"}))
    assert "PATH entry 0 '~/bin'" in message
    [message] = violations(check, agent(environmentVariables={"PATH": "/usr/bin::/bin"}))
    assert "empty" in message
    [message] = violations(check, agent(environmentVariables={"PATH": "/usr/bin:$HOME/bin"}))
    assert "variable" in message
    [message] = violations(check, agent(environmentVariables={"KUBECONFIG": "~/.kube/config"}))
    assert "KUBECONFIG" in message


def test_no_environment_is_fine(check: Any) -> None:
    props = agent()
    del props["environmentVariables"]
    assert violations(check, props) == []
    assert violations(check, agent(environmentVariables={})) == []


def test_empty_program_arguments(check: Any) -> None:
    [message] = violations(check, agent(programArguments=[]))
    assert "programArguments is empty" in message


def test_unknown_path_raises_for_the_engine(check: Any) -> None:
    with pytest.raises(UnknownValueError):
        violations(check, agent(workingDirectory="04da6b54-80e4-46f7-96ec-b56ff0331ba9"))


def test_other_types_are_ignored(check: Any) -> None:
    assert check(absolute_launchagent_paths, "blumeops:host:ZotRegistry", agent(programArguments=["zot"])) == []


@pytest.mark.parametrize("options", [["-o", "pipefail"], ["-O", "extglob"], ["+o", "posix"], ["-e", "-o", "errexit"]])
def test_shell_options_with_values_do_not_hide_the_script(check: Any, options: list[str]) -> None:
    [message] = violations(check, agent(programArguments=["/bin/bash", *options, "-c", "zot serve"]))
    assert "'zot'" in message


def test_env_runs_a_bare_command(check: Any) -> None:
    [message] = violations(check, agent(programArguments=["/usr/bin/env", "ZOT_LOG=info", "zot", "serve"]))
    assert "programArguments[2] 'zot' is the command env runs" in message
    assert violations(check, agent(programArguments=["/usr/bin/env", "-i", "A=1", ZOT, "serve"])) == []
    messages = violations(check, agent(programArguments=["/bin/sh", "-c", "env -i A=1 zot serve"]))
    assert sorted(m.split("runs ")[1].split(",")[0] for m in messages) == ["'env'", "'zot'"]


def test_fd_redirects_are_not_commands(check: Any) -> None:
    script = f"exec 2>&1 {ZOT} serve >{HOME}/zot.log"
    assert violations(check, agent(programArguments=["/bin/sh", "-c", script])) == []
    assert command_words("exec 2>&1 zot") == ["zot"]
    assert command_words("/usr/bin/env -i zot 2>/dev/null") == ["/usr/bin/env", "zot"]
