"""``python -m ops plan|diff|phases``: the offline preview and the checks around it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import phases as phase_engine
from ops import analyzer, check, console, harness, images, review, runbook
from ops import diff as plan_diff
from ops import plan as offline_plan
from ops.stack import ROOT, StackError, load_stack
from phases import settings as stack_settings


def _plan(args: argparse.Namespace) -> int:
    stack = load_stack(args.stack, args.phase)
    plan = offline_plan.build_plan(stack)
    directory = ROOT / "build" / "plan" / args.stack
    offline_plan.write_artifacts(plan, directory)
    if args.out:
        Path(args.out).write_text(plan.text())
    out = sys.stdout
    for line in offline_plan.tree_lines(plan):
        style = "bold" if line.startswith(("P", "outside")) else "dim"
        print(console.paint(line, style, out) if style == "bold" else line)
    for level, message in plan.run.log if plan.run is not None else []:
        if level in ("warning", "error"):
            print(console.paint(f"{level}: {message}", "yellow", out))
    for note in plan.stand_ins:
        print(console.paint(f"offline: {note}", "yellow", out))
    report = offline_plan.check_policy(plan)
    print(analyzer.render_report(report, out), end="")
    resources = [r for r in plan.resources if r["type"] != offline_plan.PHASE_TYPE]
    deployed = [p["id"] for p in plan.document["phases"] if p["deployed"]]
    print(
        f"plan of stack {args.stack}: target phase {plan.document['targetPhase']}, "
        f"phases {', '.join(deployed)}, {len(resources)} resources, {len(plan.artifacts)} artifacts "
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
    last = max((s for s in phase_engine.REGISTRY if s.implemented), key=lambda s: phase_engine.REGISTRY.index(s))
    preview = offline_plan.build_plan(load_stack(args.stack, last.id))
    for resource in preview.resources:
        if resource["phase"] is not None and resource["type"] != offline_plan.PHASE_TYPE:
            counts[resource["phase"]] = counts.get(resource["phase"], 0) + 1
    rows = []
    reached = False
    for spec in phase_engine.REGISTRY:
        marker = "->" if spec.id == target else ""
        if not spec.implemented:
            status = "not implemented"
        elif not reached:
            status = "deployed"
        else:
            status = "pending"
        if spec.id == target:
            reached = True
        rows.append([marker, spec.id, spec.title, spec.requires or "-", status,
                     str(counts.get(spec.id, "-")) if spec.implemented else "-"])
    for line in console.table(["", "id", "title", "requires", "at target", "resources"], rows):
        print(line)
    print(f"stack {args.stack}: target phase {target}; resources counted in a plan up to phase {last.id}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="offline preview of a stack under Pulumi's mock engine")
    plan.add_argument("--stack", default="indri")
    plan.add_argument("--phase", choices=stack_settings.PHASE_IDS, help="plan this target instead of the stack's")
    plan.add_argument("--out", help="also write the plan JSON to this file")
    plan.set_defaults(func=_plan)
    diff = sub.add_parser("diff", help="compare two plan JSON files; exit 1 if protected state would go")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(func=_diff)
    table = sub.add_parser("phases", help="the phase table, the target marked, resources per phase")
    table.add_argument("--stack", default="indri")
    table.set_defaults(func=_phases)
    images.add_parser(sub)
    check.add_parser(sub, check.command)
    runbook.add_parser(sub, runbook.command)
    review.add_parser(sub, review.command)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (StackError, harness.ProgramError, offline_plan.PlanError, plan_diff.DiffError,
            analyzer.AnalyzerError) as err:
        print(console.paint("error: ", "red", sys.stderr) + str(err), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
