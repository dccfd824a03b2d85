"""``python -m ops runbook --from A --to B``: the migration steps between two target phases, from their plans.

The homelab wrote a markdown plan per phase by hand and every one drifted from what was done. This one is
generated from the plans at targets A and B (the plan JSON contract of ``ops/plan.py``):

- the steps ``pulumi up`` performs: every custom resource created, updated, replaced or deleted, in dependency order
  (its own and its ancestors' dependencies, its provider), grouped into waves that can run in parallel,
  with the critical path (the longest chain of steps that must run one after another);
- for host steps, the script each runs (``components/host/scripts/<script>.sh``, rendered under
  ``build/plan/<stack>/host/scripts/``);
- a Helm chart's objects (rendered offline: each is a resource ``<chart>:<namespace>/<name>`` under its
  ``kubernetes:helm.sh/v4:Chart``) are steps of their own; the markdown shows them one row per chart and wave;
- the manual preconditions those steps check (declared by their components under ``preconditions``);
- the health checks that prove the phase (``healthChecks``: what ``python -m ops check`` runs);
- what each step does, in words: a host step's own ``# does:`` / ``# undo:`` lines (declared with its
  ``HostStep`` by the component that makes it, carried in the script it runs), a cluster or tailnet object's
  kind and name; a kept object (``retain_on_delete``) says that a rollback leaves it and a rise takes it back;
- for A > B (a rollback): what the deletes undo (each component's "Undo:" paragraph), the state that stays (kept
  objects, with their data; protected state, which Pulumi refuses to delete, and what it depends on), and the
  checks that prove the legacy services are back (declared by the retirements as ``restoredChecks``).

``--from none`` is the empty stack: the first ``pulumi up``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pkgutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pulumi

import components
from components import health
from components.host import script as host_step
from ops import adopt, tailnet_api
from ops import diff as plan_diff
from ops import plan as offline_plan
from ops.check import reporting
from ops.stack import load_stack
from phases import settings as stack_settings

NONE = "none"
COMMAND_TYPE = "command:remote:Command"
CHART_PREFIX = "kubernetes:helm.sh/"
CREATE, UPDATE, REPLACE, DELETE, KEEP = "create", "update", "replace", "delete", "keep"


class RunbookError(Exception):
    """Targets or plans a runbook cannot be made from."""


Resource = dict[str, Any]


@dataclass(slots=True)
class Step:
    resource: Resource
    action: str
    wave: int = 0
    after: list[str] = field(default_factory=list)  # URNs of the steps it waits for
    script: str | None = None  # components/host/scripts/<script>.sh for a host step
    changed: list[str] = field(default_factory=list)  # changed paths of an update
    chart: str | None = None  # the chart resource a rendered chart object belongs to
    effect: str = ""  # what the step does, in words

    @property
    def urn(self) -> str:
        return str(self.resource["urn"])

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "urn": self.urn, "type": self.resource["type"], "name": self.resource["name"], "action": self.action,
            "phase": self.resource.get("phase"), "wave": self.wave, "after": self.after,
            "protected": bool(self.resource["options"].get("protect")),
        }
        if self.script is not None:
            document["script"] = self.script
        if self.changed:
            document["changed"] = self.changed
        if self.chart is not None:
            document["chart"] = self.chart
        if self.effect:
            document["does"] = self.effect
        return document


@dataclass(slots=True)
class Runbook:
    stack: str
    source: str
    target: str
    steps: list[Step]
    critical_path: list[str]
    preconditions: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    retired_checks: list[dict[str, Any]]
    protected: list[str]
    held_back: list[str]
    restores: list[dict[str, str]]
    kept: list[str] = field(default_factory=list)  # leave the stack's state; the objects stay in the cluster
    restored_checks: list[dict[str, Any]] = field(default_factory=list)  # prove the legacy services are back

    @property
    def rollback(self) -> bool:
        return self.source != NONE and stack_settings.phase_index(self.source) > stack_settings.phase_index(self.target)

    @property
    def waves(self) -> list[list[Step]]:
        count = max((step.wave for step in self.steps), default=0)
        return [[step for step in self.steps if step.wave == wave] for wave in range(1, count + 1)]

    def document(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "from": self.source, "to": self.target,
            "direction": "rollback" if self.rollback else "forward",
            "steps": [step.document() for step in self.steps],
            "waves": [[step.urn for step in wave] for wave in self.waves],
            "criticalPath": self.critical_path, "preconditions": self.preconditions,
            "healthChecks": self.checks, "retiredHealthChecks": self.retired_checks,
            "protected": self.protected, "heldBack": self.held_back, "restores": self.restores,
            "kept": self.kept, "restoredChecks": self.restored_checks,
        }


# ---- the graph -------------------------------------------------------------------------------------------

def operations(resources: Mapping[str, Resource]) -> set[str]:
    """The resources the engine acts on: custom resources, and Helm charts the plan does not expand into
    their objects (a chart is then one install)."""
    parents = {r["parent"] for r in resources.values() if r.get("parent")}
    return {urn for urn, r in resources.items()
            if r["custom"] or (r["type"].startswith(CHART_PREFIX) and urn not in parents)}


def _descendants(resources: Mapping[str, Resource], acting: set[str]) -> dict[str, list[str]]:
    """component URN -> the operations below it (depending on a component waits for all of them)."""
    children: dict[str, list[str]] = {}
    for urn, resource in resources.items():
        if resource.get("parent"):
            children.setdefault(resource["parent"], []).append(urn)
    found: dict[str, list[str]] = {}

    def walk(urn: str) -> list[str]:
        if urn not in found:
            below: list[str] = []
            for child in children.get(urn, []):
                if child in acting:
                    below.append(child)
                below.extend(walk(child))
            found[urn] = below
        return found[urn]

    for urn in resources:
        walk(urn)
    return found


def _references(value: Any, urns: Mapping[str, Resource]) -> Iterable[str]:
    if isinstance(value, str):
        if value in urns:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _references(item, urns)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item, urns)


def dependencies(plan: Mapping[str, Any]) -> dict[str, set[str]]:
    """operation URN -> the operations it waits for: its dependencies and its ancestors' (components expanded
    to the operations below them), its provider, and resources its inputs name."""
    resources = {r["urn"]: r for r in plan["resources"]}
    acting = operations(resources)
    below = _descendants(resources, acting)

    def expand(urn: str) -> set[str]:
        if urn not in resources:
            return set()
        return ({urn} if urn in acting else set()) | set(below.get(urn, []))

    graph: dict[str, set[str]] = {}
    for urn, resource in resources.items():
        if urn not in acting:
            continue
        wanted: set[str] = set()
        node: Resource | None = resource
        while node is not None:
            for dependency in node["options"].get("dependsOn", []):
                wanted |= expand(dependency)
            node = resources.get(node["parent"]) if node.get("parent") else None
        if resource.get("provider"):
            wanted |= expand(resource["provider"])
        for reference in _references(resource["inputs"], resources):
            wanted |= expand(reference)
        wanted.discard(urn)
        graph[urn] = wanted
    return graph


def _closure(graph: Mapping[str, set[str]], start: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        urn = todo.pop()
        for dependency in graph.get(urn, ()):
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


def schedule(steps: list[Step], graph: Mapping[str, set[str]], reverse: bool = False) -> list[str]:
    """Give each step its wave (1 + the latest wave among the steps it waits for, through resources that do
    not change) and return the critical path. ``reverse``: deletes, which wait for their dependants."""
    by_urn = {step.urn: step for step in steps}
    edges: dict[str, set[str]] = {urn: set() for urn in graph}
    for urn, wanted in graph.items():
        for dependency in wanted:
            if reverse:
                edges.setdefault(dependency, set()).add(urn)
            else:
                edges[urn].add(dependency)
    wave: dict[str, int] = {}
    via: dict[str, str | None] = {}
    visiting: set[str] = set()

    def level(urn: str) -> int:
        if urn in wave:
            return wave[urn]
        if urn in visiting:
            raise RunbookError(f"dependency cycle through {urn}")
        visiting.add(urn)
        best, through = 0, None
        for dependency in sorted(edges.get(urn, ())):  # sorted: the same critical path on every run
            value = level(dependency)
            if value > best:
                best, through = value, dependency
        visiting.discard(urn)
        wave[urn] = best + (1 if urn in by_urn else 0)
        via[urn] = through
        return wave[urn]

    for step in steps:
        step.wave = level(step.urn)
        step.after = _direct_waits(edges, step.urn, by_urn)
    last = max(steps, key=lambda s: s.wave, default=None)
    path: list[str] = []
    node: str | None = last.urn if last else None
    while node is not None:
        if node in by_urn:
            path.append(node)
        node = via.get(node)
    return list(reversed(path))


def _direct_waits(edges: Mapping[str, set[str]], start: str, steps: Mapping[str, Step]) -> list[str]:
    """The steps ``start`` waits for directly or through resources that do not change (not through other
    steps: those are waited for already)."""
    found: set[str] = set()
    todo = list(edges.get(start, ()))
    seen: set[str] = set()
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        if urn in steps:
            found.add(urn)
        else:
            todo.extend(edges.get(urn, ()))
    return sorted(found)


def _dotted(path: str) -> str:
    """``metadata.annotations["tailscale.com/hostname"]`` -> ``metadata.annotations.tailscale.com/hostname``."""
    return path.replace('["', ".").replace("']", "").replace("['", ".").replace('"]', "")


def update_action(resource: Resource, changed: Sequence[str]) -> str:
    """``replace`` when a changed input forces a new resource: a host step's ``triggers`` (its identity), a
    Kubernetes object's name or namespace, or a path of its ``replaceOnChanges`` (when the plan records
    them); ``update`` otherwise."""
    forcing = [f"inputs.{_dotted(path)}" for path in resource["options"].get("replaceOnChanges", [])]
    if resource["type"] == COMMAND_TYPE:
        forcing.append("inputs.triggers")
    if resource["type"].startswith("kubernetes:"):
        forcing += ["inputs.metadata.name", "inputs.metadata.namespace"]
    if any(path == force or path.startswith(force + ".") or path.startswith(force + "[")
           for path in changed for force in forcing):
        return REPLACE
    return UPDATE


# ---- what the steps run and check ------------------------------------------------------------------------

def _stdin_texts(resource: Resource, rendered: Mapping[str, str], plan: Mapping[str, Any]) -> list[str]:
    """The texts a host step's script can be read from: its stdin; for a stdin that holds a secret
    (``[secret]`` in the plan JSON) the plan's ``secretScripts`` and the rendered ``host/scripts/<step>.sh``
    (``rendered``: the artifacts of a plan built here)."""
    texts = [resource["inputs"].get("stdin"), plan.get("secretScripts", {}).get(resource["urn"]),
             rendered.get(f"host/scripts/{resource['name']}.sh")]
    return [text for text in texts if isinstance(text, str) and text != offline_plan.SECRET]


def host_script(resource: Resource, rendered: Mapping[str, str], plan: Mapping[str, Any] | None = None) -> str | None:
    """The script file a host step runs, from the header of its stdin (or, for a secret stdin, of the plan's
    ``secretScripts`` or its rendered script)."""
    if resource["type"] != COMMAND_TYPE:
        return None
    for text in _stdin_texts(resource, rendered, plan or {}):
        for line in text.splitlines()[:3]:
            if "(components/host/scripts/" in line:
                return line.split("(", 1)[1].split(")", 1)[0]
    return None


def _object_label(resource: Resource) -> str:
    metadata = resource["inputs"].get("metadata") or {}
    kind = str(resource["type"]).rsplit(":", 1)[-1]
    name = metadata.get("name") if isinstance(metadata, dict) else None
    where = f"{metadata['namespace']}/" if isinstance(metadata, dict) and metadata.get("namespace") else ""
    return f"{kind} {where}{name}" if isinstance(name, str) else f"{kind} {resource['name']}"


def step_effect(resource: Resource, action: str, rendered: Mapping[str, str], plan: Mapping[str, Any]) -> str:
    """What the step does, in words (``action``: create, update, replace, delete, keep)."""
    if resource["type"] == COMMAND_TYPE:
        prefix = host_step.UNDOES if action == DELETE else host_step.DOES
        for text in _stdin_texts(resource, rendered, plan):
            for line in text.splitlines()[:6]:
                if line.startswith(prefix):
                    said = line.removeprefix(prefix).strip()
                    return said if action in (CREATE, DELETE) else f"runs again: {said}"
        return ""
    label = _object_label(resource) if resource["type"].startswith("kubernetes:") \
        else f"{str(resource['type']).rsplit(':', 1)[-1]} {resource['name']}"
    kept = bool(resource["options"].get("retainOnDelete"))
    if action == KEEP:
        return f"leaves {label} in the cluster with its data (kept on rollback); the stack forgets it"
    if action == CREATE and kept:
        return f"creates {label}, or takes back the one a rollback kept, data and all"
    verbs = {CREATE: "creates", UPDATE: "updates", REPLACE: "replaces", DELETE: "deletes"}
    return f"{verbs[action]} {label}"


def undo_text(type_token: str) -> str | None:
    """The "Undo:" paragraph of the component class a type token names (``blumeops:host:ZotRegistry``)."""
    name = type_token.rsplit(":", 1)[-1]
    for module_info in pkgutil.walk_packages(components.__path__, "components."):
        module = importlib.import_module(module_info.name)
        found = getattr(module, name, None)
        if inspect.isclass(found) and issubclass(found, pulumi.ComponentResource) and found.__doc__:
            doc = inspect.cleandoc(found.__doc__)
            if "Undo:" in doc:
                return " ".join(doc.split("Undo:", 1)[1].split("\n\n", 1)[0].split())
    return None


def _declared(resources: Iterable[Resource], key: str) -> list[tuple[Resource, dict[str, Any]]]:
    return [(r, item) for r in resources for item in (r["inputs"].get(key) or []) if isinstance(item, dict)]


def _check_row(resource: Resource, item: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": item.get("name"), "kind": item.get("kind"), "side": item.get("side"),
            "phase": resource.get("phase"), "component": resource["name"]}


# ---- the runbook -----------------------------------------------------------------------------------------

def _empty_plan(stack: str) -> dict[str, Any]:
    return {"stack": stack, "targetPhase": NONE, "resources": []}


def chart_of(resource: Resource, resources: Mapping[str, Resource]) -> str | None:
    """The name of the Helm chart resource whose rendered object ``resource`` is (None: not a chart object)."""
    parent = resources.get(resource.get("parent") or "")
    return str(parent["name"]) if parent is not None and parent["type"].startswith(CHART_PREFIX) else None


def build_runbook(before: Mapping[str, Any], after: Mapping[str, Any],
                  before_artifacts: Mapping[str, str] | None = None,
                  after_artifacts: Mapping[str, str] | None = None) -> Runbook:
    """The runbook that takes the stack from plan ``before`` to plan ``after`` (``*_artifacts``: their rendered
    artifacts, when the plans were built here: they name the scripts of host steps with a secret stdin)."""
    old = {r["urn"]: r for r in before["resources"]}
    new = {r["urn"]: r for r in after["resources"]}
    old_rendered, new_rendered = before_artifacts or {}, after_artifacts or {}
    change = plan_diff.diff_plans(dict(before), dict(after))
    forward: list[Step] = []
    acting_new, acting_old = operations(new), operations(old)
    for urn, resource in new.items():
        if urn not in acting_new:
            continue
        if urn in change.added:
            forward.append(Step(resource, CREATE, script=host_script(resource, new_rendered, after),
                                chart=chart_of(resource, new),
                                effect=step_effect(resource, CREATE, new_rendered, after)))
        elif urn in change.changed:
            paths = change.changed[urn]
            action = update_action(resource, paths)
            forward.append(Step(resource, action, script=host_script(resource, new_rendered, after),
                                changed=paths, chart=chart_of(resource, new),
                                effect=step_effect(resource, action, new_rendered, after)))
    deletes = []
    for urn in old:
        if urn in change.removed and urn in acting_old:
            action = KEEP if old[urn]["options"].get("retainOnDelete") else DELETE
            deletes.append(Step(old[urn], action, script=host_script(old[urn], old_rendered, before),
                                chart=chart_of(old[urn], old),
                                effect=step_effect(old[urn], action, old_rendered, before)))
    new_graph, old_graph = dependencies(after), dependencies(before)
    path = schedule(forward, new_graph)
    protected = [s.urn for s in deletes if s.resource["options"].get("protect")]
    held = _closure(old_graph, protected) & {s.urn for s in deletes}
    # Only what Pulumi can delete is a step; the protected state and what it needs stay.
    deletes = [s for s in deletes if s.urn not in protected and s.urn not in held]
    delete_path = schedule(deletes, old_graph, reverse=True)
    offset = max((s.wave for s in forward), default=0)
    last_forward = [s.urn for s in forward if s.wave == offset]
    for step in deletes:  # Pulumi deletes after it created and updated (everything, so the last wave too)
        step.wave += offset
        if not step.after:
            step.after = list(last_forward)
    steps = sorted(forward, key=lambda s: (s.wave, list(new).index(s.urn)))
    steps += sorted(deletes, key=lambda s: (s.wave, list(old).index(s.urn)))
    critical = path + delete_path if deletes and forward else (path or delete_path)

    running = {s.resource["name"] for s in forward}
    preconditions: dict[str, dict[str, Any]] = {}
    for _resource, item in _declared(new.values(), health.PRECONDITIONS_KEY):
        if item.get("checkedBy") in running:
            entry = preconditions.setdefault(str(item.get("text")), {"text": item.get("text"), "checkedBy": []})
            entry["checkedBy"].append(item.get("checkedBy"))
    touched_phases = {s.resource.get("phase") for s in steps}
    source, target = str(before.get("targetPhase")), str(after.get("targetPhase"))
    rollback = source != NONE and stack_settings.phase_index(source) > stack_settings.phase_index(target)
    checks = [_check_row(r, item) for r, item in _declared(new.values(), health.HEALTH_KEY)
              if rollback or r.get("phase") in touched_phases]
    retired = [_check_row(r, item) for r, item in _declared(old.values(), health.HEALTH_KEY) if r["urn"] not in new]
    restored_checks = [{**_check_row(r, item), "target": item.get("url") or item.get("label")}
                       for r, item in _declared(old.values(), health.RESTORED_KEY) if r["urn"] not in new]
    restores: list[dict[str, str]] = []
    for urn in change.removed:
        resource = old[urn]
        if not resource["custom"] and resource["type"].startswith("blumeops:") and resource["type"] != \
                offline_plan.PHASE_TYPE:
            text = undo_text(resource["type"])
            if text:
                restores.append({"component": resource["name"], "type": resource["type"], "undo": text})
    return Runbook(
        stack=str(after.get("stack") or before.get("stack")), source=source, target=target, steps=steps,
        critical_path=critical, preconditions=list(preconditions.values()), checks=checks, retired_checks=retired,
        protected=protected, held_back=sorted(held - set(protected)), restores=restores,
        kept=[s.urn for s in deletes if s.action == KEEP], restored_checks=restored_checks,
    )


# ---- markdown --------------------------------------------------------------------------------------------

def _label(resource: Mapping[str, Any]) -> str:
    return f"`{resource['name']}` ({resource['type']})"


def _rows(wave: list[Step]) -> list[list[Step]]:
    """The rows of a wave: each step alone, except a chart's objects with the same action, one row together
    (at the place of the first)."""
    rows: list[list[Step]] = []
    grouped: dict[tuple[str, str], list[Step]] = {}
    for step in wave:
        if step.chart is None:
            rows.append([step])
        elif (step.chart, step.action) in grouped:
            grouped[(step.chart, step.action)].append(step)
        else:
            grouped[(step.chart, step.action)] = [step]
            rows.append(grouped[(step.chart, step.action)])
    return rows


def _kinds(steps: Sequence[Step]) -> str:
    counts: dict[str, int] = {}
    for step in steps:
        kind = str(step.resource["type"]).rsplit(":", 1)[-1]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _chart_object(urn: str) -> str | None:
    """The chart name of a rendered chart object's URN (its parent type is a Helm chart; its name
    ``<chart>:<namespace>/<name>``), None for any other URN."""
    parts = urn.split("::", 3)  # urn:pulumi:<stack>, <project>, <parent types>$<type>, <name>
    if len(parts) < 4:
        return None
    parents, name = parts[2].split("$")[:-1], parts[3]
    return name.split(":", 1)[0] if parents and parents[-1].startswith(CHART_PREFIX) and ":" in name else None


def markdown(runbook: Runbook, artifacts_dir: str) -> str:
    direction = "rollback" if runbook.rollback else "forward"
    waves = runbook.waves
    lines = [f"# Runbook: stack {runbook.stack}, phase {runbook.source} → {runbook.target} ({direction})", ""]
    command = "make up" if runbook.target == NONE else f"pulumi config set blumeops:phase {runbook.target} && make up"
    if runbook.protected:
        lines += [f"`{command}` stops before it changes anything: Pulumi refuses to delete a protected resource, "
                  f"preview included, and this rollback would delete {len(runbook.protected)} (see \"State that "
                  "stays\"). The steps below are what it performs once that state is dealt with on purpose. "
                  f"They are {len(runbook.steps)} steps in {len(waves)} waves; the critical path is "
                  f"{len(runbook.critical_path)} steps long.", ""]
    else:
        lines += [f"`{command}` performs {len(runbook.steps)} steps in {len(waves)} waves; the critical path is "
                  f"{len(runbook.critical_path)} steps long."]
    lines += [f"Generated by `python -m ops runbook --from {runbook.source} --to {runbook.target}` from the two "
              "plans: every step is a resource of them.", ""]
    if runbook.preconditions:
        lines += ["## Before you start: manual preconditions the steps check", ""]
        for item in runbook.preconditions:
            checked = ", ".join(f"`{name}`" for name in item["checkedBy"])
            lines.append(f"- [ ] {item['text']} (checked by {checked})")
        lines.append("")
    lines += ["## Steps", ""]
    by_urn = {step.urn: step for step in runbook.steps}
    number = 0
    for index, wave in enumerate(waves, start=1):
        parallel = f", {len(wave)} in parallel" if len(wave) > 1 else ""
        lines += [f"### Wave {index}{parallel}", "", "| # | action | resource | phase | does | runs / changes |",
                  "|---|---|---|---|---|---|"]
        for row in _rows(wave):
            step = row[0]
            if len(row) > 1:
                first, number = number + 1, number + len(row)
                does = {CREATE: "deploys them (Pulumi waits until each is ready)", UPDATE: "updates them",
                        REPLACE: "replaces them", DELETE: "removes them", KEEP: "leaves them in the cluster"}
                lines.append(f"| {first}-{number} | {step.action} | {len(row)} objects of the chart `{step.chart}` | "
                             f"{step.resource.get('phase') or '-'} | {does[step.action]} | {_kinds(row)} |")
                continue
            number += 1
            detail = ""
            if step.script is not None:
                action = "delete" if step.action == DELETE else "create"
                detail = (f"`{step.script}` ({action}); rendered: "
                          f"`{artifacts_dir}/host/scripts/{step.resource['name']}.sh`")
            elif step.changed:
                detail = ", ".join(f"`{path}`" for path in step.changed[:4]) + (" …" if len(step.changed) > 4 else "")
            action = step.action
            if action == REPLACE and step.resource["options"].get("deleteBeforeReplace"):
                action = "replace (delete first)"
            lines.append(f"| {number} | {action} | {_label(step.resource)} | "
                         f"{step.resource.get('phase') or '-'} | {step.effect.replace('|', '/')} | {detail} |")
        lines.append("")
    if runbook.critical_path:
        lines += ["### Critical path", "", " → ".join(f"`{by_urn[u].resource['name']}`" for u in runbook.critical_path
                                                      if u in by_urn), ""]
    if runbook.checks:
        lines += ["## Health checks that prove it", "", "`python -m ops check` runs these afterwards:", "",
                  "| check | kind | side | phase | declared by |", "|---|---|---|---|---|"]
        lines += [f"| {c['name']} | {c['kind']} | {c['side']} | {c['phase']} | `{c['component']}` |"
                  for c in runbook.checks]
        lines.append("")
    if runbook.rollback or runbook.restores or runbook.protected:
        lines += ["## What the rollback restores", ""]
        lines += [f"- `{item['component']}` ({item['type']}): {item['undo']}" for item in runbook.restores] or \
            ["- nothing beyond removing the steps above"]
        lines.append("")
        if runbook.restored_checks:
            lines += ["## Checks that prove the legacy services are back", "",
                      "Run them after the rollback (`python -m ops check` checks what the lower target deploys; "
                      "these are what the retirements restored):", "",
                      "| check | kind | side | target | declared by |", "|---|---|---|---|---|"]
            lines += [f"| {c['name']} | {c['kind']} | {c['side']} | `{c['target']}` | `{c['component']}` |"
                      for c in runbook.restored_checks]
            lines.append("")
        if runbook.retired_checks:
            lines += ["Checks that no longer apply: " + ", ".join(c["name"] for c in runbook.retired_checks), ""]
        lines += ["## State that stays", ""]
        lines += [f"- `{urn.rsplit('::', 1)[-1]}`: kept in the cluster with its data (retain_on_delete); raising "
                  "the target again takes it back" for urn in runbook.kept]
        if runbook.protected:
            lines += [f"- `{urn}` (protected): Pulumi refuses to delete it and stops the whole update with an error "
                      f"naming it; remove it only deliberately (`pulumi state unprotect '{urn}'`, after which the "
                      "update deletes it and its data)" for urn in runbook.protected]
            charts: dict[str, int] = {}
            for urn in runbook.held_back:
                chart = _chart_object(urn)
                if chart is None:
                    lines.append(f"- `{urn.rsplit('::', 1)[-1]}` stays with it (the protected state needs it)")
                else:
                    charts[chart] = charts.get(chart, 0) + 1
            lines += [f"- the chart `{chart}` ({count} objects) stays with it (the protected state needs it)"
                      for chart, count in charts.items()]
        elif not runbook.kept:
            lines.append("- none among what this rollback removes")
        lines.append("")
    return "\n".join(lines)


# ---- the command -----------------------------------------------------------------------------------------

def plan_at(stack: str, phase: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The plan document at ``phase`` and its rendered artifacts."""
    if phase == NONE:
        return _empty_plan(stack), {}
    try:
        plan = offline_plan.build_plan(load_stack(stack, phase))
    except offline_plan.PlanError as err:
        raise RunbookError(f"the plan at phase {phase}: {err}") from None
    return plan.document, plan.artifacts


def _side(stack: str, phase: str, path: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    return (plan_diff.load_plan(Path(path)), {}) if path else plan_at(stack, phase)


def adoption_command(args: argparse.Namespace, out: TextIO) -> int:
    """``--adopt N``: the adoption's runbook (ops/adopt.py), from the live homelab when ``--cluster`` is given."""
    if args.source or args.target:
        raise RunbookError("--adopt N is a runbook of its own: give it without --from/--to")
    document = offline_plan.build_plan(load_stack(args.stack, args.adopt)).document
    adoption = None
    if args.cluster:
        try:
            adoption = adopt.live_adoption(document, args.adopt, args.cluster, args.tailscale_api, os.environ)
        except (adopt.AdoptError, tailnet_api.TailnetApiError, OSError) as err:
            raise RunbookError(str(err)) from None
    out.write(adopt.runbook(document, args.adopt, args.stack, adoption))
    return 0


def command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if getattr(args, "adopt", None):
        return adoption_command(args, out)
    if not args.source or not args.target:
        raise RunbookError("give --from A --to B (a phase change), or --adopt N (taking over the homelab at N)")
    if args.source == args.target:
        raise RunbookError(f"--from and --to are both {args.source}: a runbook goes from one target to another")
    if args.target == NONE:
        raise RunbookError("--to none would destroy the stack: `pulumi destroy` is not a phase change")
    before, before_artifacts = _side(args.stack, args.source, args.from_plan)
    after, after_artifacts = _side(args.stack, args.target, args.to_plan)
    before.setdefault("targetPhase", args.source)
    runbook = build_runbook(before, after, before_artifacts, after_artifacts)
    if args.json:
        json.dump(runbook.document(), out, indent=2)
        out.write("\n")
    else:
        out.write(markdown(runbook, f"build/plan/{args.stack}"))
    return 0


def add_parser(sub: Any, run: Callable[[argparse.Namespace], int]) -> None:
    runbook = sub.add_parser(
        "runbook",
        help="the ordered steps, waves, preconditions, checks (and rollback) between two target phases",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m ops runbook --from 0 --to 1\n  python -m ops runbook --from 1 --to 0 --json\n"
               "  python -m ops runbook --from none --to 0 > first-up.md\n  python -m ops runbook --adopt 6",
    )
    phases: Sequence[str] = (NONE, *stack_settings.PHASE_IDS)
    runbook.add_argument("--from", dest="source", choices=phases, help="the target it starts at")
    runbook.add_argument("--to", dest="target", choices=stack_settings.PHASE_IDS,
                         help="the target it ends at (lower than --from: a rollback)")
    runbook.add_argument("--adopt", choices=stack_settings.PHASE_IDS,
                         help="instead: the runbook that takes over the homelab as it runs at phase N (ops adopt)")
    runbook.add_argument("--cluster", help="with --adopt: the live cluster's snapshot (a file, or - for stdin); the "
                                           "tailnet is then read through the Tailscale API")
    runbook.add_argument("--tailscale-api", default=tailnet_api.DEFAULT_BASE_URL, help=argparse.SUPPRESS)
    runbook.add_argument("--stack", default="indri")
    runbook.add_argument("--from-plan", help="use this plan JSON for --from instead of planning it")
    runbook.add_argument("--to-plan", help="use this plan JSON for --to instead of planning it")
    runbook.add_argument("--json", action="store_true", help="print the runbook as JSON")
    runbook.set_defaults(func=reporting(run, RunbookError))
