"""Phase 4 as the program builds it: Miniflux's cutover with its data carried, and the name pg moving to the
cluster; the amendments of phases 1 and 3 it states; the plans at 3 and 4 through `ops diff` and the runbook."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import phase_runner
import pytest
from phase_runner import Run, run_phase

from ops import plan as offline_plan
from ops import runbook
from ops.stack import ROOT

PlanOf = Callable[[str | None], offline_plan.Plan]


@pytest.fixture(scope="module")
def phase4() -> Run:
    return run_phase("4")


def waits_for(run: Run, name: str, target: str) -> bool:
    return phase_runner.waits_for(run.resources, run.named(name), run.named(target))


def test_the_feed_cutover_carries_the_last_writes_before_anything_serves_feed(phase4: Run) -> None:
    order = ["miniflux-database", "miniflux-cutover-retirement-retire", "miniflux-final-sync-restore",
             "miniflux-deployment", "miniflux-cutover-release-service", "miniflux-ingress"]
    for earlier, later in itertools.pairwise(order):
        assert waits_for(phase4, later, earlier), f"{later} must wait for {earlier}"
    # ... and never the other way round: the legacy Miniflux stops before the cluster's starts
    assert not waits_for(phase4, "miniflux-cutover-retirement-retire", "miniflux-deployment")
    assert not waits_for(phase4, "miniflux-final-sync-restore", "miniflux-deployment")
    # the final sync repeats phase 3's import, after it
    assert waits_for(phase4, "miniflux-final-sync-restore", "miniflux-import-restore")


def test_the_pg_name_moves_after_the_final_sync_and_a_backup_of_the_legacy_database(phase4: Run) -> None:
    order = ["miniflux-final-sync-restore", "pg-cutover-retirement-retire",
             "pg-cutover-release-service", "pg-load-balancer"]
    for earlier, later in itertools.pairwise(order):
        assert waits_for(phase4, later, earlier), f"{later} must wait for {earlier}"
    retire = phase4.named("pg-cutover-retirement-retire")["revealed"]["stdin"]
    assert "readonly NAME=postgresql@18" in retire and "readonly SERVE_SERVICE=svc:pg" in retire
    service = phase4.named("pg-load-balancer")["inputs"]
    assert service["metadata"]["name"] == "pg-tailscale" and service["metadata"]["namespace"] == "databases"
    assert service["metadata"]["annotations"]["tailscale.com/hostname"] == "pg"
    assert service["metadata"]["annotations"]["tailscale.com/tags"] == "tag:pg"
    assert service["spec"]["type"] == "LoadBalancer" and service["spec"]["loadBalancerClass"] == "tailscale"
    assert service["spec"]["selector"] == {"cnpg.io/cluster": "blumeops-pg", "cnpg.io/instanceRole": "primary"}
    assert [p["port"] for p in service["spec"]["ports"]] == [5432]


def test_miniflux_runs_as_the_homelab_ran_it(phase4: Run) -> None:
    deployment = phase4.named("miniflux-deployment")["inputs"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/miniflux/miniflux:2.2.16"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env == {
        "DATABASE_URL": {"secretKeyRef": {"name": "miniflux-db", "key": "url"}},
        "RUN_MIGRATIONS": "1",
        "BASE_URL": "https://feed.tail8d86e.ts.net/",
        "POLLING_FREQUENCY": "60",
        "BATCH_SIZE": "100",
        "POLLING_SCHEDULER": "entry_frequency",
        "CLEANUP_ARCHIVE_UNREAD_DAYS": "180",
        "CLEANUP_ARCHIVE_READ_DAYS": "60",
    }
    assert container["resources"] == {"requests": {"memory": "64Mi", "cpu": "50m"},
                                      "limits": {"memory": "256Mi", "cpu": "200m"}}
    for probe, delay, period in (("livenessProbe", 10, 30), ("readinessProbe", 5, 10)):
        assert container[probe] == {"httpGet": {"path": "/healthcheck", "port": 8080},
                                    "initialDelaySeconds": delay, "periodSeconds": period}
    assert container["ports"] == [{"name": "http", "containerPort": 8080}]
    ingress = phase4.named("miniflux-ingress")["inputs"]
    assert ingress["spec"]["tls"] == [{"hosts": ["feed"]}]
    assert ingress["metadata"]["annotations"]["tailscale.com/tags"] == "tag:feed"
    assert ingress["spec"]["defaultBackend"]["service"] == {"name": "miniflux", "port": {"number": 8080}}
    assert phase4.exports["endpoints"]["miniflux"] == "https://feed.tail8d86e.ts.net/"


def test_the_database_url_is_built_from_the_role_password_and_never_shown(phase4: Run) -> None:
    secret = phase4.named("miniflux-database")
    assert secret["inputs"]["stringData"] == "[secret]"
    url = urlparse(secret["revealed"]["stringData"]["url"])
    assert (url.scheme, url.hostname, url.port, url.path) == (
        "postgres", "blumeops-pg-rw.databases.svc.cluster.local", 5432, "/miniflux")
    assert url.username == "miniflux" and url.query == "sslmode=require"
    assert unquote(url.password or "") == phase4.fake_secrets["blumeops:miniflux.databasePassword"]
    text = json.dumps([r["inputs"] for r in phase4.resources])
    for key, fake in phase4.fake_secrets.items():
        assert fake not in text, key


def test_the_deployment_waits_for_the_cluster_that_manages_its_role(phase4: Run) -> None:
    assert waits_for(phase4, "miniflux-deployment", "blumeops-pg-cluster")
    assert waits_for(phase4, "miniflux-deployment", "miniflux-database")


def test_a_missing_backup_stops_the_update_before_anything_stops(phase4: Run) -> None:
    """The archive check runs first: both retirements wait for it, so a failing check leaves every legacy
    service serving (and borgmatic keeps dumping the legacy database until the brew PostgreSQL is retired)."""
    for retirement in ("miniflux-cutover-retirement-retire", "pg-cutover-retirement-retire"):
        assert waits_for(phase4, retirement, "legacy-postgres-backup-check"), retirement
    check = phase4.named("legacy-postgres-backup-check")["revealed"]["stdin"]
    assert "readonly ARCHIVE_PATH=borgmatic/postgresql_databases/localhost:5432/miniflux" in check
    assert not phase4.named("legacy-postgres-backup-check")["options"]["dependsOn"]


def test_at_4_phase_1_manages_the_miniflux_role_and_k8s_pg_is_gone(indri_plan: PlanOf) -> None:
    by_name = {r["name"]: r for r in indri_plan("4").document["resources"]}
    roles = by_name["blumeops-pg-cluster"]["inputs"]["spec"]["managed"]["roles"]
    miniflux = next(role for role in roles if role["name"] == "miniflux")
    assert miniflux["passwordSecret"] == {"name": "blumeops-pg-miniflux"} and miniflux["login"]
    assert "blumeops-pg-tailscale" not in by_name
    assert by_name["pg-load-balancer"]["phase"] == "4"
    # borgmatic dumps only the cluster's database, at its new name; the import stays where it ran
    assert by_name["borgmatic"]["inputs"]["databases"] == ["pg.tail8d86e.ts.net:5432/miniflux"]
    assert by_name["miniflux-import"]["inputs"]["target"] == "miniflux on k8s-pg.tail8d86e.ts.net:5432 as eblume"
    assert indri_plan("4").document["exports"]["endpoints"]["postgres"] == "postgresql://pg.tail8d86e.ts.net:5432"


def _waves(before: offline_plan.Plan, after: offline_plan.Plan) -> dict[str, int]:
    book = runbook.build_runbook(before.document, after.document)
    return {str(step.resource["name"]): step.wave for step in book.steps}


def test_from_3_to_4_k8s_pg_goes_last_after_pg_serves(indri_plan: PlanOf) -> None:
    wave = _waves(indri_plan("3"), indri_plan("4"))
    assert wave["blumeops-pg-tailscale"] == max(wave.values())
    # borgmatic stops dumping the legacy database only once the brew PostgreSQL is retired
    assert wave["borgmatic-config"] > wave["pg-cutover-retirement-retire"]
    assert wave["pg-load-balancer"] < wave["blumeops-pg-tailscale"]
    assert wave["miniflux-final-sync-restore"] < wave["pg-cutover-retirement-retire"]


def test_from_4_to_3_the_cluster_writes_go_back_before_the_brew_miniflux_starts(indri_plan: PlanOf) -> None:
    wave = _waves(indri_plan("4"), indri_plan("3"))
    # k8s-pg back first (the final sync's undo reaches the cluster there), the pg name handed back in reverse
    assert wave["blumeops-pg-tailscale"] < wave["miniflux-final-sync-restore"]
    assert wave["pg-load-balancer"] < wave["pg-cutover-release-service"] < wave["pg-cutover-retirement-retire"]
    # the brew PostgreSQL runs again and the cluster's Miniflux is gone before the writes are carried back
    assert wave["pg-cutover-retirement-retire"] < wave["miniflux-final-sync-restore"]
    assert wave["miniflux-deployment"] < wave["miniflux-final-sync-restore"]
    assert wave["miniflux-final-sync-restore"] < wave["miniflux-cutover-retirement-retire"]


def _write(tmp: Path, name: str, plan: offline_plan.Plan) -> Path:
    path = tmp / name
    path.write_text(json.dumps(plan.document))
    return path


def test_ops_diff_between_3_and_4_exits_0_and_names_the_moved_name(indri_plan: PlanOf, tmp_path: Path) -> None:
    three, four = _write(tmp_path, "3.json", indri_plan("3")), _write(tmp_path, "4.json", indri_plan("4"))
    forward = subprocess.run([sys.executable, "-m", "ops", "diff", str(three), str(four)], cwd=ROOT,
                             capture_output=True, text=True, check=False)
    assert forward.returncode == 0, forward.stdout + forward.stderr
    lines = forward.stdout.splitlines()
    # the name moves: phase 4's LoadBalancer is added, phase 1's k8s-pg removed (a new device, not a rename)
    assert any(line.startswith("+ ") and line.endswith("$kubernetes:core/v1:Service::pg-load-balancer")
               for line in lines)
    assert any(line.startswith("- ") and line.endswith("$kubernetes:core/v1:Service::blumeops-pg-tailscale")
               for line in lines)
    back = subprocess.run([sys.executable, "-m", "ops", "diff", str(four), str(three)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert back.returncode == 0, back.stdout + back.stderr
    assert back.stdout.rstrip().endswith("(1 kept in the cluster)")  # the namespace miniflux
