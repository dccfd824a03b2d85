"""``python -m ops review BASE.json HEAD.json``: the pull-request comment, from the plans of base and head.

The body (markdown) has, in the order a reviewer needs them:

1. the verdict: what fails the check (a protected resource deleted or its URN changed, a mandatory policy
   violation) or that nothing does;
2. the resource diff (``ops diff``): added, removed, changed with the changed input paths;
3. the policy report of the head (the pack run over the head's plan, as ``ops plan`` does), when this
   checkout is the head (``--policy``; the workflow runs it there). The pack is the **base's**
   (``--base-policy DIR``: the base's ``policy/``, which ``.ci/pr-check plans`` keeps): a branch cannot certify
   itself by changing the rules or the image catalogue it is judged by. Every change under ``policy/`` is
   listed for a human, and each catalogue entry the head adds or changes with its verification status;
4. the rendered artifacts that changed, host scripts first with their unified diff (what runs on indri
   is what a reviewer most needs to read), then plists, configs and Kubernetes manifests;
5. ``pulumi preview --diff`` output, when the runner could run it (``--preview FILE``).

Exit 1 when the check must fail (after printing the body, so the comment is still posted).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from components.host.script import reviewable
from ops import diff as plan_diff
from ops import plan as offline_plan
from ops.engine import analyzer
from ops.stack import load_stack

# A Forgejo comment holds 65 535 characters; keep each diff short and the whole body under this.
MAX_DIFF_LINES = 120
MAX_BODY = 60_000
HOST_PREFIXES = ("host/scripts/",)
COMMAND_TYPE = "command:remote:Command"


@dataclass(slots=True)
class Review:
    base: Mapping[str, Any]
    head: Mapping[str, Any]
    diff: plan_diff.PlanDiff
    artifacts_added: list[str] = field(default_factory=list)
    artifacts_removed: list[str] = field(default_factory=list)
    artifacts_changed: dict[str, list[str]] = field(default_factory=dict)  # path -> unified diff lines
    policy: analyzer.AnalysisReport | None = None
    policy_note: str = ""
    policy_judge: str = "the head's pack"  # whose pack judged the head's plan
    policy_changes: list[str] = field(default_factory=list)  # "changed policy/rules/x.py", ...
    catalogue_changes: list[str] = field(default_factory=list)  # "new: image (platforms; verification)"
    preview: str | None = None

    @property
    def failures(self) -> list[str]:
        reasons = [f"protected resource deleted or its URN changed: `{urn}`" for urn in self.diff.protected_removed]
        if self.policy is not None:
            reasons += [f"mandatory policy violation: {v.policy} on `{v.urn}`: {v.message}"
                        for v in self.policy.mandatory]
        return reasons


def artifacts_of(document: Mapping[str, Any]) -> dict[str, str]:
    """The rendered artifacts of a plan JSON (what ``ops plan`` writes under ``build/plan/<stack>/``).

    A plan read from JSON has no registrations, so its host scripts (``host/scripts/<step>.sh``) are rendered
    here from each host step's recorded stdin, as ``ops plan`` renders them; a stdin that is secret is
    ``[secret]`` among the inputs, and its script (secrets as placeholders) is in ``secretScripts``."""
    artifacts = offline_plan.render_artifacts(offline_plan.Plan(dict(document)))
    hidden = document.get("secretScripts") or {}
    for resource in document["resources"]:
        stdin = resource["inputs"].get("stdin") if resource["type"] == COMMAND_TYPE else None
        if isinstance(stdin, str) and stdin != offline_plan.SECRET:
            artifacts.setdefault(f"host/scripts/{resource['name']}.sh", reviewable(stdin))
        elif resource["urn"] in hidden:
            artifacts.setdefault(f"host/scripts/{resource['name']}.sh", hidden[resource["urn"]])
    return artifacts


def _order(path: str) -> tuple[int, str]:
    return (0 if path.startswith(HOST_PREFIXES) else 1 if path.startswith("host/") else 2, path)


def build_review(base: Mapping[str, Any], head: Mapping[str, Any]) -> Review:
    review = Review(base, head, plan_diff.diff_plans(dict(base), dict(head)))
    before, after = artifacts_of(base), artifacts_of(head)
    review.artifacts_added = sorted((p for p in after if p not in before), key=_order)
    review.artifacts_removed = sorted((p for p in before if p not in after), key=_order)
    for path in sorted((p for p in after if p in before and after[p] != before[p]), key=_order):
        review.artifacts_changed[path] = list(difflib.unified_diff(
            before[path].splitlines(), after[path].splitlines(), f"base/{path}", f"head/{path}", lineterm=""))
    return review


def run_policy(review: Review, base_policy: Path | None = None) -> None:
    """The policy pack over the head's plan, planned again from this checkout; it must be HEAD.json. With
    ``base_policy`` (the base's ``policy/``) that pack judges, and what the head changed under ``policy/`` is
    listed for a human."""
    head = review.head
    stack = load_stack(str(head.get("stack")), str(head.get("targetPhase")))
    plan = offline_plan.build_plan(stack)
    if plan.document != dict(head):
        review.policy_note = ("the plan of this checkout differs from HEAD.json, so the policy report was not run: "
                              "run `ops review` in the head's checkout")
        return
    if base_policy is not None:
        review.policy_changes, review.catalogue_changes = policy_changes(base_policy, analyzer.DEFAULT_POLICY_DIR)
        review.policy_judge = "the base's pack"
    # never the checkout's verdict cache: a branch could commit entries (build/ is only ignored, not refused)
    # that say "no violation" for its own resources under the base pack's key; the pack judges every one
    judge = analyzer.PolicyAnalyzer(base_policy, cache_dir=None)
    review.policy = offline_plan.check_policy(plan, policy_dir=base_policy, served=judge)


def _pack_files(directory: Path) -> dict[str, bytes]:
    return {str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}


def _catalogue(directory: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load((directory / "images.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    images = document.get("images") if isinstance(document, dict) else None
    return images if isinstance(images, dict) else {}


def _verification(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "not an entry"
    platforms = ", ".join(str(p) for p in entry.get("platforms") or []) or "no platforms"
    if entry.get("verified") and entry.get("digest"):
        return f"{platforms}; verified {entry['verified']} against its registry, digest {entry['digest']}"
    return f"{platforms}; UNVERIFIED: nobody read its manifest (`python -m ops images verify`)"


def policy_changes(base: Path, head: Path) -> tuple[list[str], list[str]]:
    """What the head changed under ``policy/`` (files added, removed, changed) and in the image catalogue
    (entries added or changed, with their verification status), base against head."""
    before, after = _pack_files(base), _pack_files(head)
    files = [f"added policy/{p}" for p in sorted(after.keys() - before.keys())]
    files += [f"removed policy/{p}" for p in sorted(before.keys() - after.keys())]
    files += [f"changed policy/{p}" for p in sorted(after.keys() & before.keys()) if after[p] != before[p]]
    old, new = _catalogue(base), _catalogue(head)
    entries = [f"new: `{image}` ({_verification(new[image])})" for image in sorted(new.keys() - old.keys())]
    entries += [f"changed: `{image}` ({_verification(new[image])})" for image in sorted(new.keys() & old.keys())
                if new[image] != old[image]]
    entries += [f"removed: `{image}`" for image in sorted(old.keys() - new.keys())]
    return files, entries


def _fenced(lines: list[str], language: str) -> list[str]:
    shown = lines[:MAX_DIFF_LINES]
    cut = len(lines) - len(shown)
    body = ["```" + language, *shown, "```"]
    if cut:
        body.append(f"_{cut} more lines: read the artifact in `build/plan/` of the head_")
    return body


def markdown(review: Review) -> str:
    base, head = review.base, review.head
    diff = review.diff
    lines = [f"## blumeops plan: {base.get('stack')} phase {base.get('targetPhase')} → "
             f"{head.get('stack')} phase {head.get('targetPhase')}", ""]
    if review.failures:
        lines += ["**This check fails:**", ""] + [f"- ❌ {reason}" for reason in review.failures] + [""]
    else:
        lines += ["✅ No protected resource is deleted or replaced"
                  + (", no mandatory policy violation." if review.policy is not None else "."), ""]
    lines += [f"**Resources:** {len(diff.added)} to add, {len(diff.changed)} to change, {len(diff.removed)} to "
              "remove (`python -m ops diff`)", ""]
    if diff.added or diff.removed or diff.changed:
        lines += ["<details><summary>Resource diff</summary>", "", "```diff"]
        lines += plan_diff.report_lines(diff)[:-1]
        lines += ["```", "</details>", ""]
    lines += ["### Policy report", ""]
    if review.policy_changes:
        lines += [f"⚠️ **This branch changes the policy pack** ({len(review.policy_changes)} files). The report "
                  f"below is {review.policy_judge}'s verdict, not the changed pack's: a person must read the change.",
                  ""]
        lines += [f"- {change}" for change in review.policy_changes] + [""]
        if review.catalogue_changes:
            lines += ["Image catalogue entries the branch adds or changes (the base's pack does not know them: an "
                      "image only the branch catalogues fails below):", ""]
            lines += [f"- {change}" for change in review.catalogue_changes] + [""]
    if review.policy is not None:
        lines += [f"_Judged by {review.policy_judge}._", ""]
        lines += _fenced(analyzer.render_report(review.policy, color=False).rstrip("\n").splitlines(), "")
    else:
        lines.append(f"_Not run: {review.policy_note or 'pass --policy in the head checkout'}._")
    lines.append("")
    changed = len(review.artifacts_added) + len(review.artifacts_removed) + len(review.artifacts_changed)
    lines += [f"### Rendered artifacts ({changed} changed)", ""]
    if not changed:
        lines += ["None of the files the program puts on the machines changed.", ""]
    for path, diff_lines in review.artifacts_changed.items():
        host = path.startswith(HOST_PREFIXES)
        if host:
            lines += [f"#### `{path}` (runs on the host)", "", *_fenced(diff_lines, "diff"), ""]
        else:
            lines += [f"<details><summary><code>{path}</code></summary>", "", *_fenced(diff_lines, "diff")]
            lines += ["</details>", ""]
    if review.artifacts_added:
        lines += ["New: " + ", ".join(f"`{p}`" for p in review.artifacts_added), ""]
    if review.artifacts_removed:
        lines += ["Removed: " + ", ".join(f"`{p}`" for p in review.artifacts_removed), ""]
    if review.preview is not None:
        lines += ["### `pulumi preview --diff`", "", *_fenced(review.preview.splitlines(), ""), ""]
    text = "\n".join(lines)
    if len(text) > MAX_BODY:
        text = text[:MAX_BODY] + "\n\n_The comment is cut here: the full diff is in the check's log._\n"
    return text


def command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    review = build_review(plan_diff.load_plan(Path(args.base)), plan_diff.load_plan(Path(args.head)))
    if args.policy:
        base_policy = Path(args.base_policy) if args.base_policy else None
        if base_policy is not None and not (base_policy / "__main__.py").is_file():
            raise plan_diff.DiffError(f"--base-policy: {base_policy} is not a policy pack (no __main__.py)")
        run_policy(review, base_policy)
    if args.preview:
        try:
            review.preview = Path(args.preview).read_text()
        except OSError as err:
            raise plan_diff.DiffError(f"--preview: cannot read {args.preview}: {err}") from None
    out.write(markdown(review))
    return 1 if review.failures else 0


def add_parser(sub: Any, run: Callable[[argparse.Namespace], int]) -> None:
    review = sub.add_parser(
        "review",
        help="the pull-request comment (markdown) from the base and head plans; exit 1 if the check fails",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    review.add_argument("base", help="plan JSON of the base (python -m ops plan --out)")
    review.add_argument("head", help="plan JSON of the head")
    review.add_argument("--policy", action="store_true",
                        help="run the policy pack over the head's plan (this checkout must be the head)")
    review.add_argument("--base-policy", help="the base's policy/ directory: its pack judges the head's plan")
    review.add_argument("--preview", help="output of `pulumi preview --diff` to include")
    review.set_defaults(func=run)
