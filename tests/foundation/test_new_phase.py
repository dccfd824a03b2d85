"""A throw-away phase registered through the public API: its own settings section, what it takes from the
hand-over, and its effect on an earlier phase, each declared in one place (the README's recipe)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

import phases
from components.host import HostStep
from ops import harness, plan, stack
from phases import settings as s
from phases.p0_foundation import INDRI, KUBERNETES
from phases.p1_kubernetes import PG_HOSTNAME


@s.section("sandbox")
class SandboxSettings:
    """A hypothetical phase's settings: one required, one with a default."""

    greeting: str = s.setting(s.text, "what the sandbox ConfigMap says", required=True, example="hello")
    replicas: int = s.setting(s.count(1, 3), "how many", default=1, example="2")


def build(phase: phases.Phase, handover: phases.Handover) -> None:
    sandbox = handover.section(SandboxSettings)
    # A host step: one script of components/host/scripts (here the shared install-file.sh) and this declaration.
    HostStep("sandbox-note", "install-file",
             {"FILE_PATH": "/Users/erichblume/sandbox.txt", "FILE_MODE": "0644", "FILE_CONTENT": sandbox.greeting},
             does="writes /Users/erichblume/sandbox.txt", undoes="removes /Users/erichblume/sandbox.txt",
             ).register(handover.take(INDRI), identity=("/Users/erichblume/sandbox.txt",),
                        opts=pulumi.ResourceOptions(parent=phase))
    k8s.core.v1.ConfigMap(
        "sandbox",
        metadata={"name": "sandbox", "namespace": "default"},
        data={"greeting": sandbox.greeting, "replicas": str(sandbox.replicas)},
        opts=pulumi.ResourceOptions(parent=phase, provider=handover.take(KUBERNETES)),
    )
    handover.endpoints["sandbox"] = "https://sandbox.example"


SANDBOX = phases.PhaseDefinition(build=build, settings=(SandboxSettings,), amends=(PG_HOSTNAME.to("pg"),))
REGISTRY = tuple(dataclasses.replace(spec, name="sandbox", title="Sandbox", implemented=True, definition=SANDBOX)
                 if spec.id == "4" else spec for spec in phases.REGISTRY)


def run(target: str, **config: str) -> harness.ProgramRun:
    stack_config = stack.load_stack("indri", target)
    stack_config.config.update({f"blumeops:{key}": value for key, value in config.items()})

    def program() -> None:
        handover = phases.deploy(phases.load_settings(REGISTRY), REGISTRY)
        for key, value in phases.summary(handover, REGISTRY).items():
            pulumi.export(key, value)

    return harness.run(program, stack_config.project, stack_config.stack, stack_config.config,
                       stack_config.secret_keys)


def by_name(result: harness.ProgramRun) -> dict[str, dict[str, Any]]:
    return {r.name: plan.plan_entry(r, None) for r in result.registrations}


def test_the_new_phase_deploys_with_its_setting_and_amends_phase_1() -> None:
    result = run("4", **{"sandbox.greeting": "hello"})
    resources = by_name(result)
    config_map = resources["sandbox"]
    assert config_map["inputs"]["data"] == {"greeting": "hello", "replicas": "1"}
    assert config_map["parent"] == resources["p4-sandbox"]["urn"]
    assert config_map["provider"] == resources["minikube"]["urn"]  # taken from phase 0 through the hand-over
    annotations = resources["blumeops-pg-tailscale"]["inputs"]["metadata"]["annotations"]
    assert annotations["tailscale.com/hostname"] == "pg"  # phase 1 amended, without phase 1 knowing phase 2
    assert result.exports["endpoints"]["sandbox"] == "https://sandbox.example"
    step = resources["sandbox-note"]
    assert step["type"] == "command:remote:Command" and step["parent"] == resources["p4-sandbox"]["urn"]
    assert step["inputs"]["create"] == "/bin/bash -euo pipefail -s -- create"
    assert "readonly FILE_CONTENT=hello" in step["inputs"]["stdin"]
    assert "replace_if_changed()" in step["inputs"]["stdin"]  # the lib.sh helpers it uses travel with it
    assert [p["status"] for p in result.exports["phases"][:5]] == ["included"] * 5


def test_below_the_new_phase_nothing_of_it_exists_and_phase_1_is_unamended() -> None:
    resources = by_name(run("3", **{"sandbox.greeting": "hello"}))  # a later phase's key may be set early
    assert "sandbox" not in resources and "p4-sandbox" not in resources
    annotations = resources["blumeops-pg-tailscale"]["inputs"]["metadata"]["annotations"]
    assert annotations["tailscale.com/hostname"] == "k8s-pg"


def test_the_new_phases_settings_are_validated_with_all_the_others() -> None:
    with pytest.raises(harness.ProgramError) as caught:
        run("4", **{"sandbox.replicas": "7", "sandbox.greting": "typo"})
    message = str(caught.value)
    assert caught.value.registered == 0
    assert "blumeops:sandbox.greeting is missing (what the sandbox ConfigMap says)" in message
    assert "blumeops:sandbox.replicas 7 is outside 1..3" in message
    assert "blumeops:sandbox.greting is not a blumeops setting: did you mean" not in message  # not a case slip
    assert "blumeops:sandbox.greting is not a blumeops setting" in message
    specs = phases.setting_specs(REGISTRY)
    assert specs["sandbox.greeting"].section.endswith("test_new_phase.SandboxSettings")
