"""ops.engine.analyzer: the served pack judges recorded resources as the engine would."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.engine.analyzer import (
    AnalysisReport,
    AnalyzerError,
    AnalyzerProvider,
    AnalyzerResource,
    PolicyAnalyzer,
    Violation,
    analyze,
    analyze_request,
    render_report,
)

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_MARK = "1b47061264138c4ac30d75fd1eb44270"
HOME = "/Users/erichblume"


def launch_agent(program: str) -> AnalyzerResource:
    return AnalyzerResource(
        urn="urn:pulumi:indri::blumeops::blumeops:phase:Phase$blumeops:host:LaunchAgent::zot",
        type="blumeops:host:LaunchAgent",
        name="zot",
        properties={
            "label": "mcquack.eblume.zot",
            "plistPath": f"{HOME}/Library/LaunchAgents/mcquack.eblume.zot.plist",
            "programArguments": [program, "serve", f"{HOME}/.config/zot/config.json"],
            # a secret-wrapped value travels marked (any name outside the pack's allow-list is refused)
            "environmentVariables": {"PATH": "/opt/homebrew/bin:/usr/bin:/bin", "HOME": {SECRET_SIG: SECRET_MARK,
                                                                                         "value": HOME}},
            "standardOutPath": f"{HOME}/Library/Logs/zot.out.log",
            "standardErrorPath": f"{HOME}/Library/Logs/zot.err.log",
            "runAtLoad": True,
            "keepAlive": True,
        },
    )


def deployment(image: str, name: str = "miniflux") -> AnalyzerResource:
    return AnalyzerResource(
        urn=f"urn:pulumi:indri::blumeops::kubernetes:apps/v1:Deployment::{name}",
        type="kubernetes:apps/v1:Deployment",
        name=name,
        properties={"metadata": {"name": name, "namespace": name},
                    "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": name, "image": image}]}}}},
        parent="urn:pulumi:indri::blumeops::blumeops:app:Miniflux::miniflux",
        provider=AnalyzerProvider(urn="urn:pulumi:indri::blumeops::pulumi:providers:kubernetes::minikube",
                                  type="pulumi:providers:kubernetes", name="minikube",
                                  properties={"kubeconfig": {SECRET_SIG: SECRET_MARK, "value": "apiVersion: v1"}}),
    )


@pytest.fixture(scope="module")
def analyzer() -> Iterator[PolicyAnalyzer]:
    with PolicyAnalyzer() as served:
        yield served


def test_clean_resources_pass(analyzer: PolicyAnalyzer) -> None:
    report = analyzer.analyze([launch_agent(f"{HOME}/code/3rd/zot/bin/zot-darwin-arm64"),
                               deployment("ghcr.io/miniflux/miniflux:2.2.16")])
    assert report.ok and report.mandatory == []
    assert report.resources_analyzed == 2
    # images.yaml is seeded unverified: the advisory companion says so
    assert [v.policy for v in report.advisory] == ["images-verified"]


def test_tilde_launch_agent_and_amd64_image_fail(analyzer: PolicyAnalyzer) -> None:
    report = analyzer.analyze([launch_agent("~/bin/zot"), deployment("docker.io/library/nginx:latest", "web")])
    assert not report.ok
    policies = sorted({v.policy for v in report.mandatory})
    assert policies == ["absolute-launchagent-paths", "arm64-images"]
    agent = next(v for v in report.mandatory if v.policy == "absolute-launchagent-paths")
    assert agent.urn.endswith("::zot") and agent.level == "mandatory"
    assert "'~/bin/zot'" in agent.message and not agent.message.startswith(agent.description)
    assert agent.resource_type == "blumeops:host:LaunchAgent"


def test_protect_is_passed_as_an_option(analyzer: PolicyAnalyzer) -> None:
    pvc = dict(urn="urn:pulumi:indri::blumeops::kubernetes:core/v1:PersistentVolumeClaim::data",
               type="kubernetes:core/v1:PersistentVolumeClaim", name="data",
               properties={"spec": {"resources": {"requests": {"storage": "1Gi"}}}})
    assert [v.policy for v in analyzer.analyze([AnalyzerResource(**pvc)]).violations] == ["protect-stateful-resources"]
    assert analyzer.analyze([AnalyzerResource(**pvc, protect=True)]).violations == ()


def test_unknown_value_is_advisory(analyzer: PolicyAnalyzer) -> None:
    report = analyzer.analyze([deployment(UNKNOWN)])
    assert report.ok
    arm = next(v for v in report.advisory if v.policy == "arm64-images")
    assert "can't run policy" in arm.message and arm.urn.endswith("::miniflux")


def test_policies_and_levels(analyzer: PolicyAnalyzer) -> None:
    levels = {p.name: p.level for p in analyzer.policies()}
    assert levels["arm64-images"] == "mandatory"
    assert levels["images-verified"] == "advisory"
    assert levels["absolute-launchagent-paths"] == "mandatory"


def test_analyze_function_with_config() -> None:
    nfs = AnalyzerResource(urn="urn:pulumi:indri::blumeops::kubernetes:core/v1:PersistentVolume::zims",
                           type="kubernetes:core/v1:PersistentVolume", name="zims", protect=True,
                           properties={"spec": {"nfs": {"server": "10.0.0.9", "path": "/zims"}}})
    assert [v.policy for v in analyze([nfs]).mandatory] == ["nfs-allowed-servers"]
    configured = analyze([nfs], config={"nfs-allowed-servers": {"allowedServers": ["10.0.0.9"]}})
    assert configured.violations == ()
    # a configured level is honoured, as the engine does
    downgraded = analyze([nfs], config={"nfs-allowed-servers": {"enforcementLevel": "advisory"}})
    assert downgraded.ok and [v.level for v in downgraded.violations] == ["advisory"]


def test_request_carries_secrets_and_unknowns_in_wire_form() -> None:
    request = analyze_request(deployment(UNKNOWN))
    assert request.options.parent.endswith("::miniflux")
    assert request.provider.name == "minikube"
    assert request.provider.properties["kubeconfig"][SECRET_SIG] == SECRET_MARK
    container = request.properties["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == UNKNOWN


def test_missing_pack_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AnalyzerError, match="no policy pack"):
        analyze([], policy_dir=tmp_path)
    (tmp_path / "__main__.py").write_text("raise SystemExit('broken pack')\n")
    with pytest.raises(AnalyzerError, match="broken pack"):
        analyze([], policy_dir=tmp_path)


def test_render_report() -> None:
    report = AnalysisReport(
        pack="blumeops", version="0.0.1", policies=(), resources_analyzed=2,
        violations=(
            Violation("images-verified", "advisory", "urn:b", "not verified"),
            Violation("absolute-launchagent-paths", "mandatory", "urn:a", "tilde\nsecond line"),
        ),
    )
    text = render_report(report, stream=io.StringIO(), verbose=True)
    lines = text.splitlines()
    assert "\033[" not in text
    assert lines[1].startswith("  MANDATORY  absolute-launchagent-paths  tilde")
    assert lines[2].strip() == "second line" and lines[2].index("second") == lines[1].index("tilde")
    assert "ADVISORY " in lines[4] and lines[4].index("not verified") == lines[1].index("tilde")
    assert lines[-1] == "policy: FAILED (1 mandatory, 1 advisory violation(s) in 2 resources)"
    assert "\033[31m" in render_report(report, color=True)


def test_early_verdicts_are_one_analysis_of_the_whole_plan(indri_plan) -> None:  # type: ignore[no-untyped-def]
    """ops plan has the pack judge the program's registrations while the charts render, then the charts' objects:
    the report is what one call on every registration gives, in the same order."""
    from ops import plan as offline_plan
    from ops.engine import analyzer as engine

    plan = indri_plan("1")
    run = plan.run
    whole = engine.analyze(offline_plan.analyzer_resources(run))
    early = offline_plan.EarlyVerdicts(PolicyAnalyzer())
    own = [record for record in run.registrations if "-chart:" not in record.name]
    early._send(run, own)  # what program_ran sends: the program's own registrations
    early.registrations_final(run)  # the rest: the charts' objects
    split = early.report(run)
    assert len(early.parts) == 2 and split.resources_analyzed == whole.resources_analyzed == len(run.registrations)
    assert split.violations == whole.violations and split.violations  # the advisory findings, in the same order
