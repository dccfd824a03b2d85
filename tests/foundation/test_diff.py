"""``ops diff``: additions, removals, input changes, and the refusal to lose protected state."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

from ops import diff as plan_diff
from ops.stack import ROOT


def resource(urn: str, protect: bool = False, **inputs: Any) -> dict[str, Any]:
    return {"urn": urn, "type": "t", "name": urn.rsplit("::", 1)[-1], "custom": True, "parent": None,
            "phase": "0", "provider": None, "inputs": inputs,
            "options": {"protect": protect, "dependsOn": [], "deleteBeforeReplace": False,
                        "ignoreChanges": [], "retainOnDelete": False}}


OLD = {"stack": "indri", "resources": [
    resource("urn:a", image="x:1", spec={"ports": [1, 2]}),
    resource("urn:pg", protect=True, size="10Gi"),
    resource("urn:gone"),
]}


def test_addition_removal_and_change() -> None:
    new = copy.deepcopy(OLD)
    new["resources"][0]["inputs"]["spec"]["ports"][1] = 3
    new["resources"][0]["inputs"]["image"] = "x:2"
    del new["resources"][2]
    new["resources"].append(resource("urn:new"))
    result = plan_diff.diff_plans(OLD, new)
    assert result.added == ["urn:new"]
    assert result.removed == ["urn:gone"]
    assert result.changed == {"urn:a": ["inputs.image", "inputs.spec.ports[1]"]}
    assert result.safe
    assert plan_diff.report_lines(result)[-1] == "1 to add, 1 to change, 1 to remove"


def test_option_change_is_listed() -> None:
    new = copy.deepcopy(OLD)
    new["resources"][1]["options"]["protect"] = False
    assert plan_diff.diff_plans(OLD, new).changed == {"urn:pg": ["options.protect"]}


def test_removing_protected_state_fails() -> None:
    new = copy.deepcopy(OLD)
    new["resources"][1]["urn"] = "urn:pg-renamed"  # a URN change is delete + create
    result = plan_diff.diff_plans(OLD, new)
    assert result.protected_removed == ["urn:pg"]
    assert not result.safe
    assert "PROTECTED" in "\n".join(plan_diff.report_lines(result))


def test_cli_exit_codes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    old, same, bad = tmp_path / "old.json", tmp_path / "same.json", tmp_path / "bad.json"
    old.write_text(json.dumps(OLD))
    same.write_text(json.dumps(OLD))
    removed = copy.deepcopy(OLD)
    del removed["resources"][1]
    bad.write_text(json.dumps(removed))
    run = [sys.executable, "-m", "ops", "diff"]
    ok = subprocess.run([*run, str(old), str(same)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "0 to add, 0 to change, 0 to remove" in ok.stdout
    fail = subprocess.run([*run, str(old), str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert fail.returncode == 1 and "- urn:pg  [PROTECTED: would be deleted]" in fail.stdout
    malformed = tmp_path / "malformed.json"
    malformed.write_text(json.dumps({"resources": [{"x": 1}]}))
    error = subprocess.run([*run, str(old), str(malformed)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert error.returncode == 1 and "resources[0] is not a plan resource" in error.stderr
    assert "Traceback" not in error.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    error = subprocess.run([*run, str(broken), str(old)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert error.returncode == 1 and "cannot read plan" in error.stderr
