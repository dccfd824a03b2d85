"""``python -m ops plan|diff|phases|settings|images|charts``: the offline preview and the checks around it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import phases as phase_engine
from ops import adopt, bench, charts, check, console, images, review, runbook
from ops import diff as plan_diff
from ops import plan as offline_plan
from ops.engine import analyzer, harness
from ops.stack import ROOT, StackError, load_stack
from phases import settings as stack_settings


def _plan(args: argparse.Namespace) -> int:
    stack = load_stack(args.stack, args.phase)
    if args.require_charts:
        os.environ[charts.REQUIRED_ENV] = "1"
    served = analyzer.PolicyAnalyzer()
    if served.cache_is_cold():  # every resource will need the pack: let it start while the program runs
        served.launch()
    early = offline_plan.EarlyVerdicts(served)
    try:
        plan = offline_plan.build_plan(stack, on_program=early.program_ran, on_registrations=early.registrations_final)
    except BaseException:
        early.close()
        raise
    directory = ROOT / "build" / "plan" / args.stack
    offline_plan.write_artifacts(plan, directory)
    if args.out:
        Path(args.out).write_text(plan.text())
    out = sys.stdout
    for line in offline_plan.tree_lines(plan, expand_charts=args.expand_charts):
        style = "bold" if line.startswith(("P", "outside")) else "dim"
        print(console.paint(line, style, out) if style == "bold" else line)
    for level, message in plan.run.log if plan.run is not None else []:
        if level in ("warning", "error"):
            print(console.paint(f"{level}: {message}", "yellow", out))
    for note in plan.stand_ins:
        print(console.paint(f"offline: {note}", "yellow", out))
    for warning in plan.chart_warnings:
        print(console.paint(f"warning: {warning}", "yellow", out))
    for reason in plan.unrendered.values():
        print(console.paint(f"not rendered: {reason}", "yellow", out))
    assert plan.run is not None
    report = offline_plan.check_policy(plan, served=served, report=early.report(plan.run))
    print(analyzer.render_report(report, out, verbose=args.verbose, origins=offline_plan.chart_origins(plan)), end="")
    if plan.unrendered:
        print(console.paint(f"{len(plan.unrendered)} chart(s) not rendered: the policy pack has not judged what they "
                            f"deploy (`python -m ops charts pull`, then plan again)", "yellow", out))
    resources = [r for r in plan.resources if r["type"] != offline_plan.PHASE_TYPE]
    included = [p["id"] for p in plan.document["phases"] if p["included"]]
    print(
        f"plan of stack {args.stack}: target phase {plan.document['targetPhase']}, "
        f"phases {', '.join(included)}, {len(resources)} resources, {len(plan.artifacts)} artifacts "
        f"in {directory.relative_to(ROOT)}"
    )
    if not report.ok:
        print(console.paint("error: ", "red", sys.stderr)
              + f"{len(report.mandatory)} mandatory policy violation(s); the plan is refused", file=sys.stderr)
        return 1
    return 0


def _diff(args: argparse.Namespace) -> int:
    result = plan_diff.diff_plans(plan_diff.load_plan(Path(args.old)), plan_diff.load_plan(Path(args.new)))
    for line in plan_diff.report_lines(result):
        style = {"+": "green", "-": "red", "~": "yellow"}.get(line[:1])
        print(console.paint(line, style) if style else line)
    return 0 if result.safe else 1


def _phases(args: argparse.Namespace) -> int:
    stack = load_stack(args.stack)
    target = stack.target
    counts: dict[str, int] = {}
    last = phase_engine.last_implemented()
    preview = offline_plan.build_plan(load_stack(args.stack, last))
    for resource in preview.resources:
        if resource["phase"] is not None and resource["type"] != offline_plan.PHASE_TYPE:
            counts[resource["phase"]] = counts.get(resource["phase"], 0) + 1
    rows = []
    for row in phase_engine.phase_status(phase_engine.REGISTRY, target):
        implemented = row["status"] != "not implemented"
        rows.append(["->" if row["id"] == target else "", row["id"], row["title"], row["status"],
                     str(counts.get(row["id"], "-")) if implemented else "-"])
    for line in console.table(["", "id", "title", "at target", "resources"], rows):
        print(line)
    print(f"stack {args.stack}: target phase {target}; each phase includes every phase before it; "
          f"resources counted in a plan up to phase {last}")
    return 0


def _settings(args: argparse.Namespace) -> int:
    stack = load_stack(args.stack)
    own = {key: value for key, value in stack.config.items() if key not in stack.substituted}
    described = list(stack_settings.describe(phase_engine.declared_settings(), own))
    if args.json:
        print(json.dumps(described, indent=2, sort_keys=True))
        return 0

    def shown(value: object) -> str:
        text = str(value)
        return text if len(text) <= 48 else text[:45] + "..."

    def source(d: dict[str, object]) -> str:
        if d["set"]:
            return "stack"
        return "MISSING" if d["value"] == "<required>" else "default"

    rows = [[d["key"], shown(d["value"]), source(d), d["declaredIn"], d["help"]] for d in described]
    for line in console.table(["key", "in effect", "from", "declared in", "what"], rows):
        print(line)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="offline preview of a stack under Pulumi's mock engine")
    plan.add_argument("--stack", default="indri")
    plan.add_argument("--phase", choices=stack_settings.PHASE_IDS, help="plan this target instead of the stack's")
    plan.add_argument("--out", help="also write the plan JSON to this file")
    plan.add_argument("--expand-charts", action="store_true", help="list every object a chart renders")
    plan.add_argument("--verbose", action="store_true", help="every policy finding in full")
    plan.add_argument("--require-charts", action="store_true",
                      help=f"a chart missing from the cache is an error (also ${charts.REQUIRED_ENV}=1)")
    plan.set_defaults(func=_plan)
    diff = sub.add_parser("diff", help="compare two plan JSON files; exit 1 if protected state would go")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(func=_diff)
    table = sub.add_parser("phases", help="the phase table, the target marked, resources per phase")
    table.add_argument("--stack", default="indri")
    table.set_defaults(func=_phases)
    listing = sub.add_parser("settings", help="every blumeops setting: default, where declared, value in effect")
    listing.add_argument("--stack", default="indri")
    listing.add_argument("--json", action="store_true", help="machine-readable")
    listing.set_defaults(func=_settings)
    images.add_parser(sub)
    charts.add_parser(sub)
    check.add_parser(sub, check.command)
    runbook.add_parser(sub, runbook.command)
    review.add_parser(sub, review.command)
    bench.add_parser(sub, bench.command)
    adopt.add_parser(sub, adopt.command)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (StackError, harness.ProgramError, offline_plan.PlanError, plan_diff.DiffError,
            analyzer.AnalyzerError, charts.ChartError, bench.BenchError) as err:
        print(console.paint("error: ", "red", sys.stderr) + str(err), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
