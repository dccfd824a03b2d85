"""Phase 2 as the program builds it: the cutover order of the brew Grafana, svc:grafana and the Ingress."""

from __future__ import annotations

from collections.abc import Callable

import phase_runner
import pytest
from phase_runner import Run, run_phase

from ops import plan as offline_plan


@pytest.fixture(scope="module")
def phase2() -> Run:
    return run_phase("2")


def waits_for(run: Run, name: str, target: str) -> bool:
    return phase_runner.waits_for(run.resources, run.named(name), run.named(target))


def test_the_ingress_claims_the_name_after_the_brew_grafana_and_svc_grafana_let_it_go(phase2: Run) -> None:
    assert waits_for(phase2, "grafana-ingress", "grafana-cutover-retirement-retire")
    assert waits_for(phase2, "grafana-ingress", "grafana-cutover-release-service")
    assert waits_for(phase2, "grafana-cutover-release-service", "grafana-cutover-retirement-retire")
    ingress = phase2.named("grafana-ingress")["inputs"]
    assert ingress["spec"]["ingressClassName"] == "tailscale"
    assert ingress["spec"]["tls"] == [{"hosts": ["grafana"]}]
    assert phase2.exports["endpoints"]["grafana"] == "https://grafana.tail8d86e.ts.net"


def test_the_retirement_stops_the_brew_service_and_clears_svc_grafana(phase2: Run) -> None:
    retirement = phase2.named("grafana-cutover-retirement")["inputs"]
    text = str(retirement)
    assert "grafana" in text and "svc:grafana" in text
    stdin = phase2.named("grafana-cutover-retirement-retire")["revealed"]["stdin"]
    assert "/opt/homebrew/bin/brew" in stdin and "svc:grafana" in stdin


def test_the_volume_is_kept_by_a_rollback_and_no_secret_shows(phase2: Run) -> None:
    for name in ("grafana-data", "grafana-namespace"):
        options = phase2.named(name)["options"]
        assert options["retainOnDelete"] and not options["protect"], name
    text = str([r["inputs"] for r in phase2.resources])
    for key, fake in phase2.fake_secrets.items():
        assert fake not in text, key


def test_at_target_1_nothing_of_phase_2_exists(indri_plan: Callable[[str | None], offline_plan.Plan]) -> None:
    names = {r["name"] for r in indri_plan("1").resources}
    assert not names & {"p2-grafana", "grafana", "grafana-ingress", "grafana-cutover-release-service"}
    at_two = {r["name"] for r in indri_plan("2").resources}
    assert {"p2-grafana", "grafana-ingress", "grafana-cutover-retirement-retire"} <= at_two


def test_the_plan_tree_shows_the_cutover_order(indri_plan: Callable[[str | None], offline_plan.Plan]) -> None:
    lines = offline_plan.tree_lines(indri_plan("2"))
    start = next(i for i, line in enumerate(lines) if line.startswith("P2 Grafana"))
    body = [line.strip() for line in lines[start:]]
    order = [next(i for i, line in enumerate(body) if line.endswith(name))
             for name in ("grafana-cutover-retirement-retire", "grafana-cutover-release-service", "grafana-ingress")]
    assert order == sorted(order)
