"""``python -m ops bench``: what an offline plan and the policy pack cost, as ratios to the SDK floor.

Two measurements, both on this machine, nothing cached unless said:

- **the plan**: ``python ../shared/perf/floor.py N`` (the SDKs imported, N plain resources registered under
  Pulumi's mocks), ``ops plan`` cold (``build/`` removed: a fresh clone, CI) and warm (every cache kept), each
  ``--runs`` times, interleaved, N the plan's resource count; the medians and their ratios;
- **the pack**: on every resource of the plan, each chart's largest object, and a synthetic resource of about
  1 MB (a custom resource of an unknown kind, which the pack walks whole): the time the pack itself spends on
  each request (its servicer's ``Analyze``, the class the served pack runs, called in-process: what is left
  of a round trip without gRPC's transport), the slowest against the budget of 50 ms, and the total; and the
  served pack's total over its real gRPC interface (no verdict cache), as ``ops plan`` pays it.

It removes ``build/`` for the cold runs (every file there is a cache). ``--json`` prints the figures for
tools; docs/performance.md quotes a run, with its date.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ops import plan as offline_plan
from ops.engine import analyzer
from ops.stack import ROOT, load_stack
from phases import settings as stack_settings

FLOOR = ROOT.parent / "shared" / "perf" / "floor.py"
BUDGET_MS = 50.0  # no single resource may cost the pack more than this


class BenchError(Exception):
    """What the benchmark needs is missing (the floor script)."""


@dataclass(slots=True)
class PackTiming:
    name: str
    type: str
    size: int  # bytes of the properties as JSON
    milliseconds: float


@dataclass(slots=True)
class Bench:
    resources: int
    floor: list[float] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    pack: list[PackTiming] = field(default_factory=list)
    served_ms: float = 0.0  # the same requests through the served pack's gRPC interface
    charts: dict[str, PackTiming] = field(default_factory=dict)  # chart -> its largest object
    synthetic: PackTiming | None = None

    def ratio(self, runs: Sequence[float]) -> float:
        return statistics.median(runs) / statistics.median(self.floor) if runs and self.floor else 0.0

    def document(self) -> dict[str, Any]:
        slowest = max(self.pack, key=lambda t: t.milliseconds, default=None)
        return {
            "resources": self.resources,
            "seconds": {"floor": self.floor, "cold": self.cold, "warm": self.warm},
            "ratio": {"cold": round(self.ratio(self.cold), 2), "warm": round(self.ratio(self.warm), 2)},
            "pack": {
                "totalMs": round(sum(t.milliseconds for t in self.pack), 1),
                "servedTotalMs": round(self.served_ms, 1),
                "slowest": _timing(slowest) if slowest else None,
                "overBudget": [_timing(t) for t in self.pack if t.milliseconds > BUDGET_MS],
                "chartLargest": {chart: _timing(t) for chart, t in self.charts.items()},
                "synthetic": _timing(self.synthetic) if self.synthetic else None,
            },
        }


def _timing(timing: PackTiming) -> dict[str, Any]:
    return {"name": timing.name, "type": timing.type, "bytes": timing.size, "ms": round(timing.milliseconds, 1)}


def _seconds(command: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(env) if env is not None else None, timeout=600)
    return time.perf_counter() - start


def measure_plan(bench: Bench, stack: str, runs: int) -> None:
    if not FLOOR.is_file():
        raise BenchError(f"no SDK floor at {FLOOR}: the benchmark needs ../shared/perf/floor.py beside the repo")
    plan_command = [sys.executable, "-m", "ops", "plan", "--stack", stack]
    for _ in range(runs):
        bench.floor.append(_seconds([sys.executable, str(FLOOR), str(bench.resources)]))
        shutil.rmtree(ROOT / "build", ignore_errors=True)
        bench.cold.append(_seconds(plan_command))
        bench.warm.append(_seconds(plan_command))


def synthetic_resource(size: int = 1_000_000) -> analyzer.AnalyzerResource:
    """A custom resource of a kind no rule knows, about ``size`` bytes of nested fields with a pod spec deep
    inside: the pack must walk all of it."""
    def branch(depth: int) -> dict[str, Any]:
        if depth == 0:
            return {"note": "x" * 40, "count": 3, "enabled": True}
        return {f"field{i}": branch(depth - 1) for i in range(4)}

    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "app",
                                                                   "image": "ghcr.io/miniflux/miniflux:2.2.16"}]}}}
    index = 0
    while len(json.dumps(spec)) < size:
        spec[f"block{index}"] = branch(5)
        index += 1
    properties = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "big"}, "spec": spec}
    return analyzer.AnalyzerResource(urn="urn:pulumi:indri::blumeops::kubernetes:example.com/v1:Widget::big",
                                     type="kubernetes:example.com/v1:Widget", name="big", properties=properties)


def pack_servicer() -> Any:
    """The servicer the served pack runs (rules/wire.py's subclass of pulumi_policy's), built in-process with
    the pack's policies at their own enforcement levels, as `policy/__main__.py` builds it."""
    policy_dir = str(analyzer.DEFAULT_POLICY_DIR)
    if policy_dir not in sys.path:
        sys.path.insert(0, policy_dir)
    from pulumi_policy import EnforcementLevel
    from pulumi_policy import policy as served
    from rules import pack, wire

    wire.install()
    policies: list[Any] = list(pack.POLICIES)
    # as the served pack does before it serves (policy/__main__.py): what is loaded by now is out of the
    # collector's sight, so a collection during a timed call scans what the calls made, not this process's plan
    gc.freeze()
    return served._PolicyAnalyzerServicer(pack.NAME, "0.0.1", policies, EnforcementLevel.ADVISORY, None,
                                          pack.DESCRIPTION)


def measure_pack(bench: Bench, plan: offline_plan.Plan) -> None:
    resources = [*(offline_plan.analyzer_resources(plan.run) if plan.run is not None else []), synthetic_resource()]
    requests = [analyzer.analyze_request(resource) for resource in resources]  # the engine's side, not timed
    charts = offline_plan.chart_origins(plan)
    servicer = pack_servicer()
    for resource, request in zip(resources, requests, strict=True):
        servicer.Analyze(request, None)  # warm: imports and compiled patterns are paid once, not per resource
        start = time.perf_counter()
        servicer.Analyze(request, None)
        elapsed = (time.perf_counter() - start) * 1000
        timing = PackTiming(resource.name, resource.type, request.properties.ByteSize(), elapsed)
        if resource is resources[-1]:
            bench.synthetic = timing
            continue
        bench.pack.append(timing)
        origin = charts.get(resource.urn)
        if origin is not None and (origin not in bench.charts or bench.charts[origin].size < timing.size):
            bench.charts[origin] = timing
    with analyzer.PolicyAnalyzer(cache_dir=None) as pack:
        start = time.perf_counter()
        for request in requests[:-1]:
            pack.call_analyze(request)
        bench.served_ms = (time.perf_counter() - start) * 1000


def report_lines(bench: Bench) -> list[str]:
    document = bench.document()
    lines = []
    if bench.floor:
        def runs(values: Sequence[float]) -> str:
            return " ".join(f"{value:.2f}" for value in values)

        lines += [
            f"plan, {bench.resources} resources, {len(bench.floor)} interleaved runs (median; every run in seconds):",
            f"  floor {statistics.median(bench.floor):.2f} s  ({runs(bench.floor)})",
            f"  cold  {statistics.median(bench.cold):.2f} s  x{document['ratio']['cold']}  ({runs(bench.cold)})",
            f"  warm  {statistics.median(bench.warm):.2f} s  x{document['ratio']['warm']}  ({runs(bench.warm)})",
        ]
    pack = document["pack"]
    lines.append(f"policy pack on {len(bench.pack)} resources: {pack['totalMs']} ms in the pack; "
                 f"{pack['servedTotalMs']} ms served over gRPC (no verdict cache)")
    if pack["slowest"]:
        slowest = pack["slowest"]
        lines.append(f"  slowest: {slowest['name']} ({slowest['bytes']} bytes) {slowest['ms']} ms")
    lines.append(f"  over {BUDGET_MS:.0f} ms: " + (", ".join(f"{t['name']} {t['ms']} ms" for t in pack["overBudget"])
                                                    or "none"))
    for chart, timing in sorted(pack["chartLargest"].items()):
        lines.append(f"  {chart}: largest object {timing['name']} ({timing['bytes']} bytes) {timing['ms']} ms")
    if pack["synthetic"]:
        synthetic = pack["synthetic"]
        lines.append(f"  synthetic custom resource of {synthetic['bytes']} bytes: {synthetic['ms']} ms")
    return lines


def command(args: argparse.Namespace) -> int:
    plan = offline_plan.build_plan(load_stack(args.stack, args.phase))
    bench = Bench(resources=len(plan.resources))
    measure_pack(bench, plan)
    if not args.pack_only:
        measure_plan(bench, args.stack, args.runs)
    if args.json:
        print(json.dumps(bench.document(), indent=2))
    else:
        print("\n".join(report_lines(bench)))
    return 0


def add_parser(sub: Any, run: Any) -> None:
    bench = sub.add_parser("bench", help="what a plan and the policy pack cost, as ratios to the SDK floor")
    bench.add_argument("--stack", default="indri")
    bench.add_argument("--phase", choices=stack_settings.PHASE_IDS, help="bench this target instead of the stack's")
    bench.add_argument("--runs", type=int, default=3, help="interleaved runs of floor, cold and warm plan")
    bench.add_argument("--pack-only", action="store_true", help="only the policy pack (no plan runs)")
    bench.add_argument("--json", action="store_true", help="machine-readable")
    bench.set_defaults(func=run)
