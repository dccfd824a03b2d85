"""``python -m ops plan``: the offline preview of a stack.

Runs the program under the mock engine (``ops.harness``), turns the registrations into the plan JSON
(the contract below), renders what lands on the machines under ``build/plan/<stack>/``, sends every
resource through the policy pack's real analyzer interface and prints a tree per phase.

Plan JSON contract (tools and tests read it; keys and types are stable)::

    {"stack": "indri", "project": "blumeops", "targetPhase": "1",
     "phases": [{"id": "0", "title": "Foundation", "deployed": true}, ...],      # every phase, in order
     "resources": [                                                              # registration order
        {"urn": str, "type": str, "name": str, "custom": bool,
         "parent": str | null,            # parent URN; null for children of the stack
         "phase": str | null,             # id of the blumeops:phase:Phase it descends from
         "provider": str | null,          # URN of its explicit provider
         "inputs": {...},                 # engine (camelCase) names; secrets are "[secret]",
                                          # unknowns "[unknown]", resource references their URN
         "options": {"protect": bool, "dependsOn": [urn, ...], "deleteBeforeReplace": bool,
                     "ignoreChanges": [str, ...], "retainOnDelete": bool}}, ...],
     "exports": {...}}                    # the stack outputs, secrets "[secret]"

Health declarations (``components/health.py``; read by ``ops check``, ``ops runbook``): a component's inputs may
carry ``"healthChecks": [check, ...]`` and ``"preconditions": [{"text": str, "checkedBy": <step name>}, ...]``.
Every check has ``kind``, ``side`` ("host": run on the host over SSH; "operator": run where ops runs), ``name``
(unique in the plan), ``timeoutSeconds``, ``fix``; host-side ones a ``host`` {address, port, user, hostKey, bash}::

    {"kind": "launchd", "label": str, "domain": "gui/<uid>", "launchctl": path, "errLog": path}
    {"kind": "textfile", "path": str, "maxAgeSeconds": int, "writer": <label>}
    {"kind": "http", "url": str, "expect": [int, ...], "tls": "public" | "cluster" | "none",
     "curl": path}                        # curl only when side is "host"
    {"kind": "postgres", "address": str, "port": int}     # TCP connect + PostgreSQL's SSLRequest answer

``{tailnet}`` in a URL or address stands for the tailnet's DNS name (the stack's ``blumeops:tailnet.name``).

The plan is byte-identical across runs of the same program and config (sorted keys, deterministic
registration order), so a diff between two plans shows only real changes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import phases as phase_engine
from ops import analyzer, harness
from ops.stack import ROOT, StackConfig

SECRET = "[secret]"
UNKNOWN = "[unknown]"
PHASE_TYPE = "blumeops:phase:Phase"


class PlanError(Exception):
    """The plan is not acceptable: duplicate URNs, a leaked secret, a mandatory policy violation."""


def redact(value: Any) -> Any:
    """Wire-form inputs -> plan inputs: secrets hidden, references as URNs, assets by their source."""
    if isinstance(value, dict):
        sig = value.get(harness.SIG_KEY)
        if sig == harness.SECRET_SIG:
            return SECRET
        if sig == harness.RESOURCE_SIG:
            return value.get("urn")
        if sig == harness.ASSET_SIG:
            return {"asset": value.get("path") or value.get("uri") or value.get("text")}
        if sig == harness.ARCHIVE_SIG:
            return {"archive": value.get("path") or value.get("uri") or sorted(value.get("assets", {}))}
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    if value == harness.UNKNOWN:
        return UNKNOWN
    return value


@dataclass(slots=True)
class Plan:
    document: dict[str, Any]
    artifacts: dict[str, str] = field(default_factory=dict)  # relative path -> text
    stand_ins: list[str] = field(default_factory=list)
    run: harness.ProgramRun | None = None
    fake_secrets: dict[str, str] = field(default_factory=dict)  # key -> the fake value ops put in

    @property
    def resources(self) -> list[dict[str, Any]]:
        resources: list[dict[str, Any]] = self.document["resources"]
        return resources

    def text(self) -> str:
        return json.dumps(self.document, indent=2, sort_keys=True) + "\n"


def _phase_of(registrations: Iterable[harness.Registration]) -> dict[str, str | None]:
    by_urn = {r.urn: r for r in registrations}
    phase_ids: dict[str, str | None] = {}

    def find(urn: str | None) -> str | None:
        seen: set[str] = set()
        while urn is not None and urn in by_urn and urn not in seen:
            seen.add(urn)
            record = by_urn[urn]
            if record.type == PHASE_TYPE:
                return str(redact(record.wire_inputs).get("phaseId"))
            urn = record.parent
        return None

    for record in by_urn.values():
        phase_ids[record.urn] = find(record.urn)
    return phase_ids


def plan_entry(record: harness.Registration, phase: str | None) -> dict[str, Any]:
    """One registration as a resource of the plan JSON (the contract at the top of this module)."""
    return {
        "urn": record.urn,
        "type": record.type,
        "name": record.name,
        "custom": record.custom,
        "parent": record.parent,
        "phase": phase,
        "provider": record.provider,
        "inputs": redact(record.wire_inputs),
        "options": {
            "protect": record.protect,
            "dependsOn": list(record.depends_on),
            "deleteBeforeReplace": record.delete_before_replace,
            "ignoreChanges": list(record.ignore_changes),
            "retainOnDelete": record.retain_on_delete,
        },
    }


def build_plan(stack: StackConfig, program_dir: Path = ROOT) -> Plan:
    """Run the program for ``stack`` and assemble the plan; raises ProgramError or PlanError."""
    run = harness.run_program(program_dir, stack.project, stack.stack, stack.config, stack.secret_keys)
    urns = [r.urn for r in run.registrations]
    duplicates = sorted({urn for urn in urns if urns.count(urn) > 1})
    if duplicates:
        raise PlanError("duplicate URNs (two resources with the same type and name under one parent):\n  "
                        + "\n  ".join(duplicates))
    phase_ids = _phase_of(run.registrations)
    deployed = {p for p in phase_ids.values() if p is not None}
    resources = [plan_entry(r, phase_ids[r.urn]) for r in run.registrations]
    document = {
        "stack": stack.stack,
        "project": stack.project,
        "targetPhase": stack.target,
        "phases": [
            {"id": spec.id, "title": spec.title, "deployed": spec.id in deployed}
            for spec in phase_engine.REGISTRY
        ],
        "resources": resources,
        "exports": redact(run.exports),
    }
    plan = Plan(document, stand_ins=list(stack.stand_ins), run=run, fake_secrets=dict(stack.fake_secrets))
    plan.artifacts = render_artifacts(plan)
    check_secrets(plan, stack.fake_secrets)
    return plan


def check_secrets(plan: Plan, fake_secrets: Mapping[str, str]) -> None:
    """Fail when any secret value (the fakes ops put in) shows up in the plan or a rendered artifact."""
    texts = {"plan.json": plan.text(), **plan.artifacts}
    leaks = sorted(
        f"{key} appears in {where}"
        for key, fake in fake_secrets.items()
        for where, text in texts.items()
        if fake in text
    )
    if leaks:
        raise PlanError("secret values leaked into the plan:\n  " + "\n  ".join(leaks))


def analyzer_properties(value: Any) -> Any:
    """Wire-form inputs as the engine hands them to a policy pack: secrets marked and with their values
    (the engine sends them: a rule must be able to check a pinned host key inside a secret connection;
    offline they are the plan's fakes), unknowns unknown, resource references as their URNs."""
    if isinstance(value, dict):
        sig = value.get(harness.SIG_KEY)
        if sig == harness.SECRET_SIG:
            return {harness.SIG_KEY: harness.SECRET_SIG, "value": analyzer_properties(value.get("value"))}
        if sig == harness.RESOURCE_SIG:
            return value.get("urn")
        return {key: analyzer_properties(item) for key, item in value.items()}
    if isinstance(value, list):
        return [analyzer_properties(item) for item in value]
    return value


def analyzer_resources(run: harness.ProgramRun) -> list[analyzer.AnalyzerResource]:
    """Every registration of a run, in the form the engine sends to ``Analyze``."""
    by_urn = {r.urn: r for r in run.registrations}
    resources = []
    for record in run.registrations:
        provider = by_urn.get(record.provider) if record.provider else None
        resources.append(
            analyzer.AnalyzerResource(
                urn=record.urn,
                type=record.type,
                name=record.name,
                properties=analyzer_properties(record.wire_inputs),
                protect=record.protect,
                parent=record.parent,
                provider=analyzer.AnalyzerProvider(
                    urn=provider.urn, type=provider.type, name=provider.name,
                    properties=analyzer_properties(provider.wire_inputs),
                ) if provider is not None else None,
                ignore_changes=record.ignore_changes,
                delete_before_replace=record.delete_before_replace,
            )
        )
    return resources


def check_policy(plan: Plan, policy_dir: Path | None = None) -> analyzer.AnalysisReport:
    """Send every resource of the plan through the served policy pack; the caller fails on mandatory."""
    assert plan.run is not None, "a plan read from JSON has no registrations to analyze"
    report = analyzer.analyze(analyzer_resources(plan.run), policy_dir=policy_dir)
    said = "\n".join(f"{v.urn} {v.message}" for v in report.violations)
    leaks = sorted(key for key, fake in plan.fake_secrets.items() if fake in said)
    if leaks:
        raise PlanError("the policy pack's messages repeat secret values of: " + ", ".join(leaks))
    return report


def _k8s_path(resource: Mapping[str, Any]) -> str | None:
    inputs = resource["inputs"]
    is_kubernetes = resource["type"].startswith("kubernetes:")
    is_chart = resource["type"].startswith("kubernetes:helm.sh/")
    if not is_kubernetes or not (resource["custom"] or is_chart):
        return None
    metadata = inputs.get("metadata") if isinstance(inputs.get("metadata"), dict) else {}
    namespace = inputs.get("namespace") or metadata.get("namespace") or "_cluster"
    kind = resource["type"].rsplit(":", 1)[-1]
    name = metadata.get("name") or inputs.get("name") or resource["name"]
    return f"k8s/{namespace}/{kind.lower()}-{name}.yaml"


def render_artifacts(plan: Plan) -> dict[str, str]:
    """What a reviewer reads: every file a component renders for a machine, every Kubernetes object."""
    artifacts: dict[str, str] = {}
    for resource in plan.resources:
        files = resource["inputs"].get("artifacts")
        if isinstance(files, dict):
            for relative, text in files.items():
                artifacts[str(relative)] = text if isinstance(text, str) else json.dumps(text, indent=2)
        path = _k8s_path(resource)
        if path is not None:
            body = {k: v for k, v in resource["inputs"].items() if k != "artifacts"}
            artifacts[path] = yaml.safe_dump(body, sort_keys=True, default_flow_style=False)
    return dict(sorted(artifacts.items()))


def write_artifacts(plan: Plan, directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / "plan.json").write_text(plan.text())
    for relative, text in plan.artifacts.items():
        target = directory / relative
        if directory.resolve() not in target.resolve().parents:
            raise PlanError(f"artifact path {relative!r} escapes {directory}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def tree_lines(plan: Plan) -> list[str]:
    """The resources per phase as an indented tree, with counts."""
    resources = plan.resources
    children: dict[str | None, list[dict[str, Any]]] = {}
    for resource in resources:
        children.setdefault(resource["parent"], []).append(resource)
    lines: list[str] = []

    def walk(resource: dict[str, Any], depth: int) -> None:
        marks = " [protected]" if resource["options"]["protect"] else ""
        lines.append(f"{'  ' * depth}{resource['type']}  {resource['name']}{marks}")
        for child in children.get(resource["urn"], []):
            walk(child, depth + 1)

    for phase in plan.document["phases"]:
        members = [r for r in resources if r["phase"] == phase["id"]]
        if not phase["deployed"]:
            continue
        roots = [r for r in members if r["type"] == PHASE_TYPE]
        lines.append(f"P{phase['id']} {phase['title']} ({len(members) - len(roots)} resources)")
        for root in roots:
            for child in children.get(root["urn"], []):
                walk(child, 1)
    outside = [r for r in resources if r["phase"] is None]
    if outside:
        lines.append(f"outside any phase ({len(outside)} resources)")
        for resource in outside:
            walk(resource, 1)
    return lines
