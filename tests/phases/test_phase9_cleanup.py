"""Phase 9 as the program builds it: each retired formula uninstalled after the retirement that stopped it (and
so reinstalled before that retirement's undo), postgresql@18 kept for the backups' pg_dump, data removed only
after an archive check, indri's legacy tags and the policy's legacy lines gone; and the whole migration's
runbook, both ways."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import phase_runner
from phase_runner import ops_diff, run_phase

from ops import plan as offline_plan
from ops import runbook
from ops.stack import ROOT

PlanOf = Callable[[str | None], offline_plan.Plan]
RETIRED = {"grafana", "miniflux", "forgejo", "transmission-cli"}


def named(plan: offline_plan.Plan, name: str) -> dict[str, object]:
    return next(r for r in plan.resources if r["name"] == name)


def test_each_formula_goes_after_its_retirement_and_postgresql_stays_for_the_backups(indri_plan: PlanOf) -> None:
    plan = indri_plan("9")
    book = runbook.build_runbook(indri_plan("8").document, plan.document)
    uninstalls = {str(r["name"]) for r in plan.resources if str(r["name"]).endswith("-formula-uninstall")}
    assert uninstalls == {f"{formula}-formula-uninstall" for formula in RETIRED}
    retire = {"grafana": "grafana-cutover-retirement-retire", "miniflux": "miniflux-cutover-retirement-retire",
              "forgejo": "forgejo-cutover-retirement-retire",
              "transmission-cli": "transmission-cutover-retirement-retire"}
    for formula, retirement in retire.items():
        assert phase_runner.waits_for(plan.resources, named(plan, f"{formula}-formula-uninstall"),
                                      named(plan, retirement)), formula
    keep = named(plan, "backup-client-keep")
    assert "readonly FORMULA=postgresql@18" in str(keep["inputs"]["stdin"])  # type: ignore[index]
    assert {str(step.resource["name"]) for step in book.steps} >= uninstalls
    config = named(plan, "borgmatic")["inputs"]["artifacts"]["host/borgmatic/config.yaml"]  # type: ignore[index]
    assert "pg_dump_command: /opt/homebrew/opt/postgresql@18/bin/pg_dump" in config  # the kept formula's


def test_at_9_indri_drops_its_legacy_tags_and_the_policy_its_legacy_lines(indri_plan: PlanOf) -> None:
    def indri_tags(plan: offline_plan.Plan) -> set[str]:
        tagging = next(r for r in plan.resources if r["name"] == "tailnet-indri-tags")
        return set(tagging["inputs"]["tags"])

    legacy = {"tag:grafana", "tag:kiwix", "tag:devpi", "tag:pg", "tag:feed", "tag:forge"}
    assert legacy <= indri_tags(indri_plan("8")) and not legacy & indri_tags(indri_plan("9"))
    acl = next(r for r in indri_plan("9").resources if r["type"] == "tailscale:index/acl:Acl")
    assert "svc:grafana" not in acl["inputs"]["acl"] and "tcp:2200" not in acl["inputs"]["acl"]


def test_data_is_removed_only_after_an_archive_holds_it_and_after_the_uninstalls() -> None:
    run = run_phase("9", {"blumeops:cleanup.removeData": '["/opt/homebrew/var/forgejo"]'})
    assert run.waits_for("retired-data-remove", "retired-data-check-1")
    check = run.named("retired-data-check-1")["revealed"]["stdin"]
    assert "opt/homebrew/var/forgejo" in check
    assert not [r for r in run_phase("9").resources if r["name"] == "retired-data-remove"]


def test_ops_diff_9_to_8_exits_0(indri_plan: PlanOf, tmp_path: Path) -> None:
    back = ops_diff(indri_plan("9").document, indri_plan("8").document, tmp_path)
    assert back.returncode == 0, back.stdout + back.stderr


def test_the_runbook_describes_the_whole_migration_and_its_rollback(indri_plan: PlanOf) -> None:
    up = subprocess.run([sys.executable, "-m", "ops", "runbook", "--from", "0", "--to", "9"], cwd=ROOT,
                        capture_output=True, text=True, timeout=240, check=False)
    assert up.returncode == 0, up.stderr
    for step in ("forgejo-move-copy", "transmission-move-copy", "woodpecker-oauth-app", "grafana-formula-uninstall"):
        assert f"`{step}`" in up.stdout, step
    down = runbook.build_runbook(indri_plan("9").document, indri_plan("1").document)
    order = {str(step.resource["name"]): step.wave for step in down.steps}
    # a formula comes back before the retirement that stopped it restarts it
    assert order["grafana-formula-uninstall"] < order["grafana-cutover-retirement-retire"]
    assert order["forgejo-formula-uninstall"] < order["forgejo-cutover-retirement-retire"]
