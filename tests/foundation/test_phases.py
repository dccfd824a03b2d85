"""The phase engine: order, selection, prerequisites, refusal of what cannot be deployed."""

from __future__ import annotations

import dataclasses

import pytest

import phases
from ops import plan as offline_plan
from ops.engine import harness
from ops.stack import load_stack


def test_registry_order_puts_5_1_between_5_and_6() -> None:
    ids = [spec.id for spec in phases.REGISTRY]
    assert ids == ["0", "1", "2", "3", "4", "5", "5.1", "6", "7", "8", "9"]
    assert [s.id for s in phases.chain("6")][-3:] == ["5", "5.1", "6"]


def test_phase_resource_names() -> None:
    assert phases.lookup("0").slug == "p0-foundation"
    assert phases.lookup("5.1").slug == "p5-1-docker-driver"
    assert phases.lookup("5.1").module == "phases.p5_1_docker_driver"


def test_target_selects_every_phase_up_to_it() -> None:
    assert [s.id for s in phases.chain("0")] == ["0"]
    assert [s.id for s in phases.chain("5.1")] == ["0", "1", "2", "3", "4", "5", "5.1"]
    assert [s.id for s in phases.chain("9")][-1] == "9"
    with pytest.raises(phases.PhaseError, match=r"'7\.5' is not a phase id"):
        phases.chain("7.5")


def test_a_registry_out_of_order_is_refused() -> None:
    shuffled = [phases.REGISTRY[1], phases.REGISTRY[0], *phases.REGISTRY[2:]]
    with pytest.raises(phases.PhaseError, match="in that order"):
        phases.check_registry(shuffled)


def test_unimplemented_phase_fails_loudly() -> None:
    # every phase is built now: the last one as if it were not
    registry = [*phases.REGISTRY[:-1], dataclasses.replace(phases.REGISTRY[-1], implemented=False)]
    unimplemented = registry[-1]
    with pytest.raises(phases.PhaseError, match=rf"^phase {unimplemented.id} \({unimplemented.title}\) "
                                                r"is not implemented yet: lower blumeops:phase"):
        phases.check_target(unimplemented.id, registry=registry)


def test_every_phase_is_implemented_and_every_target_accepted() -> None:
    assert all(spec.implemented for spec in phases.REGISTRY)
    for spec in phases.REGISTRY:
        assert phases.check_target(spec.id)[-1] == spec


def test_the_message_names_the_target_and_what_is_missing_on_the_way() -> None:
    # the last three phases as not built yet, whatever the registry says now
    last = len(phases.REGISTRY) - 3
    registry = [dataclasses.replace(s, implemented=False) if i >= last else s for i, s in enumerate(phases.REGISTRY)]
    pending = [s for s in registry if not s.implemented]
    assert len(pending) == 3
    target = pending[2]
    with pytest.raises(phases.PhaseError) as caught:
        phases.check_target(target.id, registry=registry)
    message = str(caught.value)
    assert message.startswith(f"phase {target.id} ({target.title}) is not implemented yet (nor are phases "
                              f"{pending[0].id}, {pending[1].id} on the way to it)")
    assert "pulumi config set blumeops:phase" in message
    # and the developer who meant to build it is told where
    assert f"To build phase {pending[0].id}: write {pending[0].module.replace('.', '/')}.py" in message
    assert "implemented=True" in message


def test_an_implemented_target_behind_an_unimplemented_one_names_the_gap() -> None:
    # the second-to-last phase not built yet, the last one built: whatever the registry says now
    registry = list(phases.REGISTRY)
    index = len(registry) - 2
    registry[index] = dataclasses.replace(registry[index], implemented=False)
    registry[index + 1] = dataclasses.replace(registry[index + 1], implemented=True)
    with pytest.raises(phases.PhaseError, match=rf"^phase {registry[index + 1].id} .* needs phase "
                                                rf"{registry[index].id} .*, which is not implemented yet"):
        phases.check_target(registry[index + 1].id, registry=registry)


def test_a_refused_target_fails_the_program_before_any_resource() -> None:
    config = load_stack("indri", "9")
    config.config["blumeops:blockedPhases"] = '{"7": "the forge is being repaired"}'
    with pytest.raises(harness.ProgramError, match=r"phase 7 is blocked \(the forge is being repaired\)") as caught:
        offline_plan.build_plan(config)
    assert caught.value.registered == 0


def test_blocked_phase_in_the_chain_is_refused() -> None:
    with pytest.raises(phases.PhaseError, match=r"phase 0 \(Foundation\) is blocked: NAS down"):
        phases.check_target("0", {"0": "NAS down"})


def test_the_hand_over_is_typed_and_names_what_is_missing() -> None:
    handover = phases.Handover(settings=None)  # type: ignore[arg-type]
    count = phases.Key("count", int, "a number")
    handover.give(count, 3)
    assert handover.take(count) == 3
    with pytest.raises(phases.PhaseError, match="'count' is given twice"):
        handover.give(count, 4)
    with pytest.raises(phases.PhaseError, match="'word' must be a str, got int"):
        handover.give(phases.Key("word", str), 5)  # type: ignore[arg-type]
    with pytest.raises(phases.PhaseError, match=r"nothing gave 'kubernetes': an earlier phase must give it"):
        handover.take(phases.Key("kubernetes", object, "the cluster's provider"))


def test_every_implemented_phase_has_a_builder() -> None:
    import importlib

    for spec in phases.REGISTRY:
        if spec.implemented:
            module = importlib.import_module(spec.module)
            assert callable(module.build)
            for section in getattr(module, "SETTINGS", ()):
                assert phases.settings.section_spec(section).type is section



@pytest.mark.slow  # runs the whole CLI (or Helm) again in a subprocess
def test_cli_phase_table_marks_the_target() -> None:
    import subprocess
    import sys

    from ops.stack import ROOT

    result = subprocess.run([sys.executable, "-m", "ops", "phases", "--stack", "indri"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    target = load_stack("indri").target
    marked = [line for line in lines if line.startswith("->")]
    assert len(marked) == 1 and marked[0].split()[1] == target
    assert any("5.1" in line.split()[:2] and "Docker driver" in line for line in lines)  # "->" may lead
    assert lines[-1].startswith(f"stack indri: target phase {target}")


# What a phase's amendment removes from an earlier phase (by resource name), and why: everything else a lower
# target deploys, a higher one deploys too.
RETIRED_BY = {
    # phase 4 gives blumeops-pg the name pg with a LoadBalancer of its own; phase 1's k8s-pg goes
    "4": {"blumeops-pg-tailscale"},
    # phase 7 moves the forge into the cluster: ArgoCD reaches it by cluster DNS, phase 1's egress Service goes
    "7": {"tailscale-operator-egress-forge"},
}


def test_lower_targets_give_a_strict_subset(indri_plan) -> None:  # type: ignore[no-untyped-def]
    implemented = [s.id for s in phases.REGISTRY if s.implemented]
    assert len(implemented) >= 2, "needs two implemented phases to compare"
    previous: dict[str, str] | None = None
    for phase_id in implemented:
        urns = {r["urn"]: r["name"] for r in indri_plan(phase_id).resources}
        if previous is not None:
            retired = {previous[urn] for urn in set(previous) - set(urns)}
            assert retired == RETIRED_BY.get(phase_id, set()), f"plan at {phase_id} drops {retired}"
            assert set(urns) - set(previous), f"plan at {phase_id} adds nothing"
        previous = urns
