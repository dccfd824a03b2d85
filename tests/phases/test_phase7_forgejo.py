"""Phase 7 as the program builds it: the brew forge's data moved with the "with data" order (backup check, staged
claim and identity, retirement, move, chart, clone check, then the names), its identity from config and never in
the plan, the chart with the brew forge's layout, ArgoCD and borgmatic following only once the forge served."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest
from phase_runner import Run, ops_diff, run_phase

from components.apps.forgejo import FORGEJO_IMAGE, ForgejoArgs, ForgejoIdentity, chart_values
from ops import plan as offline_plan
from ops import runbook

PlanOf = Callable[[str | None], offline_plan.Plan]
IDENTITY_KEYS = ("blumeops:forgejo.secretKey", "blumeops:forgejo.internalToken", "blumeops:forgejo.jwtSecret")


@pytest.fixture(scope="module")
def phase7() -> Run:
    return run_phase("7")



def test_the_forge_moves_in_the_with_data_order(phase7: Run) -> None:
    order = ["forgejo-backup-check", "forgejo-cutover-retirement-retire", "forgejo-move-copy", "forgejo-chart",
             "forgejo-clone-check", "forgejo-cutover-release-service", "forgejo-ingress"]
    for earlier, later in itertools.pairwise(order):
        assert phase7.waits_for(later, earlier), f"{later} must wait for {earlier}"
    assert phase7.waits_for("forgejo-ssh-load-balancer", "forgejo-clone-check")
    assert phase7.waits_for("forgejo-ssh-load-balancer", "forgejo-cutover-release-service")
    for staged in ("forgejo-namespace", "forgejo-data", "forgejo-identity"):
        assert phase7.waits_for("forgejo-cutover-retirement-retire", staged)
    assert not phase7.waits_for("forgejo-cutover-retirement-retire", "forgejo-chart")
    retire = phase7.named("forgejo-cutover-retirement-retire")["revealed"]["stdin"]
    assert "readonly NAME=forgejo" in retire and "readonly SERVE_SERVICE=svc:forge" in retire
    check = phase7.named("forgejo-backup-check")["revealed"]["stdin"]
    assert "opt/homebrew/var/forgejo" in check


def test_the_identity_comes_from_config_and_never_shows(phase7: Run) -> None:
    secret = phase7.named("forgejo-identity")
    assert secret["inputs"]["stringData"] == "[secret]"
    assert sorted(secret["revealed"]["stringData"]) == ["INTERNAL_TOKEN", "JWT_SECRET", "SECRET_KEY"]
    text = json.dumps([[r["inputs"], r.get("options")] for r in phase7.resources])
    for key in IDENTITY_KEYS:
        assert key in phase7.fake_secrets and phase7.fake_secrets[key] not in text, key
    clone = phase7.named("forgejo-clone-check")
    assert phase7.fake_secrets["blumeops:argocd.forgeSshPrivateKey"] not in json.dumps(clone["inputs"])


def test_no_identity_value_reaches_the_stack_plan_or_its_artifacts(indri_plan: PlanOf) -> None:
    plan = indri_plan("7")
    text = plan.text() + "".join(plan.artifacts.values())
    for key in IDENTITY_KEYS:
        assert plan.fake_secrets[key] not in text, key


def test_the_chart_runs_the_brew_forges_layout_without_an_admin_of_its_own(phase7: Run) -> None:
    values = phase7.named("forgejo-chart")["inputs"]["values"]
    assert values["image"] == {"registry": "code.forgejo.org", "repository": "forgejo/forgejo",
                               "tag": "13.0.3-rootless", "rootless": True}
    assert values["persistence"] == {"enabled": True, "create": False, "claimName": "forgejo-data"}
    assert values["gitea"]["admin"] == {"username": ""} and values["test"] == {"enabled": False}
    server = values["gitea"]["config"]["server"]
    assert server["ROOT_URL"] == "https://forge.tail8d86e.ts.net/" and server["SSH_DOMAIN"] == "git.tail8d86e.ts.net"
    assert server["SSH_PORT"] == 22 and server["APP_DATA_PATH"] == "/data"
    assert server["SSH_USER"] == server["BUILTIN_SSH_SERVER_USER"] == "forgejo"  # clones keep forgejo@
    assert values["gitea"]["config"]["database"] == {"DB_TYPE": "sqlite3", "PATH": "/data/forgejo.db"}
    envs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in values["gitea"]["additionalConfigFromEnvs"]}
    assert envs == {"FORGEJO__SECURITY__SECRET_KEY": {"name": "forgejo-identity", "key": "SECRET_KEY"},
                    "FORGEJO__SECURITY__INTERNAL_TOKEN": {"name": "forgejo-identity", "key": "INTERNAL_TOKEN"},
                    "FORGEJO__OAUTH2__JWT_SECRET": {"name": "forgejo-identity", "key": "JWT_SECRET"}}
    balancer = phase7.named("forgejo-ssh-load-balancer")["inputs"]
    assert balancer["spec"]["ports"] == [{"name": "tcp-22", "port": 22, "targetPort": 2222, "protocol": "TCP"}]
    assert balancer["metadata"]["annotations"]["tailscale.com/hostname"] == "git"
    for name in ("forgejo-ssh-load-balancer", "forgejo-ingress"):
        assert phase7.named(name)["inputs"]["metadata"]["annotations"]["tailscale.com/tags"] == "tag:forge"
    for kept in ("forgejo-data", "forgejo-namespace"):
        assert phase7.named(kept)["provider"].endswith("kubernetes-kept"), kept


def test_argocd_follows_the_forge_only_once_it_served_a_clone(indri_plan: PlanOf) -> None:
    before, after = indri_plan("6"), indri_plan("7")

    def argocd(plan: offline_plan.Plan) -> dict[str, object]:
        return next(r for r in plan.resources if r["name"] == "argocd")["inputs"]

    assert argocd(before)["repositories"] == ["ssh://forgejo@indri.tail8d86e.ts.net:2200/eblume/"]
    assert argocd(after)["repositories"] == ["ssh://forgejo@forgejo-ssh.forgejo.svc.cluster.local/eblume/"]
    (line,) = argocd(after)["knownHosts"]  # type: ignore[misc]
    assert str(line).startswith("forgejo-ssh.forgejo.svc.cluster.local ssh-")  # port 22: no [host]:port
    creds = next(r for r in after.resources if r["name"] == "argocd-repo-creds-forge")
    clone = next(r for r in after.resources if r["name"] == "forgejo-clone-check")
    assert clone["urn"] in creds["options"]["dependsOn"]
    assert "tailscale-operator-egress-forge" not in {r["name"] for r in after.resources}


def test_borgmatic_lets_the_forge_go_after_the_clone_and_keeps_devpis_retirement(indri_plan: PlanOf) -> None:
    def sources(target: str) -> list[str]:
        config = next(r for r in indri_plan(target).resources if r["name"] == "borgmatic")["inputs"]
        return list(config["sourceDirectories"])

    assert "/opt/homebrew/var/forgejo" in sources("6")
    assert "/opt/homebrew/var/forgejo" not in sources("7") and "/Users/erichblume/devpi" not in sources("7")
    book = runbook.build_runbook(indri_plan("6").document, indri_plan("7").document)
    wave = {str(step.resource["name"]): step.wave for step in book.steps}
    assert wave["borgmatic-config"] > wave["forgejo-clone-check"] > wave["forgejo-move-copy"]


def test_one_name_for_web_and_ssh_or_a_root_image_is_refused() -> None:
    identity = ForgejoIdentity(*(pulumi.Output.secret("x" * 20) for _ in range(3)))
    base = {"provider": None, "kept": None, "proxy_class": None, "tailnet": "t.ts.net", "chart_version": "15.0.3",
            "identity": identity, "legacy": None, "data_move": lambda s: s, "verify": lambda s: s}
    with pytest.raises(ValueError, match="must differ"):
        ForgejoArgs(**base, hostname="forge", ssh_hostname="forge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a rootless image"):
        ForgejoArgs(**base, image=FORGEJO_IMAGE.__class__("code.forgejo.org/forgejo/forgejo", "13.0.3"))  # type: ignore[arg-type]
    assert chart_values(ForgejoArgs(**base))["strategy"] == {"type": "Recreate"}  # type: ignore[arg-type]


def test_ops_diff_7_to_6_exits_0_and_lists_the_kept_claim(indri_plan: PlanOf, tmp_path: Path) -> None:
    back = ops_diff(indri_plan("7").document, indri_plan("6").document, tmp_path)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "forgejo-data" in back.stdout and "forgejo-namespace" in back.stdout
