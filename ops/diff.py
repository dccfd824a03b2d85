"""``python -m ops diff OLD NEW``: what a change to the program does to the plan, and whether it is safe.

Exit 1 when a protected resource would be removed or its URN would change (which Pulumi does as delete +
create: the engine refuses it, preview included), when an object holding data would leave the cluster (not
kept, or kept inside a Namespace that goes), or when a create would meet an existing object with AlreadyExists:
that is the check a pull request needs before anyone runs ``pulumi up``. Resources a rollback keeps
(``retain_on_delete``) are listed as kept, not deleted (``ops/engine/lifecycle.py`` applies the engine's rules).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.engine import lifecycle


class DiffError(Exception):
    """A plan file that cannot be read."""


@dataclass(slots=True)
class PlanDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # urn -> changed input/option paths
    protected_removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # removed from the stack, left in the cluster (retainOnDelete)
    lost: list[str] = field(default_factory=list)  # objects holding data the update removes from the cluster
    refused: str | None = None  # why the engine would stop the update (AlreadyExists)
    takes_back: list[str] = field(default_factory=list)  # added kept objects: adopted if the cluster holds them

    @property
    def safe(self) -> bool:
        return not self.protected_removed and not self.lost and self.refused is None


def load_plan(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DiffError(f"cannot read plan {path}: {err}") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise DiffError(f"{path} is not a plan (no resources list); make one with `python -m ops plan --out`")
    for index, entry in enumerate(document["resources"]):
        if not (isinstance(entry, dict) and isinstance(entry.get("urn"), str)
                and isinstance(entry.get("inputs"), dict) and isinstance(entry.get("options"), dict)):
            raise DiffError(f"{path}: resources[{index}] is not a plan resource (needs urn, inputs and options); "
                            "make the plan with `python -m ops plan --out`")
    return document


def changed_paths(old: Any, new: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths (``spec.template.spec.containers[0].image``) where two values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                yield path
            else:
                yield from changed_paths(old[key], new[key], path)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from changed_paths(a, b, f"{prefix}[{index}]")
    elif old != new:
        yield prefix or "(value)"


def diff_plans(old: dict[str, Any], new: dict[str, Any]) -> PlanDiff:
    before = {r["urn"]: r for r in old["resources"]}
    after = {r["urn"]: r for r in new["resources"]}
    result = PlanDiff()
    result.added = [urn for urn in after if urn not in before]
    result.removed = [urn for urn in before if urn not in after]
    result.protected_removed = [urn for urn in result.removed if before[urn]["options"].get("protect")]
    if not result.protected_removed:
        try:
            step = lifecycle.Cluster.deployed(old).apply(new)
        except lifecycle.LifecycleError as err:
            result.refused = str(err)
        else:
            result.kept, result.lost = step.kept, step.lost
    result.takes_back = [urn for urn in result.added if urn in lifecycle.kept_objects(new)]
    for urn in before.keys() & after.keys():
        paths = [f"inputs.{p}" for p in changed_paths(before[urn]["inputs"], after[urn]["inputs"])]
        paths += [f"options.{p}" for p in changed_paths(before[urn]["options"], after[urn]["options"])]
        scripts = (old.get("secretScripts", {}).get(urn), new.get("secretScripts", {}).get(urn))
        if scripts[0] != scripts[1]:
            paths.append("inputs.stdin (secret; its script changed: see secretScripts)")
        if paths:
            result.changed[urn] = paths
    result.changed = dict(sorted(result.changed.items()))
    return result


def report_lines(result: PlanDiff) -> list[str]:
    lines = []
    for urn in result.added:
        flag = "  [kept state: takes back the object a rollback left, data and all]" \
            if urn in result.takes_back else ""
        lines.append(f"+ {urn}{flag}")
    for urn in result.removed:
        flag = "  [PROTECTED: would be deleted]" if urn in result.protected_removed else (
            "  [kept: stays in the cluster with its data]" if urn in result.kept else "")
        lines.append(f"- {urn}{flag}")
    for urn, paths in result.changed.items():
        lines.append(f"~ {urn}")
        lines.extend(f"    {path}" for path in paths)
    lines.extend(f"! data lost: {what} leaves the cluster" for what in result.lost)
    if result.refused:
        lines.append(f"! the update stops: {result.refused}")
    lines.append(
        f"{len(result.added)} to add, {len(result.changed)} to change, {len(result.removed)} to remove"
        + (f" ({len(result.kept)} kept in the cluster)" if result.kept else "")
        + (f"; {len(result.protected_removed)} protected resource(s) would be deleted or replaced"
           if result.protected_removed else "")
    )
    return lines
