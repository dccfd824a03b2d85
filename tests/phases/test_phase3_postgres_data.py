"""Phase 3 as the program builds it: the import of the legacy database and borgmatic, and phase 4's amendment."""

from __future__ import annotations

import pytest
from phase_runner import Run, run_phase


@pytest.fixture(scope="module")
def phase3() -> Run:
    return run_phase("3")


def test_the_import_restores_into_the_cluster_through_its_tailnet_name_after_the_cluster(phase3: Run) -> None:
    step = phase3.named("miniflux-import-restore")
    component = phase3.named("miniflux-import")
    assert component["inputs"]["target"] == "miniflux on k8s-pg.tail8d86e.ts.net:5432 as eblume"
    assert component["inputs"]["owner"] == "miniflux"
    # depending on the component is depending on its children: the Cluster and its LoadBalancer
    for waiting in (component, phase3.named("borgmatic")):
        assert {phase3.named("blumeops-pg-cluster")["urn"], phase3.named("blumeops-pg-tailscale")["urn"]} \
            <= set(waiting["options"]["dependsOn"])
    assert step["inputs"]["stdin"] == "[secret]"  # it carries the eblume password
    assert step["inputs"]["create"] == "/bin/bash -euo pipefail -s -- create"


def test_borgmatic_backs_up_the_legacy_and_the_cluster_database_during_phase_3(phase3: Run) -> None:
    assert phase3.named("borgmatic")["inputs"]["databases"] == [
        "localhost:5432/miniflux", "k8s-pg.tail8d86e.ts.net:5432/miniflux"]
    config = phase3.named("borgmatic")["inputs"]["artifacts"]["host/borgmatic/config.yaml"]
    assert "local_path: /opt/homebrew/bin/borg" in config
    assert "/opt/homebrew/opt/postgresql@18/bin/pg_dump" in config


def test_from_phase_4_only_the_cluster_database_at_pg() -> None:
    """Phase 4's amendments (phases/p4_miniflux.py): borgmatic follows the name pg; the import stays where it ran."""
    run = run_phase("3", target="4")
    assert run.named("borgmatic")["inputs"]["databases"] == ["pg.tail8d86e.ts.net:5432/miniflux"]
    assert run.named("miniflux-import")["inputs"]["target"] == "miniflux on k8s-pg.tail8d86e.ts.net:5432 as eblume"


def test_no_password_shows_in_plan_form(phase3: Run) -> None:
    text = str([r["inputs"] for r in phase3.resources])
    for key, fake in phase3.fake_secrets.items():
        assert fake not in text, key
