"""What lands on indri, as the program renders it for the indri stack (the plan's artifacts): every script
passes shellcheck, every plist round-trips through plistlib with absolute paths only, zot's config and the
hosts.toml files carry the facts of phases.md. The artifacts are checked against the components' own
rendering functions, so the tests on the fake machine run the very same text."""

from __future__ import annotations

import json
import plistlib
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from components.host.launch_agent import LaunchAgentArgs, path_problem
from ops.plan import Plan, build_plan
from ops.stack import load_stack
from phases import p0_foundation
from tests.host.conftest import Machine

SHELLCHECK = Path(sys.executable).parent / "shellcheck"
UPSTREAMS = {
    "docker.io": "https://registry-1.docker.io", "ghcr.io": "https://ghcr.io", "quay.io": "https://quay.io",
    "registry.k8s.io": "https://registry.k8s.io", "code.forgejo.org": "https://code.forgejo.org",
    "codeberg.org": "https://codeberg.org", "data.forgejo.org": "https://data.forgejo.org",
    "ecr-public.aws.com": "https://ecr-public.aws.com",
}


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_stack("indri", "0"))


def host_artifacts(plan: Plan, prefix: str) -> dict[str, str]:
    return {path: text for path, text in plan.artifacts.items() if path.startswith(prefix)}


def test_every_rendered_script_passes_shellcheck(plan: Plan, tmp_path: Path, machine: Machine) -> None:
    scripts = host_artifacts(plan, "host/scripts/")
    assert len(scripts) >= 13
    # the scripts the agents run (installed by the *-script steps), and the renderings the fake-machine tests
    # run (temp paths, secrets filled in)
    args = machine.zot_args(docker_hub_user="u", docker_hub_token=object())
    cluster = machine.cluster_args()
    scripts["bin/zot-metrics"] = args.metrics_script()
    scripts["bin/k8s-api-serve"] = cluster.api_serve_script().render()
    scripts["bin/minikube-metrics"] = cluster.metrics_script()
    scripts["test/zot-config-secret.sh"] = args.config_step("zot-config").render({"CREDENTIALS_JSON": "{}"})
    paths = []
    for relative, text in scripts.items():
        path = tmp_path / relative.replace("/", "__")
        path.write_text(text)
        paths.append(str(path))
    result = subprocess.run([str(SHELLCHECK), "--severity=style", *paths], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_plists_round_trip_and_name_only_absolute_paths(plan: Plan) -> None:
    plists = host_artifacts(plan, "host/launchagents/")
    assert sorted(plists) == sorted(f"host/launchagents/mcquack.eblume.{label}.plist" for label in
                                    ("blumeops-check", "k8s-api-serve", "minikube-metrics", "zot", "zot-metrics"))
    for relative, text in plists.items():
        document = plistlib.loads(text.encode())
        assert plistlib.dumps(document, sort_keys=True).decode() == text
        assert relative.endswith(f"/{document['Label']}.plist")
        program = document["ProgramArguments"]
        assert path_problem(program[0]) is None
        for key in ("StandardOutPath", "StandardErrorPath"):
            assert path_problem(document[key]) is None, (relative, key)
        for entry in document.get("EnvironmentVariables", {}).get("PATH", "/").split(":"):
            assert path_problem(entry) is None
        for argument in program[1:]:
            assert "~" not in argument and "$" not in argument
    zot = plistlib.loads(plists["host/launchagents/mcquack.eblume.zot.plist"].encode())
    assert zot["ProgramArguments"] == ["/Users/erichblume/code/3rd/zot/bin/zot-darwin-arm64", "serve",
                                       "/Users/erichblume/.config/zot/config.json"]
    assert zot["RunAtLoad"] is True and zot["KeepAlive"] is True
    assert zot["StandardOutPath"] == "/Users/erichblume/Library/Logs/mcquack.zot.out.log"
    assert zot["StandardErrorPath"] == "/Users/erichblume/Library/Logs/mcquack.zot.err.log"
    for label in ("zot-metrics", "k8s-api-serve", "minikube-metrics"):
        agent = plistlib.loads(plists[f"host/launchagents/mcquack.eblume.{label}.plist"].encode())
        assert agent["StartInterval"] == 60 and agent["KeepAlive"] is False
        assert agent["StandardOutPath"] == f"/opt/homebrew/var/log/mcquack.{label}.out.log"
    # the agents' PATH: the directories of the configured tools (minikube runs `docker` by name), then launchd's
    for label in ("k8s-api-serve", "minikube-metrics"):
        agent = plistlib.loads(plists[f"host/launchagents/mcquack.eblume.{label}.plist"].encode())
        assert agent["EnvironmentVariables"]["PATH"] == ":".join((
            "/opt/homebrew/bin", "/usr/local/bin", "/Applications/Tailscale.app/Contents/MacOS",
            "/usr/bin", "/bin", "/usr/sbin", "/sbin"))
    assert "EnvironmentVariables" not in zot  # the restart signal stays out of the plist


def test_zot_config_carries_the_facts(plan: Plan) -> None:
    config: dict[str, Any] = json.loads(plan.artifacts["host/zot/config.json"])
    assert config["distSpecVersion"] == "1.1.1"
    assert config["http"] == {"address": "0.0.0.0", "port": "5050", "compat": ["docker2s2"]}
    assert config["storage"]["rootDirectory"] == "/Users/erichblume/zot" and config["storage"]["gc"] is True
    extensions = config["extensions"]
    assert extensions["metrics"] == {"enable": True, "prometheus": {"path": "/metrics"}}
    # search and ui only: no cve (CVE scanning downloads Trivy's databases every 24 h)
    assert extensions["search"] == {"enable": True} and extensions["ui"] == {"enable": True}
    assert set(extensions) == {"metrics", "search", "ui", "sync"}
    assert "credentialsFile" not in extensions["sync"]  # no Docker Hub credentials in the indri stack yet
    registries = {r["content"][0]["destination"].strip("/"): r for r in extensions["sync"]["registries"]}
    assert set(registries) == set(UPSTREAMS)
    for registry, entry in registries.items():
        assert entry == {
            "urls": [UPSTREAMS[registry]], "content": [{"prefix": "**", "destination": f"/{registry}"}],
            "onDemand": True, "tlsVerify": True, "maxRetries": 3, "retryDelay": "10s", "preserveDigest": True,
        }


def test_hosts_toml_for_every_upstream_and_the_private_registry(plan: Plan) -> None:
    files = host_artifacts(plan, "host/containerd/certs.d/")
    registries = {path.split("/")[3]: tomllib.loads(text) for path, text in files.items()}
    assert set(registries) == {*UPSTREAMS, "registry.tail8d86e.ts.net"}
    for registry, url in UPSTREAMS.items():
        assert registries[registry]["server"] == url
        assert registries[registry]["host"] == {
            f"http://host.minikube.internal:5050/v2/{registry}": {"capabilities": ["pull", "resolve"],
                                                                   "override_path": True}}
    private = registries["registry.tail8d86e.ts.net"]["host"]["http://host.minikube.internal:5050"]
    assert private["capabilities"] == ["pull", "resolve", "push"]


def test_artifacts_are_the_text_the_steps_send(plan: Plan) -> None:
    """The plan's rendering is the components' own: the tests on the fake machine run this very text."""
    stdin = {r["name"]: r["inputs"]["stdin"] for r in plan.resources if r["type"] == "command:remote:Command"}
    for name, text in stdin.items():
        assert plan.artifacts[f"host/scripts/{name}.sh"] == text
    # no component carries a rendered script in its props: they are the commands' own stdin
    for resource in plan.resources:
        files = resource["inputs"].get("artifacts", {})
        assert not [path for path in files if path.startswith(("host/scripts/", "host/bin/"))], resource["name"]
    zot_step = next(r for r in plan.resources if r["name"] == "zot-config")
    assert '"distSpecVersion": "1.1.1"' in zot_step["inputs"]["stdin"]
    assert p0_foundation.service_host("svc:registry", "tail8d86e.ts.net") == "registry.tail8d86e.ts.net"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("program_arguments", ("zot", "serve"), "programArguments[0] 'zot' is relative"),
        ("program_arguments", ("/bin/zot", "~/config.json"), "programArguments[1] '~/config.json' starts with ~"),
        ("standard_out_path", "$HOME/out.log", "standardOutPath '$HOME/out.log' uses a $variable"),
        ("standard_error_path", "logs/err.log", "standardErrorPath 'logs/err.log' is relative"),
        ("working_directory", "~/zot", "workingDirectory '~/zot' starts with ~"),
        ("environment_variables", {"PATH": "/usr/bin:~/bin"}, "environmentVariables.PATH entry 1"),
        ("environment_variables", {"CONFIG": "$HOME/x"}, "environmentVariables.CONFIG"),
    ],
)
def test_launch_agent_refuses_unexpanded_paths(machine: Machine, field: str, value: object, message: str) -> None:
    values: dict[str, object] = {
        "host": machine.host(), "label": "mcquack.eblume.test", "program_arguments": ("/bin/echo", "hi"),
        "standard_out_path": "/tmp/out.log", "standard_error_path": "/tmp/err.log",
    }
    values[field] = value
    with pytest.raises(ValueError, match=r"LaunchAgent mcquack\.eblume\.test") as error:
        LaunchAgentArgs(**values)  # type: ignore[arg-type]
    assert message in str(error.value)


HOST_COMPONENTS = Path(__file__).resolve().parents[2] / "components" / "host"
HOMELAB_WORDS = ("erichblume", "indri", "tail8d86e", "mcquack")


def test_host_components_carry_no_homelab_facts() -> None:
    """Users, host and tailnet names and the agents' labels come from the phase (phases/p0_foundation.py,
    settings), so the components serve another Mac as well."""
    files = [*sorted(HOST_COMPONENTS.glob("*.py")), *sorted((HOST_COMPONENTS / "scripts").glob("*.sh"))]
    assert len(files) >= 15
    found = [f"{path.relative_to(HOST_COMPONENTS)}: {word}" for path in files
             for word in HOMELAB_WORDS if word in path.read_text().lower()]
    assert found == []
