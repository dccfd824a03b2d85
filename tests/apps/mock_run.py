"""Runs a few components under Pulumi's mock engine (ops.harness), constructed directly (not through the phase
engine), and gives the tests their registrations: plan form (secrets "[secret]"), secrets opened, and the raw
records. The programs are the functions of tests/apps/programs.py, called with keyword arguments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phase_runner import reveal, waits_for  # reveal: wire-form inputs with secrets opened

from ops import plan
from ops.engine import harness
from tests.apps import programs

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


@dataclass
class MockRun:
    resources: list[dict[str, Any]]  # plan entries, plus "revealed" (inputs with secrets opened)
    raw: list[harness.Registration]

    def named(self, name: str) -> dict[str, Any]:
        found = [r for r in self.resources if r["name"] == name]
        assert len(found) == 1, f"{len(found)} resources named {name!r}"
        return found[0]

    def of_type(self, type_token: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == type_token]

    def by_urn(self, urn: str) -> dict[str, Any]:
        return next(r for r in self.resources if r["urn"] == urn)

    def kubernetes_objects(self) -> Iterator[dict[str, Any]]:
        for resource in self.resources:
            if resource["type"].startswith("kubernetes:") and resource["custom"] \
                    and not resource["type"].startswith(("pulumi:providers:", "kubernetes:helm.sh")):
                yield resource

    def depends_on(self, resource: dict[str, Any], target: dict[str, Any]) -> bool:
        return waits_for(self.resources, resource, target)


def run(tmp: Path, program: str, **kwargs: Any) -> MockRun:
    result = harness.run(lambda: getattr(programs, program)(**kwargs), "blumeops", "test", {}, [])
    resources = []
    for record in result.registrations:
        entry = plan.plan_entry(record, phase=None)
        entry["revealed"] = reveal(record.wire_inputs)
        resources.append(entry)
    json.dumps(resources)  # plain data only
    return MockRun(resources, result.registrations)
