"""Phase 8 as the program builds it: the forge's OAuth2 application made by a host step once the forge serves,
its client in a Secret the chart's server reads, the chart with the program's agent secret (never the chart's
random one) and the Kubernetes backend on one node, the Ingress ci; or the client from config."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from phase_runner import Run, ops_diff, run_phase

from ops import plan as offline_plan
from ops.engine.harness import FAKE_OAUTH_APPLICATION

PlanOf = Callable[[str | None], offline_plan.Plan]


@pytest.fixture(scope="module")
def phase8() -> Run:
    return run_phase("8")



def test_the_application_is_made_once_the_forge_serves_and_feeds_the_server(phase8: Run) -> None:
    assert phase8.waits_for("woodpecker-oauth-app", "forgejo-ingress")
    assert phase8.waits_for("woodpecker-forgejo", "woodpecker-oauth-app")
    assert phase8.waits_for("woodpecker-chart", "woodpecker-forgejo")
    assert phase8.waits_for("woodpecker-ingress", "woodpecker-chart")
    app = phase8.named("woodpecker-oauth-app")["revealed"]["stdin"]
    assert "readonly APP_NAME=woodpecker" in app
    assert "readonly REDIRECT_URI=https://ci.tail8d86e.ts.net/authorize" in app
    assert "readonly FORGE_URL=https://forge.tail8d86e.ts.net" in app
    secret = phase8.named("woodpecker-forgejo")
    assert secret["inputs"]["stringData"] == "[secret]"
    assert secret["revealed"]["stringData"]["WOODPECKER_FORGEJO_CLIENT"] == "offline-oauth-client-id"
    text = json.dumps([r["inputs"] for r in phase8.resources])
    assert json.loads(FAKE_OAUTH_APPLICATION)["client_secret"] not in text
    for key in ("blumeops:woodpecker.agentSecret", "blumeops:woodpecker.forgejoToken"):
        assert phase8.fake_secrets[key] not in text, key


def test_the_chart_runs_one_agent_on_the_kubernetes_backend_with_the_programs_secrets(phase8: Run) -> None:
    values = phase8.named("woodpecker-chart")["inputs"]["values"]
    server, agent = values["server"], values["agent"]
    assert server["createAgentSecret"] is False and agent["mapAgentSecret"] is False
    assert server["extraSecretNamesForEnvFrom"] == ["woodpecker-agent-secret", "woodpecker-forgejo"]
    assert server["env"] == {"WOODPECKER_HOST": "https://ci.tail8d86e.ts.net", "WOODPECKER_OPEN": "false",
                             "WOODPECKER_ADMIN": "eblume", "WOODPECKER_FORGEJO": "true",
                             "WOODPECKER_FORGEJO_URL": "https://forge.tail8d86e.ts.net"}
    assert agent["env"]["WOODPECKER_BACKEND"] == "kubernetes"
    assert agent["env"]["WOODPECKER_BACKEND_K8S_STORAGE_RWX"] is False
    assert agent["replicaCount"] == 1
    assert server["image"]["tag"] == agent["image"]["tag"] == "v3.17.0"
    assert phase8.named("woodpecker-namespace")["provider"].endswith("kubernetes-kept")
    ingress = phase8.named("woodpecker-ingress")["inputs"]
    assert ingress["metadata"]["annotations"]["tailscale.com/tags"] == "tag:ci"


def test_the_client_can_come_from_config_and_then_nothing_touches_the_forge() -> None:
    run = run_phase("8", {"blumeops:woodpecker.oauthFromConfig": "true"},
                    secret_overrides={"blumeops:woodpecker.oauthClientId": "from-config-id",
                                      "blumeops:woodpecker.oauthClientSecret": "from-config-secret-0000"})
    assert not [r for r in run.resources if r["name"] == "woodpecker-oauth-app"]
    secret = run.named("woodpecker-forgejo")["revealed"]["stringData"]
    assert secret == {"WOODPECKER_FORGEJO_CLIENT": "from-config-id",
                      "WOODPECKER_FORGEJO_SECRET": "from-config-secret-0000"}


def test_ops_diff_8_to_7_exits_0_and_keeps_the_ci_namespace(indri_plan: PlanOf, tmp_path: Path) -> None:
    back = ops_diff(indri_plan("8").document, indri_plan("7").document, tmp_path)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "woodpecker-namespace" in back.stdout
