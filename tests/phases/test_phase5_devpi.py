"""Phase 5 as the program builds it: the devpi image built on indri, the StatefulSet with the host server's
data moved in, the cutover at pypi, and borgmatic letting the host's server directory go."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import phase_runner
import pytest
from phase_runner import Run, run_phase

from components.host.devpi_image import DEVPI_CONTEXT, content_tag, context_files
from ops import plan as offline_plan
from ops import runbook
from ops.engine.harness import FAKE_IMPORT_IMAGE
from ops.stack import ROOT

PlanOf = Callable[[str | None], offline_plan.Plan]
TAG = content_tag(context_files(DEVPI_CONTEXT))


@pytest.fixture(scope="module")
def phase5() -> Run:
    return run_phase("5")


def waits_for(run: Run, name: str, target: str) -> bool:
    return phase_runner.waits_for(run.resources, run.named(name), run.named(target))


def test_the_data_moves_after_the_agent_stopped_and_before_anything_serves_pypi(phase5: Run) -> None:
    order = ["devpi-image-build", "devpi-cutover-retirement-retire", "devpi-move-export", "devpi-stateful-set",
             "devpi-cutover-release-service", "devpi-ingress"]
    for earlier, later in itertools.pairwise(order):
        assert waits_for(phase5, later, earlier), f"{later} must wait for {earlier}"
    for staged in ("devpi-data", "devpi-root", "devpi-service", "devpi-namespace"):
        assert waits_for(phase5, "devpi-cutover-retirement-retire", staged)
    assert not waits_for(phase5, "devpi-cutover-retirement-retire", "devpi-stateful-set")
    retire = phase5.named("devpi-cutover-retirement-retire")["revealed"]["stdin"]
    assert "readonly KIND=agent" in retire and "readonly NAME=mcquack.eblume.devpi" in retire
    assert "readonly SERVE_SERVICE=svc:pypi" in retire
    export = phase5.named("devpi-move-export")["revealed"]["stdin"]
    assert "readonly SERVER_DIR=/Users/erichblume/devpi" in export


def test_the_stateful_set_runs_the_image_the_program_built(phase5: Run) -> None:
    spec = phase5.named("devpi-stateful-set")["inputs"]["spec"]
    assert spec["serviceName"] == "devpi" and spec["replicas"] == 1
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == 1000
    (container,) = pod["containers"]
    assert container["image"] == f"registry.tail8d86e.ts.net/blumeops/devpi:{TAG}"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert "DEVPI_PORT" not in env  # Kubernetes injects it for a Service called devpi
    assert env["DEVPI_LISTEN_PORT"] == "3141" and env["DEVPI_OUTSIDE_URL"] == "https://pypi.tail8d86e.ts.net"
    assert env["DEVPI_ROOT_PASSWORD"] == {"secretKeyRef": {"name": "devpi-root", "key": "password"}}
    assert container["resources"] == {"requests": {"memory": "256Mi", "cpu": "100m"},
                                      "limits": {"memory": "2Gi", "cpu": "500m"}}
    assert container["livenessProbe"]["httpGet"] == {"path": "/+api", "port": 3141}
    assert container["volumeMounts"] == [{"name": "data", "mountPath": "/devpi"}]
    (template,) = spec["volumeClaimTemplates"]
    assert template["metadata"]["name"] == "data"
    assert template["spec"]["resources"]["requests"]["storage"] == "50Gi"
    # the host server's export, imported once by the init container into the same volume
    (init,) = pod["initContainers"]
    assert init["image"] == FAKE_IMPORT_IMAGE and init["args"] == ["init"]
    assert {e["name"]: e.get("value") for e in init["env"]}["DEVPI_IMPORT_DIR"] == "/import"
    assert init["volumeMounts"] == [{"name": "data", "mountPath": "/devpi"}]


def test_the_claim_and_namespace_outlive_a_rollback(phase5: Run) -> None:
    claim = phase5.named("devpi-data")
    assert claim["inputs"]["metadata"]["name"] == "data-devpi-0"  # the one the StatefulSet's template claims
    for name in ("devpi-data", "devpi-namespace"):
        assert phase5.named(name)["options"]["retainOnDelete"], name
    ingress = phase5.named("devpi-ingress")["inputs"]
    assert ingress["spec"]["tls"] == [{"hosts": ["pypi"]}]
    assert ingress["metadata"]["annotations"]["tailscale.com/tags"] == "tag:devpi"
    assert phase5.exports["endpoints"]["devpi"] == "https://pypi.tail8d86e.ts.net"
    text = json.dumps([r["inputs"] for r in phase5.resources])
    for key, fake in phase5.fake_secrets.items():
        assert fake not in text, key


def test_borgmatic_lets_the_host_server_directory_go_from_phase_5(indri_plan: PlanOf) -> None:
    def sources(target: str) -> list[str]:
        borgmatic = next(r for r in indri_plan(target).resources if r["name"] == "borgmatic")
        return list(borgmatic["inputs"]["sourceDirectories"])

    assert "/Users/erichblume/devpi" in sources("4")
    book = runbook.build_runbook(indri_plan("4").document, indri_plan("5").document)
    wave = {str(step.resource["name"]): step.wave for step in book.steps}
    assert wave["borgmatic-config"] > wave["devpi-stateful-set"]  # after the import served
    assert "/Users/erichblume/devpi" not in sources("5")
    assert [s for s in sources("4") if s != "/Users/erichblume/devpi"] == sources("5")


def test_ops_diff_5_to_4_exits_0_and_lists_the_kept_claim(indri_plan: PlanOf, tmp_path: Path) -> None:
    four, five = tmp_path / "4.json", tmp_path / "5.json"
    four.write_text(json.dumps(indri_plan("4").document))
    five.write_text(json.dumps(indri_plan("5").document))
    back = subprocess.run([sys.executable, "-m", "ops", "diff", str(five), str(four)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "devpi-data" in back.stdout and "(2 kept in the cluster)" in back.stdout
