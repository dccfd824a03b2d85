"""The policy pack judges what a chart deploys, not only the values the program sets: a chart default the
program does not override (an amd64-only image, a floating `latest`) fails `ops plan`, naming the chart, the
object and the image; the report stays one line per blocking finding."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops import __main__ as cli
from ops import charts
from ops import plan as offline_plan
from ops.engine import analyzer

FORGEJO = {"chart": "oci://code.forgejo.org/forgejo-helm/forgejo", "version": "15.0.3", "namespace": "forgejo",
           "resource_name": "forgejo-chart", "name": "forgejo"}
TAILSCALE = {"chart": "tailscale-operator", "version": "1.102.3", "repo": "https://pkgs.tailscale.com/helmcharts",
             "namespace": "tailscale", "resource_name": "operator", "name": "tailscale-operator",
             "values": {"installCRDs": False, "oauthSecretVolume": {"secret": {"secretName": "operator-oauth"}}}}


def plan_command(monkeypatch: pytest.MonkeyPatch, program: Path, capsys: pytest.CaptureFixture[str],
                 *extra: str) -> tuple[int, str]:
    real = offline_plan.build_plan
    monkeypatch.setattr(cli.offline_plan, "build_plan", lambda stack, **hooks: real(stack, program, **hooks))
    monkeypatch.setattr(cli.offline_plan, "write_artifacts", lambda plan, directory: None)
    code = cli.main(["plan", "--stack", "indri", "--phase", "0", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


DEMO_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"""


def demo_chart(cache: Path) -> charts.LockedChart:
    """A chart whose default image floats on `latest`, pinned in a lock of its own."""
    directory = cache / "demo-1.0.0"
    (directory / "templates").mkdir(parents=True)
    (directory / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 1.0.0\nappVersion: '1.27'\n")
    (directory / "values.yaml").write_text("image:\n  repository: docker.io/library/nginx\n  tag: latest\n")
    (directory / "templates" / "deployment.yaml").write_text(DEMO_DEPLOYMENT)
    return charts.LockedChart(name="demo", version="1.0.0", repository="https://charts.example.com",
                              directory="demo-1.0.0", digest=charts.tree_digest(directory))


def test_a_latest_chart_default_fails_the_plan_naming_chart_object_and_image(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from chart_tools import write_chart_program

    cache = tmp_path / "cache"
    lock = charts.Lock((demo_chart(cache),), tmp_path / "charts.lock.yaml")
    charts.write_lock(lock)
    monkeypatch.setattr(charts, "LOCK_FILE", lock.path)
    monkeypatch.setenv(charts.CACHE_ENV, str(cache))
    program = write_chart_program(tmp_path / "program", [
        {"chart": "demo", "version": "1.0.0", "repo": "https://charts.example.com", "namespace": "web",
         "resource_name": "demo-chart", "name": "demo"}])
    code, out = plan_command(monkeypatch, program, capsys)
    assert code == 1
    blocking = [line for line in out.splitlines() if line.startswith("  MANDATORY")]
    assert len(blocking) == 1, out
    assert "Deployment 'demo-chart:web/demo-web'" in blocking[0]
    assert "docker.io/library/nginx:latest" in blocking[0] and "floating tag `latest`" in blocking[0]
    assert blocking[0].endswith("[chart demo 1.0.0]")
    assert "mandatory policy violation(s); the plan is refused" in out


def test_a_test_hook_is_not_judged_because_it_is_never_applied(chart_plan: Any) -> None:
    """forgejo's `helm test` Pod runs busybox:latest; the v4 Chart does not apply hooks, so neither the plan
    nor the pack sees it."""
    plan = chart_plan(FORGEJO)
    kinds = {(r["inputs"].get("kind"), r["inputs"].get("metadata", {}).get("name")) for r in plan.resources}
    assert ("Deployment", "forgejo") in kinds
    assert not any(kind == "Pod" for kind, _ in kinds)
    assert "busybox" not in plan.text()


def test_an_amd64_only_chart_default_fails_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from chart_tools import write_chart_program

    pack = tmp_path / "policy"
    shutil.copytree(offline_plan.ROOT / "policy", pack, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    catalog = yaml.safe_load((pack / "images.yaml").read_text())
    catalog["images"]["docker.io/tailscale/k8s-operator:v1.102.3"]["platforms"] = ["linux/amd64"]
    (pack / "images.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    monkeypatch.setattr(analyzer, "DEFAULT_POLICY_DIR", pack)
    program = write_chart_program(tmp_path / "program", [TAILSCALE])
    code, out = plan_command(monkeypatch, program, capsys)
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("  MANDATORY")]
    assert "Deployment 'operator:tailscale/operator'" in line
    assert "tailscale/k8s-operator:v1.102.3" in line and "arm64" in line
    assert line.endswith("[chart tailscale-operator 1.102.3]")


def test_the_report_is_one_line_per_blocking_finding_and_advisories_grouped() -> None:
    advisories = [analyzer.Violation("images-verified", "advisory", f"urn:{i}", f"image {i} not verified\ndetail",
                                     description="Images have been checked.") for i in range(5)]
    blocking = analyzer.Violation("arm64-images", "mandatory", "urn:x", "Deployment 'x' runs amd64\nwhy\nfix")
    violations = (*advisories, blocking)
    report = analyzer.AnalysisReport("blumeops", "0.0.1", (), violations, 6)
    text = analyzer.render_report(report, io.StringIO(), origins={"urn:x": "chart demo 1.0.0"})
    lines = text.splitlines()
    assert lines[1] == "  MANDATORY  arm64-images     Deployment 'x' runs amd64 [chart demo 1.0.0]"
    assert lines[2] == "  ADVISORY   images-verified  5 findings: Images have been checked."
    assert "--verbose" in lines[3]
    assert len(lines) == 5
    verbose = analyzer.render_report(report, io.StringIO(), verbose=True).splitlines()
    assert sum("not verified" in line for line in verbose) == 5 and any("urn:x" in line for line in verbose)


def test_the_phase_1_plan_passes_the_pack_with_every_chart_rendered(phase1_plan: offline_plan.Plan) -> None:
    report = offline_plan.check_policy(phase1_plan)
    assert report.ok, [v.message for v in report.mandatory]
    assert report.resources_analyzed == len(phase1_plan.resources)
    judged = {v.urn for v in report.violations}
    assert any("$kubernetes:apps/v1:Deployment::" in urn for urn in judged)  # rendered objects are judged

