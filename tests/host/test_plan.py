"""Phase 0's host side under Pulumi's mock engine (``ops.plan.build_plan``): what the components register,
with which options, and that no secret reaches a command string or the plan."""

from __future__ import annotations

from typing import Any

import pytest

from ops.engine import harness
from ops.plan import SECRET, Plan, build_plan
from ops.stack import StackConfig, fake_secret, load_stack

LAUNCH_AGENT_PROPS = {
    "label", "plistPath", "programArguments", "environmentVariables", "workingDirectory", "standardOutPath",
    "standardErrorPath", "runAtLoad", "keepAlive", "startInterval", "startCalendarInterval", "artifacts",
    "healthChecks", "preconditions",  # components/health.py: what ops check and ops runbook read
}
OPTIONAL_PROPS = {"workingDirectory", "startInterval", "startCalendarInterval"}
BASH = "/bin/bash"


def with_secret(stack: StackConfig, key: str, value: str | None = None) -> None:
    full_key = f"blumeops:{key}"
    value = value or fake_secret(full_key)
    stack.config[full_key] = value
    stack.secret_keys.append(full_key)
    stack.fake_secrets[full_key] = value


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_stack("indri", "0"))


@pytest.fixture(scope="module")
def secret_plan() -> Plan:
    """The indri stack with Docker Hub credentials and a private SSH key: two secrets on host steps."""
    stack = load_stack("indri", "0")
    stack.config["blumeops:zot.dockerHubUser"] = "eblume"
    with_secret(stack, "zot.dockerHubToken", "dckr_pat_plan-fake-token-7f3a")
    with_secret(stack, "indri.sshPrivateKey",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nplanfakekey\n-----END OPENSSH PRIVATE KEY-----")
    return build_plan(stack)  # build_plan itself fails when a fake secret shows up in the plan or artifacts


def by_name(plan: Plan, name: str) -> dict[str, Any]:
    found = [r for r in plan.resources if r["name"] == name and not r["type"].startswith("pulumi:providers:")]
    assert len(found) == 1, f"{name}: {len(found)} resources"
    return found[0]


def urn(plan: Plan, name: str) -> str:
    return str(by_name(plan, name)["urn"])


def wire(plan: Plan, name: str, type_: str = "command:remote:Command") -> dict[str, Any]:
    assert plan.run is not None
    return next(r.wire_inputs for r in plan.run.registrations if r.name == name and r.type == type_)


def commands(plan: Plan) -> list[dict[str, Any]]:
    return [r for r in plan.resources if r["type"] == "command:remote:Command"]


def test_phase_0_adds_the_host_components(plan: Plan) -> None:
    types = {(r["type"], r["name"]) for r in plan.resources if r["phase"] == "0"}
    for expected in [
        ("blumeops:host:ZotRegistry", "zot"), ("blumeops:host:MinikubeDockerCluster", "minikube"),
        ("blumeops:host:LaunchAgent", "zot-agent"), ("blumeops:host:LaunchAgent", "zot-metrics-agent"),
        ("blumeops:host:LaunchAgent", "minikube-api-serve-agent"),
        ("blumeops:host:LaunchAgent", "minikube-metrics-agent"), ("blumeops:host:TailscaleServe", "zot-serve"),
        ("pulumi:providers:kubernetes", "minikube"), ("command:remote:Command", "minikube-kubeconfig"),
    ]:
        assert expected in types
    assert plan.document["exports"]["endpoints"] == {
        "k8s": "https://k8s.tail8d86e.ts.net", "registry": "https://registry.tail8d86e.ts.net"}


def test_launch_agents_register_exactly_the_judged_props(plan: Plan) -> None:
    agents = [r for r in plan.resources if r["type"] == "blumeops:host:LaunchAgent"]
    assert sorted(agent["name"] for agent in agents) == [
        "blumeops-check-agent", "minikube-api-serve-agent", "minikube-metrics-agent", "zot-agent", "zot-metrics-agent"]
    for agent in agents:
        # optional props that are unset (None) are not sent by the SDK
        assert OPTIONAL_PROPS | set(agent["inputs"]) == LAUNCH_AGENT_PROPS
        label = agent["inputs"]["label"]
        assert agent["inputs"]["plistPath"] == f"/Users/erichblume/Library/LaunchAgents/{label}.plist"
    zot = by_name(plan, "zot-agent")["inputs"]
    assert zot["label"] == "mcquack.eblume.zot" and zot["keepAlive"] is True and zot["runAtLoad"] is True
    assert zot["programArguments"] == ["/Users/erichblume/code/3rd/zot/bin/zot-darwin-arm64", "serve",
                                       "/Users/erichblume/.config/zot/config.json"]
    serve = by_name(plan, "minikube-api-serve-agent")["inputs"]
    assert serve["startInterval"] == 60 and serve["environmentVariables"]["HOME"] == "/Users/erichblume"
    check = by_name(plan, "blumeops-check-agent")["inputs"]  # the periodic `ops check` (HealthCheckAgent)
    assert check["startInterval"] == 300 and check["keepAlive"] is False
    assert check["programArguments"] == ["/bin/bash", "/Users/erichblume/bin/blumeops-check", "agent"]
    # a LaunchAgent's only artifact is its plist: the scripts it runs are installed by host steps (their stdin)
    for agent in agents:
        assert list(agent["inputs"]["artifacts"]) == [f"host/launchagents/{agent['inputs']['label']}.plist"]


def test_components_register_their_inputs(plan: Plan) -> None:
    zot = by_name(plan, "zot")["inputs"]
    assert zot["port"] == "5050" and zot["configPath"] == "/Users/erichblume/.config/zot/config.json"
    assert zot["upstreams"]["docker.io"] == "https://registry-1.docker.io"
    cluster = by_name(plan, "minikube")["inputs"]
    assert cluster["driver"] == "docker" and cluster["containerRuntime"] == "containerd"
    assert (cluster["cpus"], cluster["memoryMb"], cluster["diskSize"]) == (6, 11264, "200g")
    assert cluster["apiserverNames"] == ["k8s.tail8d86e.ts.net", "indri"]
    assert "registry.tail8d86e.ts.net" in cluster["mirrors"]


def test_every_host_step_runs_a_script_on_stdin_over_a_pinned_connection(plan: Plan) -> None:
    steps = commands(plan)
    assert sorted(step["name"] for step in steps) == sorted([
        "zot-config", "zot-agent-install", "zot-ready", "zot-serve-entry", "zot-metrics-script",
        "zot-metrics-agent-install", "minikube-cluster", "minikube-kubeconfig", "minikube-api-serve",
        "minikube-api-serve-script", "minikube-api-serve-agent-install", "minikube-metrics-script",
        "minikube-metrics-agent-install", "blumeops-check-script", "blumeops-check-agent-install"])
    assert sorted(p for p in plan.artifacts if p.startswith("host/scripts/")) == sorted(
        f"host/scripts/{step['name']}.sh" for step in steps)
    for step in steps:
        inputs = step["inputs"]
        assert inputs["create"] == f"{BASH} -euo pipefail -s -- create"
        assert inputs["delete"] == f"{BASH} -euo pipefail -s -- delete"
        assert "update" not in inputs
        assert inputs["addPreviousOutputInEnv"] is False
        assert plan.artifacts[f"host/scripts/{step['name']}.sh"] == inputs["stdin"]
        connection = wire(plan, step["name"])["connection"]
        assert connection[harness.SIG_KEY] == harness.SECRET_SIG  # pulumi-command keeps connections secret
        value = connection["value"]
        assert value["host"] == "indri" and value["user"] == "erichblume" and value["port"] == 22
        assert value["hostKey"].startswith("ssh-ed25519 ")
        assert "privateKey" not in value  # the SSH agent by default


def test_no_secret_in_any_command_string(secret_plan: Plan) -> None:
    token = "dckr_pat_plan-fake-token-7f3a"
    for step in commands(secret_plan):
        for field in ("create", "update", "delete"):
            assert token not in str(step["inputs"].get(field, ""))
            assert "PRIVATE KEY" not in str(step["inputs"].get(field, ""))
    config = by_name(secret_plan, "zot-config")["inputs"]
    assert config["stdin"] == SECRET and config["logging"] == "none"
    assert wire(secret_plan, "zot-config")["stdin"][harness.SIG_KEY] == harness.SECRET_SIG
    # the reviewer's rendering names the secret, never its value
    assert "<secret CREDENTIALS_JSON" in secret_plan.artifacts["host/scripts/zot-config.sh"]
    assert "credentialsFile" in secret_plan.artifacts["host/zot/config.json"]
    connection = wire(secret_plan, "zot-config")["connection"]["value"]
    assert connection["privateKey"].startswith("-----BEGIN OPENSSH")  # inside the secret connection only


def test_steps_without_secrets_keep_their_logs(plan: Plan) -> None:
    assert by_name(plan, "zot-config")["inputs"]["logging"] == "stdoutAndStderr"
    assert by_name(plan, "minikube-kubeconfig")["inputs"]["logging"] == "none"


def test_serve_steps_depend_on_their_tailscale_services(plan: Plan) -> None:
    assert urn(plan, "tailnet-registry") in by_name(plan, "zot-serve-entry")["options"]["dependsOn"]
    assert urn(plan, "tailnet-k8s") in by_name(plan, "minikube-api-serve")["options"]["dependsOn"]
    assert urn(plan, "minikube-cluster") in by_name(plan, "minikube-api-serve")["options"]["dependsOn"]
    assert urn(plan, "zot-ready") in by_name(plan, "zot-serve")["options"]["dependsOn"]


def test_step_order_within_zot(plan: Plan) -> None:
    assert urn(plan, "zot-config") in by_name(plan, "zot-agent")["options"]["dependsOn"]
    # depending on a component is depending on its children
    assert urn(plan, "zot-agent-install") in by_name(plan, "zot-ready")["options"]["dependsOn"]
    assert urn(plan, "zot-metrics-script") in by_name(plan, "zot-metrics-agent")["options"]["dependsOn"]


def test_kubernetes_provider_is_built_from_the_secret_kubeconfig_after_the_cluster(plan: Plan) -> None:
    provider = next(r for r in plan.resources if r["type"] == "pulumi:providers:kubernetes")
    assert urn(plan, "minikube-cluster") in provider["options"]["dependsOn"]
    assert urn(plan, "minikube-kubeconfig") in provider["options"]["dependsOn"]
    assert provider["inputs"]["kubeconfig"] == SECRET
    kubeconfig = wire(plan, "minikube", "pulumi:providers:kubernetes")["kubeconfig"]
    assert kubeconfig[harness.SIG_KEY] == harness.SECRET_SIG
    assert "server: https://k8s.tail8d86e.ts.net" in kubeconfig["value"]
    assert urn(plan, "minikube-cluster") in by_name(plan, "minikube-kubeconfig")["options"]["dependsOn"]


def test_the_cluster_step_is_protected_and_identified_by_its_profile(plan: Plan) -> None:
    cluster = by_name(plan, "minikube-cluster")
    assert cluster["options"]["protect"] is True
    assert cluster["inputs"]["triggers"] == ["minikube"]
    assert by_name(plan, "zot-agent-install")["inputs"]["triggers"] == ["mcquack.eblume.zot"]


def test_the_kubeconfig_setting_is_used_instead_of_the_step() -> None:
    stack = load_stack("indri", "0")
    stack.config["blumeops:minikube.kubeconfig"] = harness.fake_kubeconfig("https://k8s.example.invalid")
    stack.secret_keys.append("blumeops:minikube.kubeconfig")
    plan = build_plan(stack)
    assert not [r for r in plan.resources if r["name"] == "minikube-kubeconfig"]
    provider = next(r for r in plan.resources if r["type"] == "pulumi:providers:kubernetes")
    assert provider["options"]["dependsOn"]
    assert "k8s.example.invalid" in wire(plan, "minikube", "pulumi:providers:kubernetes")["kubeconfig"]["value"]


def test_credentials_change_reruns_the_restart_and_the_readiness_wait(secret_plan: Plan) -> None:
    """The agent step (the one restart of zot) and the ready step carry a digest of config and credentials:
    rotating the token alone changes both stdins, so Pulumi re-runs both; the digest stays secret."""
    stack = load_stack("indri", "0")
    stack.config["blumeops:zot.dockerHubUser"] = "eblume"
    with_secret(stack, "zot.dockerHubToken", "dckr_pat_plan-fake-token-rotated")
    with_secret(stack, "indri.sshPrivateKey",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nplanfakekey\n-----END OPENSSH PRIVATE KEY-----")
    rotated = build_plan(stack)
    for name in ("zot-agent-install", "zot-ready"):
        before, after = wire(secret_plan, name)["stdin"], wire(rotated, name)["stdin"]
        assert before[harness.SIG_KEY] == after[harness.SIG_KEY] == harness.SECRET_SIG
        assert before["value"] != after["value"]
        assert by_name(secret_plan, name)["inputs"]["logging"] == "none"
        assert "<secret RESTART_SIGNAL" in secret_plan.artifacts[f"host/scripts/{name}.sh"]
    # the plist is the same: the signal is not an EnvironmentVariables entry
    assert secret_plan.artifacts["host/launchagents/mcquack.eblume.zot.plist"] == \
        rotated.artifacts["host/launchagents/mcquack.eblume.zot.plist"]
    # agents whose signal derives from no secret stay plain and keep their logs
    assert by_name(secret_plan, "zot-metrics-agent-install")["inputs"]["logging"] == "stdoutAndStderr"
