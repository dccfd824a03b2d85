"""A hypothetical phase 10, registered through the public API as docs/extending.md's recipe says: one module (here:
the definitions below) plus one registry line. It has an app (a Deployment behind an Ingress that takes the
name ``sandbox`` over from a brew service, with a volume a rollback keeps), two settings, one host step and a
health check, and amends an earlier phase. Phases 4-9 are not built yet, so the test registry stands empty
ones in for them (the engine deploys a target only on a chain of implemented phases); the id 10 is one no
real phase will take."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

import phases
from components.apps import AppIngress, AppIngressArgs, IngressBackend, LegacyClaim
from components.cluster import kept_claim, namespace
from components.host import BrewService, HostStep, LegacyServiceRetirementArgs
from ops import plan, stack
from ops.engine import harness
from phases import settings as s
from phases.p0_foundation import INDRI, KEPT_STATE, KUBERNETES
from phases.p1_kubernetes import PG_HOSTNAME, PROXY_CLASS


@s.section("sandbox")
class SandboxSettings:
    """A hypothetical phase's settings: one required, one with a default."""

    greeting: str = s.setting(s.text, "what the sandbox app says", required=True, example="hello")
    replicas: int = s.setting(s.count(1, 3), "how many", default=1, example="2")


def build(phase: phases.Phase, handover: phases.Handover) -> None:
    sandbox = handover.section(SandboxSettings)
    host, provider = handover.take(INDRI), handover.take(KUBERNETES)
    # A host step: one script of components/host/scripts (here the shared install-file.sh) and this declaration.
    HostStep("sandbox-note", "install-file",
             {"FILE_PATH": "/Users/erichblume/sandbox.txt", "FILE_MODE": "0644", "FILE_CONTENT": sandbox.greeting},
             does="writes /Users/erichblume/sandbox.txt", undoes="removes /Users/erichblume/sandbox.txt",
             ).register(host, identity=("/Users/erichblume/sandbox.txt",),
                        opts=pulumi.ResourceOptions(parent=phase))
    # The app: its namespace and volume kept by a rollback, a Deployment, and the Ingress taking the name over.
    kept = handover.take(KEPT_STATE)
    ns = namespace("sandbox-namespace", "sandbox", provider, phase, kept=kept)
    kept_claim("sandbox-data", name="sandbox", namespace="sandbox", size="1Gi", kept=kept, parent=phase,
               depends_on=[ns])
    labels = {"app.kubernetes.io/name": "sandbox"}
    workload = k8s.apps.v1.Deployment(
        "sandbox-workload",
        metadata=k8s.meta.v1.ObjectMetaArgs(name="sandbox", namespace="sandbox"),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=sandbox.replicas, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                spec=k8s.core.v1.PodSpecArgs(containers=[k8s.core.v1.ContainerArgs(
                    name="app", image="ghcr.io/miniflux/miniflux:2.2.16", args=[sandbox.greeting])]))),
        opts=pulumi.ResourceOptions(parent=phase, provider=provider, depends_on=[ns]),
    )
    AppIngress("sandbox", AppIngressArgs(
        provider=provider, namespace="sandbox", hostname="sandbox", backend=IngressBackend("sandbox", 8080),
        proxy_class=handover.take(PROXY_CLASS), ready=(workload,), health_path="/healthcheck",
        legacy=LegacyClaim(retirement=LegacyServiceRetirementArgs(
            host=host, service=BrewService("sandbox", host.tools.brew), serve_service="svc:sandbox")),
    ), pulumi.ResourceOptions(parent=phase))
    handover.endpoints["sandbox"] = "https://sandbox.example"


SANDBOX = phases.PhaseDefinition(build=build, settings=(SandboxSettings,), amends=(PG_HOSTNAME.to("pg10"),))
NOT_YET = phases.PhaseDefinition(build=lambda phase, handover: None)  # a stand-in for phases 4-9, built empty
REGISTRY = (
    *(spec if spec.implemented else dataclasses.replace(spec, implemented=True, definition=NOT_YET)
      for spec in phases.REGISTRY),
    # the one registry line a new phase takes
    phases.PhaseSpec("10", "sandbox", "Sandbox", "a hypothetical app", True, definition=SANDBOX),
)


def run(target: str, **config: str) -> harness.ProgramRun:
    stack_config = stack.load_stack("indri", target, registry=REGISTRY)
    stack_config.config.update({f"blumeops:{key}": value for key, value in config.items()})

    def program() -> None:
        handover = phases.deploy(phases.load_settings(REGISTRY), REGISTRY)
        for key, value in phases.summary(handover, REGISTRY).items():
            pulumi.export(key, value)

    return harness.run(program, stack_config.project, stack_config.stack, stack_config.config,
                       stack_config.secret_keys)


def by_name(result: harness.ProgramRun) -> dict[str, dict[str, Any]]:
    return {r.name: plan.plan_entry(r, None) for r in result.registrations}


def test_the_new_phase_deploys_with_its_settings_app_step_and_check_and_amends_phase_1() -> None:
    result = run("10", **{"sandbox.greeting": "hello"})
    resources = by_name(result)
    deployment = resources["sandbox-workload"]
    assert deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["hello"]
    assert deployment["inputs"]["spec"]["replicas"] == 1
    assert deployment["parent"] == resources["p10-sandbox"]["urn"]
    assert deployment["provider"] == resources["minikube"]["urn"]  # taken from phase 0 through the hand-over
    # phase 1 amended, without phase 1 knowing phase 10 (and over phase 4's amendment of the same point)
    assert result.exports["endpoints"]["postgres"] == "postgresql://pg10.tail8d86e.ts.net:5432"
    assert result.exports["endpoints"]["sandbox"] == "https://sandbox.example"
    step = resources["sandbox-note"]
    assert step["type"] == "command:remote:Command" and step["parent"] == resources["p10-sandbox"]["urn"]
    assert step["inputs"]["create"] == "/bin/bash -euo pipefail -s -- create"
    assert "readonly FILE_CONTENT=hello" in step["inputs"]["stdin"]
    assert "replace_if_changed()" in step["inputs"]["stdin"]  # the lib.sh helpers it uses travel with it
    # the app's health check, declared by its Ingress, is what `ops check` will probe
    [app_ingress] = [r for r in result.registrations if r.type == "blumeops:app:AppIngress" and r.name == "sandbox"]
    checks = plan.plan_entry(app_ingress, None)["inputs"]["healthChecks"]
    assert [c["url"] for c in checks] == ["https://sandbox.{tailnet}/healthcheck"]
    # the building block's order and the kept state come with it
    retire, ingress = resources["sandbox-cutover-retirement-retire"], resources["sandbox-ingress"]
    assert deployment["urn"] in retire["options"]["dependsOn"]
    assert retire["urn"] in ingress["options"]["dependsOn"]
    assert resources["sandbox-data"]["options"]["retainOnDelete"]
    assert [p["status"] for p in result.exports["phases"]] == ["included"] * len(REGISTRY)
    assert result.exports["phases"][-1]["id"] == "10"


def test_below_the_new_phase_nothing_of_it_exists_and_phase_1_is_unamended() -> None:
    result = run("9", **{"sandbox.greeting": "hello"})  # a later phase's key may be set early
    resources = by_name(result)
    assert "sandbox-workload" not in resources and "p10-sandbox" not in resources
    assert result.exports["endpoints"]["postgres"] == "postgresql://pg.tail8d86e.ts.net:5432"  # phase 4's


def test_the_new_phases_settings_are_validated_with_all_the_others() -> None:
    with pytest.raises(harness.ProgramError) as caught:
        run("10", **{"sandbox.replicas": "7", "sandbox.greting": "typo"})
    message = str(caught.value)
    assert caught.value.registered == 0
    assert "blumeops:sandbox.greeting is missing (what the sandbox app says)" in message
    assert "blumeops:sandbox.replicas 7 is outside 1..3" in message
    assert "blumeops:sandbox.greting is not a blumeops setting: did you mean" not in message  # not a case slip
    assert "blumeops:sandbox.greting is not a blumeops setting" in message
    specs = phases.setting_specs(REGISTRY)
    assert specs["sandbox.greeting"].section.endswith("test_new_phase.SandboxSettings")


def test_the_real_registry_does_not_know_phase_10() -> None:
    with pytest.raises(phases.PhaseError, match="'10' is not a phase id"):
        phases.check_target("10")
    assert phases.phase_ids(REGISTRY)[-1] == "10" and "10" not in phases.phase_ids()
