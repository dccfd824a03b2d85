"""The offline plan: the JSON contract, redaction of secrets, determinism, refusal of duplicates and leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops import plan as offline_plan
from ops.engine import harness
from ops.stack import ROOT, fake_secret, load_stack

RESOURCE_KEYS = {"urn", "type", "name", "custom", "parent", "phase", "provider", "inputs", "options"}
OPTION_KEYS = {"protect", "dependsOn", "deleteBeforeReplace", "ignoreChanges", "retainOnDelete", "replaceOnChanges",
               "import"}


def test_plan_json_matches_the_contract(indri_plan) -> None:  # type: ignore[no-untyped-def]
    document = json.loads(indri_plan().text())
    assert set(document) == {"stack", "project", "targetPhase", "phases", "resources", "exports", "secretScripts"}
    assert document["stack"] == "indri" and document["project"] == "blumeops"
    assert document["targetPhase"] == load_stack("indri").target
    assert [p["id"] for p in document["phases"]][:2] == ["0", "1"]
    for phase in document["phases"]:
        assert set(phase) == {"id", "title", "included"} and isinstance(phase["included"], bool)
    assert document["resources"]
    for resource in document["resources"]:
        assert set(resource) == RESOURCE_KEYS
        assert isinstance(resource["urn"], str) and resource["urn"].startswith("urn:pulumi:indri::blumeops::")
        assert isinstance(resource["custom"], bool)
        assert resource["parent"] is None or isinstance(resource["parent"], str)
        assert resource["provider"] is None or resource["provider"].startswith("urn:pulumi:")
        assert isinstance(resource["inputs"], dict)
        assert set(resource["options"]) == OPTION_KEYS
        assert isinstance(resource["options"]["protect"], bool)
        assert isinstance(resource["options"]["dependsOn"], list)


def test_resources_are_in_registration_order(indri_plan) -> None:  # type: ignore[no-untyped-def]
    seen: set[str] = set()
    for resource in indri_plan().resources:
        assert resource["parent"] is None or resource["parent"] in seen, resource["urn"]
        assert resource["provider"] is None or resource["provider"] in seen, resource["urn"]
        for dependency in resource["options"]["dependsOn"]:
            assert dependency in seen, (resource["urn"], dependency)
        seen.add(resource["urn"])


def test_every_resource_belongs_to_an_included_phase(indri_plan) -> None:  # type: ignore[no-untyped-def]
    plan = indri_plan()
    included = {p["id"] for p in plan.document["phases"] if p["included"]}
    assert {r["phase"] for r in plan.resources} == included
    phase_roots = [r for r in plan.resources if r["type"] == "blumeops:phase:Phase"]
    assert next(r["name"] for r in phase_roots) == "p0-foundation"
    assert all(r["parent"] is None for r in phase_roots)


def test_secrets_are_redacted(indri_plan) -> None:  # type: ignore[no-untyped-def]
    plan = indri_plan()
    text = plan.text()
    provider = next(r for r in plan.resources if r["type"] == "pulumi:providers:tailscale")
    assert provider["inputs"]["oauthClientSecret"] == "[secret]"
    stack = load_stack("indri")
    assert stack.fake_secrets
    for fake in stack.fake_secrets.values():
        assert fake not in text
        for artifact in plan.artifacts.values():
            assert fake not in artifact


def test_a_leaked_secret_fails_the_plan(indri_plan) -> None:  # type: ignore[no-untyped-def]
    plan = indri_plan()
    leaky = offline_plan.Plan(json.loads(plan.text()), dict(plan.artifacts))
    key = "blumeops:tailnet.oauthClientSecret"
    leaky.artifacts["host/leak.txt"] = f"token={fake_secret(key)}"
    with pytest.raises(offline_plan.PlanError, match=r"blumeops:tailnet\.oauthClientSecret appears in host/leak\.txt"):
        offline_plan.check_secrets(leaky, {key: fake_secret(key)})
    # several fakes (their shared prefix filters the texts first): the one that leaked is named, alone
    other = "blumeops:grafana.adminPassword"
    with pytest.raises(offline_plan.PlanError) as raised:
        offline_plan.check_secrets(leaky, {key: fake_secret(key), other: fake_secret(other)})
    assert "oauthClientSecret appears in host/leak.txt" in str(raised.value) and other not in str(raised.value)
    # fakes that share no prefix are each looked for everywhere
    leaky.artifacts["host/other.txt"] = "pw=hunter2-unlike-the-rest"
    with pytest.raises(offline_plan.PlanError, match=r"k appears in host/other\.txt"):
        offline_plan.check_secrets(leaky, {"k": "hunter2-unlike-the-rest", "j": "zz-nothing-in-common"})


@pytest.mark.slow  # runs the whole CLI (or Helm) again in a subprocess
def test_plan_is_byte_identical_across_runs() -> None:
    # Several runs: the SDK's RPC threads race, so one identical pair would prove little.
    first = offline_plan.build_plan(load_stack("indri"))
    for _ in range(4):
        again = offline_plan.build_plan(load_stack("indri"))
        assert again.text() == first.text()
        assert again.artifacts == first.artifacts


def test_duplicate_urns_fail_the_plan(tmp_path) -> None:  # type: ignore[no-untyped-def]
    program = tmp_path / "__main__.py"
    program.write_text(
        "import pulumi\n"
        "class Thing(pulumi.ComponentResource):\n"
        "    def __init__(self, name):\n"
        "        super().__init__('blumeops:test:Thing', name, {}, None)\n"
        "Thing('same')\nThing('same')\n"
    )
    stack = load_stack("indri")
    stack.project = "blumeops"
    original = offline_plan.harness.run_program

    def run(program_dir, *args, **kwargs):  # type: ignore[no-untyped-def]
        return original(tmp_path, *args, **kwargs)

    offline_plan.harness.run_program = run  # type: ignore[assignment]
    try:
        with pytest.raises(offline_plan.PlanError, match="duplicate URNs"):
            offline_plan.build_plan(stack)
    finally:
        offline_plan.harness.run_program = original


def test_redact_handles_wire_forms() -> None:
    wire = {
        "a": {harness.SIG_KEY: harness.SECRET_SIG, "value": "hunter2"},
        "b": {harness.SIG_KEY: harness.RESOURCE_SIG, "urn": "urn:pulumi:s::p::t::n", "id": "x"},
        "c": [harness.UNKNOWN, 1, {"d": True}],
    }
    assert offline_plan.redact(wire) == {"a": "[secret]", "b": "urn:pulumi:s::p::t::n",
                                         "c": ["[unknown]", 1, {"d": True}]}


@pytest.mark.slow  # runs the whole CLI (or Helm) again in a subprocess
def test_cli_writes_plan_and_prints_a_summary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    result = subprocess.run([sys.executable, "-m", "ops", "plan", "--stack", "indri", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "plan of stack indri: target phase" in result.stdout
    assert "P0 Foundation (" in result.stdout
    assert "\033[" not in result.stdout  # no colour when not on a terminal
    assert json.loads(out.read_text())["stack"] == "indri"
    assert (ROOT / "build" / "plan" / "indri" / "plan.json").read_text() == out.read_text()


def test_cli_reports_a_bad_target_without_traceback() -> None:
    result = subprocess.run([sys.executable, "-m", "ops", "plan", "--stack", "indri", "--phase", "10"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "10" in result.stderr and "invalid choice" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_reports_a_missing_stack() -> None:
    result = subprocess.run([sys.executable, "-m", "ops", "plan", "--stack", "nope"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no stack file Pulumi.nope.yaml" in result.stderr


def test_whole_numbers_stay_integers(indri_plan) -> None:  # type: ignore[no-untyped-def]
    floats: list[str] = []

    def walk(value: object, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif isinstance(value, float) and value.is_integer():
            floats.append(path)

    plan = indri_plan()
    walk(plan.document, "plan")
    assert not floats, floats[:5]
    ports = [r["inputs"]["spec"]["ports"] for r in plan.resources
             if r["type"] == "kubernetes:core/v1:Service" and "spec" in r["inputs"]]
    assert ports and all(isinstance(p["port"], int) for group in ports for p in group)


def test_stand_ins_only_for_what_the_stack_needs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = load_stack("indri", "1")
    assert "blumeops:operator.oauthClientSecret" in stack.fake_secrets
    assert "blumeops:operator.oauthClientId" in stack.config
    # when the program creates the operator's OAuth client, no client id or secret is invented
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    text = (ROOT / "Pulumi.indri.yaml").read_text()
    (tmp_path / "Pulumi.indri.yaml").write_text(
        text.replace("config:\n", 'config:\n  blumeops:operator.createOauthClient: "true"\n', 1))
    lifted = load_stack("indri", "1", root=tmp_path)
    assert lifted.config["blumeops:operator.createOauthClient"] == "true"
    assert "blumeops:operator.oauthClientId" not in lifted.config
    assert "blumeops:operator.oauthClientSecret" not in lifted.fake_secrets
    assert not any("operator.oauthClient" in note for note in lifted.stand_ins)


def test_what_the_program_logs_as_a_warning_is_shown(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ops import __main__ as cli

    (tmp_path / "__main__.py").write_text("import pulumi\npulumi.log.warn('zot binary is older than 2.1.6')\n")
    plan = offline_plan.build_plan(load_stack("indri"), program_dir=tmp_path)
    assert ("warning", "zot binary is older than 2.1.6") in plan.run.log
    monkeypatch.setattr(cli.offline_plan, "build_plan", lambda stack, **hooks: plan)
    monkeypatch.setattr(cli.offline_plan, "write_artifacts", lambda plan, directory: None)
    assert cli.main(["plan", "--stack", "indri"]) == 0
    assert "warning: zot binary is older than 2.1.6" in capsys.readouterr().out


def test_replace_on_changes_reaches_the_plan(indri_plan) -> None:  # type: ignore[no-untyped-def]
    [service] = [r for r in indri_plan("1").resources if r["name"] == "blumeops-pg-tailscale"]
    assert service["options"]["replaceOnChanges"], "changing the tailnet hostname must replace the Service"


def test_artifacts_are_rewritten_only_where_they_changed_and_stale_ones_go(tmp_path: Path) -> None:
    plan = offline_plan.Plan(document={"stack": "s", "resources": [], "exports": {}},
                             artifacts={"host/a.sh": "a\n", "k8s/x/b.yaml": "b\n"})
    out = tmp_path / "plan"
    offline_plan.write_artifacts(plan, out)
    kept = out / "host" / "a.sh"
    os.utime(kept, (1_000_000, 1_000_000))
    (out / "k8s" / "old").mkdir()
    (out / "k8s" / "old" / "gone.yaml").write_text("stale\n")
    plan.artifacts["k8s/x/b.yaml"] = "b2\n"
    offline_plan.write_artifacts(plan, out)
    assert kept.stat().st_mtime == 1_000_000  # the same text: not rewritten
    assert (out / "k8s" / "x" / "b.yaml").read_text() == "b2\n"
    assert not (out / "k8s" / "old").exists()  # no artifact names it: removed, with its empty directory
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "host/a.sh", "k8s/x/b.yaml", "plan.json"]
    with pytest.raises(offline_plan.PlanError, match="escapes"):
        offline_plan.write_artifacts(offline_plan.Plan(document=plan.document, artifacts={"../x": "x"}), out)


def test_the_manifest_cache_keeps_a_few_whole_plans_and_a_bounded_number_of_entries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offline_plan.ManifestCache, "PLANS", 2)
    monkeypatch.setattr(offline_plan.ManifestCache, "LIMIT", 5)
    for number in range(4):
        cache = offline_plan.ManifestCache(tmp_path / "cache")
        document = {"stack": f"s{number}", "resources": [{"n": number}], "exports": {}}
        assert offline_plan.indented_json(document, cache) == json.dumps(document, indent=2, sort_keys=True) + "\n"
    import sqlite3

    with sqlite3.connect(tmp_path / "cache") as db:
        names = [str(row[0]) for row in db.execute("SELECT key FROM entries")]
    assert len([n for n in names if n.startswith("plan-")]) == 2 and len(names) <= 5
    again = offline_plan.ManifestCache(tmp_path / "cache")
    last = {"stack": "s3", "resources": [{"n": 3}], "exports": {}}
    assert offline_plan.indented_json(last, again) == json.dumps(last, indent=2, sort_keys=True) + "\n"
    assert not again.new  # the newest whole plan was kept: read, not made
