"""``python -m ops runbook``: steps in dependency order, waves, preconditions, checks and rollbacks, on the plans
of consecutive targets (every pair of implemented phases, both ways, and the first ``pulumi up``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import phases as phase_engine
from ops import plan as offline_plan
from ops import runbook
from ops.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
PlanOf = Callable[[str | None], offline_plan.Plan]
IMPLEMENTED = [spec.id for spec in phase_engine.REGISTRY if spec.implemented]
PAIRS = list(zip([runbook.NONE, *IMPLEMENTED[:-1]], IMPLEMENTED, strict=True))


def document(indri_plan: PlanOf, phase: str) -> dict[str, Any]:
    if phase == runbook.NONE:
        return {"stack": "indri", "targetPhase": runbook.NONE, "resources": []}
    return indri_plan(phase).document


def book_of(indri_plan: PlanOf, low: str, high: str) -> runbook.Runbook:
    """The runbook from ``low`` to ``high`` on the plans built here (their artifacts name secret-stdin scripts)."""
    before = indri_plan(low) if low != runbook.NONE else None
    after = indri_plan(high)
    return runbook.build_runbook(document(indri_plan, low), after.document,
                                 before.artifacts if before else None, after.artifacts)


def waves(book: runbook.Runbook) -> dict[str, int]:
    """Step name -> wave; a chart (its objects are the steps, named ``<chart>:<namespace>/<name>``) -> the
    first and last wave of its objects, as ``<chart>^`` and ``<chart>$``."""
    found: dict[str, int] = {}
    for step in book.steps:
        found[step.resource["name"]] = step.wave
        if step.chart is not None:
            assert step.resource["name"].startswith(step.chart + ":")
            found[step.chart + "^"] = min(found.get(step.chart + "^", step.wave), step.wave)
            found[step.chart + "$"] = max(found.get(step.chart + "$", step.wave), step.wave)
    return found


def operations(plan: dict[str, Any]) -> set[str]:
    return runbook.operations({r["urn"]: r for r in plan["resources"]})


# Phases whose proof is a resource `pulumi up` waits for, not a check `ops check` repeats later.
PROVEN_BY_THE_UPDATE = {"5.1": "the nfs-probe Job (a pod mounts and lists sifaka's export)"}


def check_order(book: runbook.Runbook, graph: dict[str, set[str]], reverse: bool,
                forward_graph: dict[str, set[str]] | None = None) -> None:
    """Every step comes after every step it (transitively) waits for; waves and critical path agree. In a
    rollback (``reverse``) the deletes follow ``graph`` backwards, and what it creates or updates follows the
    lower target's ``forward_graph``."""
    steps = {s.urn: s for s in book.steps}
    for step in book.steps:
        forward_step = reverse and step.action != runbook.DELETE and step.action != runbook.KEEP
        if forward_step and forward_graph is None:
            continue
        order = forward_graph if forward_step and forward_graph is not None else graph
        for other in runbook._closure(order, [step.urn]):
            if other in steps and steps[other].action == step.action:
                first, then = (step, steps[other]) if reverse and not forward_step else (steps[other], step)
                assert first.wave < then.wave, f"{then.urn} must come after {first.urn}"
        for waited in step.after:
            assert steps[waited].wave < step.wave
    assert len(book.critical_path) == len(book.waves)
    for earlier, later in zip(book.critical_path, book.critical_path[1:], strict=False):
        assert earlier in steps[later].after


@pytest.mark.parametrize(("low", "high"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_raising_the_target_creates_exactly_the_new_resources_in_order(indri_plan: PlanOf, low: str,
                                                                         high: str) -> None:
    before, after = document(indri_plan, low), document(indri_plan, high)
    book = runbook.build_runbook(before, after)
    created = {s.urn for s in book.steps if s.action == runbook.CREATE}
    assert created == operations(after) - operations(before)
    in_after = {r["urn"] for r in after["resources"]}
    assert all(s.urn in in_after for s in book.steps if s.action != runbook.DELETE), "steps are plan resources"
    check_order(book, runbook.dependencies(after), reverse=False)
    assert not book.rollback and book.protected == []
    stepped = {s.resource["phase"] for s in book.steps}
    if high not in PROVEN_BY_THE_UPDATE:
        assert book.checks, f"phase {high} declares no health check: its components must (components/health.py)"
    assert all(c["phase"] in stepped for c in book.checks)


@pytest.mark.parametrize(("low", "high"), [p for p in PAIRS if p[0] != runbook.NONE],
                         ids=[f"{b}-{a}" for a, b in PAIRS if a != runbook.NONE])
def test_lowering_the_target_deletes_in_reverse_order_and_keeps_protected_state(indri_plan: PlanOf, low: str,
                                                                                  high: str) -> None:
    before, after = document(indri_plan, high), document(indri_plan, low)
    book = runbook.build_runbook(before, after)
    assert book.rollback
    deleted = {s.urn for s in book.steps if s.action in (runbook.DELETE, runbook.KEEP)}
    gone = operations(before) - operations(after)
    assert deleted | set(book.protected) | set(book.held_back) == gone
    assert not deleted & (set(book.protected) | set(book.held_back))
    by_urn_ = {r["urn"]: r for r in before["resources"]}
    assert set(book.kept) == {s.urn for s in book.steps if s.action == runbook.KEEP} == {
        urn for urn in deleted if by_urn_[urn]["options"]["retainOnDelete"]}
    assert all(step.effect for step in book.steps if step.chart is None), "every step says what it does"
    by_urn = {r["urn"]: r for r in before["resources"]}
    protected = {urn for urn in gone if by_urn[urn]["options"]["protect"]}
    assert set(book.protected) == protected
    # a rollback deletes what the higher target added and creates what it had retired (phase 4's k8s-pg)
    assert all(s.urn in by_urn for s in book.steps if s.action != runbook.CREATE), "every step is a resource"
    assert {s.urn for s in book.steps if s.action == runbook.CREATE} == operations(after) - operations(before)
    check_order(book, runbook.dependencies(before), reverse=True, forward_graph=runbook.dependencies(after))
    assert {c["name"] for c in book.retired_checks} == {
        item["name"] for r in before["resources"] if r["urn"] not in {x["urn"] for x in after["resources"]}
        for item in r["inputs"].get("healthChecks", [])}


def test_phase_one_runbook(indri_plan: PlanOf) -> None:
    book = book_of(indri_plan, "0", "1")
    wave = waves(book)
    # every object a chart renders is a step, after what the chart waits for and before what waits for it
    charts = {r["name"] for r in indri_plan("1").resources if r["type"].startswith(runbook.CHART_PREFIX)}
    assert charts == {"tailscale-operator-chart", "argocd-chart", "cloudnative-pg-chart"}
    for chart in charts:
        objects = {r["urn"] for r in indri_plan("1").resources if runbook.chart_of(r, {
            x["urn"]: x for x in indri_plan("1").resources}) == chart}
        assert objects and objects == {s.urn for s in book.steps if s.chart == chart}
    assert wave["tailscale-operator-namespace"] < wave["tailscale-operator-oauth"] < wave["tailscale-operator-chart^"]
    assert wave["tailscale-operator-chart$"] < wave["tailscale-operator-proxy-class"] < wave["argocd-ingress"]
    assert wave["argocd-repo-creds-forge"] < wave["argocd-chart^"]
    assert wave["argocd-chart$"] < wave["argocd-ingress"]
    assert wave["cloudnative-pg-chart$"] < wave["blumeops-pg-cluster"]
    assert wave["blumeops-pg-eblume"] < wave["blumeops-pg-cluster"]
    assert wave["tailscale-operator-chart:tailscale/operator"] >= wave["tailscale-operator-chart^"]
    assert {c["name"] for c in book.checks} == {"argocd /healthz", "postgres k8s-pg:5432"}
    text = runbook.markdown(book, "build/plan/indri")
    # one row per chart and wave, numbered by the steps it stands for
    crds = sum(1 for s in book.steps if s.chart == "cloudnative-pg-chart" and s.resource["type"].endswith(
        ":CustomResourceDefinition"))
    assert crds and ("objects of the chart `cloudnative-pg-chart` | 1 | deploys them (Pulumi waits until each is "
                     f"ready) | {crds} CustomResourceDefinition") in text
    assert "`cloudnative-pg-chart:" not in text.split("### Critical path")[0]
    numbers = [row.split(" | ")[0].removeprefix("| ") for row in text.splitlines()
               if row.startswith("| ") and row[2].isdigit()]
    assert int(numbers[-1].split("-")[-1]) == len(book.steps)
    assert text.startswith("# Runbook: stack indri, phase 0 → 1 (forward)")
    assert "`pulumi config set blumeops:phase 1 && make up` performs" in text
    assert "| argocd /healthz | http | operator | 1 | `argocd` |" in text


def test_rolling_back_phase_one_keeps_the_database(indri_plan: PlanOf) -> None:
    book = book_of(indri_plan, "1", "0")
    assert [urn.rsplit("::", 1)[1] for urn in book.protected] == ["blumeops-pg-cluster"]
    held = {urn.rsplit("::", 1)[1] for urn in book.held_back}
    assert {"blumeops-pg-namespace", "blumeops-pg-eblume"} <= held
    # the operator the Cluster needs stays: every object its chart rendered
    operator = {r["urn"] for r in indri_plan("1").resources if r["name"].startswith("cloudnative-pg-chart:")}
    assert operator and operator <= set(book.held_back)
    assert not any(s.chart == "cloudnative-pg-chart" for s in book.steps)
    names = {s.resource["name"] for s in book.steps}
    assert "argocd-chart:argocd/argocd-server" in names and "blumeops-pg-cluster" not in names
    assert {s.chart for s in book.steps} == {None, "argocd-chart", "tailscale-operator-chart"}
    restores = {item["component"]: item["undo"] for item in book.restores}
    assert "removes the Ingress" in restores["argocd"]
    text = runbook.markdown(book, "build/plan/indri")
    assert "## State that stays" in text and "pulumi state unprotect" in text
    assert "make up` stops before it changes anything: Pulumi refuses to delete a protected resource" in text
    assert f"- the chart `cloudnative-pg-chart` ({len(operator)} objects) stays with it" in text
    assert "Checks that no longer apply: argocd /healthz, postgres k8s-pg:5432" in text


def test_raising_one_to_two_retires_grafana_and_releases_its_name_before_the_ingress(indri_plan: PlanOf) -> None:
    assert {("0", "1"), ("1", "2"), ("2", "3")} <= set(PAIRS), "the generic tests cover every implemented pair"
    book = book_of(indri_plan, "1", "2")
    wave = waves(book)
    steps = {s.resource["name"]: s for s in book.steps}
    retire, release = steps["grafana-cutover-retirement-retire"], steps["grafana-cutover-release-service"]
    assert retire.script == "components/host/scripts/retire.sh"
    # its stdin holds a secret: the plan JSON shows [secret], its rendered script (the artifacts) names it
    assert release.script == "components/host/scripts/retire-tailscale-service.sh"
    assert retire.urn in release.after
    # the chart's workloads are deployed (and ready) before the brew Grafana stops: the name is never empty
    assert wave["grafana-chart$"] < wave["grafana-cutover-retirement-retire"]
    assert wave["grafana-cutover-retirement-retire"] < wave["grafana-cutover-release-service"] < wave["grafana-ingress"]
    assert release.urn in steps["grafana-ingress"].after
    # each step says what it does, from its own declaration
    assert retire.effect.startswith("records and stops brew service grafana and clears the serve entry of "
                                    "svc:grafana")
    assert release.effect.startswith("DELETEs the Tailscale Service svc:grafana")
    assert steps["grafana-data"].effect == ("creates PersistentVolumeClaim monitoring/grafana, or takes back the one "
                                            "a rollback kept, data and all")
    assert all(step.effect for step in book.steps)
    assert {s.resource["phase"] for s in book.steps} == {"2"}
    assert {c["name"] for c in book.checks} == {"grafana /api/health"}
    text = runbook.markdown(book, "build/plan/indri")
    rows = text.split("## Steps", 1)[1]
    assert rows.index("objects of the chart `grafana-chart`") < rows.index("`grafana-cutover-retirement-retire`") \
        < rows.index("`grafana-cutover-release-service`") < rows.index("`grafana-ingress`")
    assert "| records and stops brew service grafana" in rows
    assert "`components/host/scripts/retire-tailscale-service.sh` (create); rendered: " \
        "`build/plan/indri/host/scripts/grafana-cutover-release-service.sh`" in text


def test_the_first_up_lists_the_manual_preconditions_and_host_scripts(indri_plan: PlanOf) -> None:
    book = runbook.build_runbook(document(indri_plan, runbook.NONE), document(indri_plan, "0"))
    preconditions = {item["text"].split(" ", 2)[1]: item["checkedBy"] for item in book.preconditions}
    assert preconditions["zot"] == ["zot-config"]
    assert preconditions["Desktop"] == ["minikube-cluster"]
    steps = {s.resource["name"]: s for s in book.steps}
    assert steps["minikube-cluster"].script == "components/host/scripts/minikube-cluster.sh"
    assert steps["zot-config"].script == "components/host/scripts/zot-config.sh"
    assert steps["zot-agent-install"].script == "components/host/scripts/launch-agent.sh"
    assert steps["zot-config"].wave < steps["zot-agent-install"].wave < steps["zot-ready"].wave
    assert steps["zot-ready"].wave < steps["zot-serve-entry"].wave
    assert steps["minikube-cluster"].wave < steps["minikube-kubeconfig"].wave < steps["minikube"].wave
    text = runbook.markdown(book, "build/plan/indri")
    assert "- [ ] Docker Desktop installed through its GUI" in text


def test_the_command_prints_markdown_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "--from", "0", "--to", "1"]) == 0
    text = capsys.readouterr().out
    assert "## Steps" in text and "### Critical path" in text
    assert main(["runbook", "--from", "1", "--to", "0", "--json"]) == 0
    book = json.loads(capsys.readouterr().out)
    assert book["direction"] == "rollback" and book["from"] == "1" and book["to"] == "0"
    assert len(book["waves"]) == len(book["criticalPath"])
    # deletes, and Argo CD's CRDs, which its chart keeps (helm.sh/resource-policy: keep -> retain_on_delete)
    assert {step["action"] for step in book["steps"]} == {"delete", "keep"}
    assert all(step["type"].endswith(":CustomResourceDefinition") for step in book["steps"] if step["action"] == "keep")
    assert {step["chart"] for step in book["steps"] if step["name"].startswith("argocd-chart:")} == {"argocd-chart"}
    assert all(step["name"].startswith(step["chart"] + ":") for step in book["steps"] if "chart" in step)


@pytest.mark.slow  # runs the whole CLI (or Helm) again in a subprocess
def test_the_runbook_is_the_same_on_every_run() -> None:
    """Waves tie often (a chart's objects): the critical path must not follow Python's string hashing."""
    books = []
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, "-m", "ops", "runbook", "--from", "1", "--to", "2", "--json"],
                              cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True,
                              check=True, timeout=300)
        books.append(json.loads(done.stdout))
    assert books[0] == books[1] == books[2]


def test_a_changed_identity_replaces_and_other_changes_update(indri_plan: PlanOf) -> None:
    base = indri_plan("1").document
    head = json.loads(json.dumps(base))
    by_name = {r["name"]: r for r in head["resources"]}
    by_name["zot-config"]["inputs"]["triggers"] = ["/elsewhere/config.json"]
    by_name["zot-ready"]["inputs"]["stdin"] = by_name["zot-ready"]["inputs"]["stdin"] + "\n# changed\n"
    service = by_name["blumeops-pg-tailscale"]
    service["inputs"]["metadata"]["annotations"]["tailscale.com/hostname"] = "pg"
    service["options"]["replaceOnChanges"] = ['metadata.annotations["tailscale.com/hostname"]']
    by_name["argocd-namespace"]["inputs"]["metadata"]["name"] = "argo"
    book = runbook.build_runbook(base, head)
    actions = {s.resource["name"]: s.action for s in book.steps}
    assert actions == {"zot-config": "replace", "zot-ready": "update", "blumeops-pg-tailscale": "replace",
                       "argocd-namespace": "replace"}
    text = runbook.markdown(book, "build/plan/indri")
    assert "| replace (delete first) | `blumeops-pg-tailscale`" in text


def test_bad_arguments_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runbook", "--from", "1", "--to", "1"]) == 1
    assert "--from and --to are both 1" in capsys.readouterr().err
    assert main(["runbook", "--from", "0", "--to", "1", "--to-plan", str(tmp_path / "missing.json")]) == 1
    assert "cannot read plan" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["runbook", "--from", "0", "--to", "none"])


def test_lowering_two_to_one_restarts_grafana_keeps_its_data_and_says_how_to_check(indri_plan: PlanOf) -> None:
    book = book_of(indri_plan, "2", "1")
    steps = {s.resource["name"]: s for s in book.steps}
    assert steps["grafana-cutover-retirement-retire"].effect.startswith("restarts brew service grafana as recorded")
    assert steps["grafana-cutover-release-service"].effect.startswith("recreates svc:grafana")
    assert {steps[name].action for name in ("grafana-data", "grafana-namespace")} == {runbook.KEEP}
    assert {urn.rsplit("::", 1)[-1] for urn in book.kept} == {"grafana-data", "grafana-namespace"}
    assert book.protected == []
    # the checks that prove the brew Grafana is back: its launchd job, and its name answering
    restored = {c["name"]: c for c in book.restored_checks}
    assert restored["launchd homebrew.mxcl.grafana"]["side"] == "host"
    assert restored["grafana /api/health (legacy)"]["target"] == "https://grafana.{tailnet}/api/health"
    text = runbook.markdown(book, "build/plan/indri")
    assert "## Checks that prove the legacy services are back" in text
    assert "- `grafana-data`: kept in the cluster with its data" in text
    assert "performs 15 steps" in text and "Protected" not in text.split("## State that stays", 1)[1]
