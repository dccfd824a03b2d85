"""Phase 9's host steps under the stub toolbox (its brew models kegs, optlinks, links, pins and dependents as
Homebrew's cmd/list, uninstall and link do): an uninstalled formula comes back at its recorded version by the
delete; a formula whose service runs, or that another formula needs, is refused; the kept formula is pinned and
unpinned; a data directory is removed only by the removal step, and its delete says how to bring it back."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from components.host.cleanup import (
    FormulaKeepArgs,
    FormulaUninstallArgs,
    RetiredDataRemovalArgs,
)
from tests.host.conftest import Machine


def keg(machine: Machine, formula: str, *versions: str, linked: bool = True) -> Path:
    cellar = machine.state / "brew" / "Cellar" / formula
    for version in versions:
        (cellar / version / "bin").mkdir(parents=True)
        (cellar / version / "bin" / formula).write_text(f"#!/bin/sh\necho {formula} {version}\n")
        (cellar / version / "INSTALL_RECEIPT.json").write_text('{"installed_on_request": true}')
    prefix = machine.state / "brew" / "prefix"
    (prefix / "opt").mkdir(parents=True, exist_ok=True)
    (prefix / "opt" / formula).symlink_to(f"../../Cellar/{formula}/{versions[-1]}")
    if linked:
        (prefix / "var" / "homebrew" / "linked").mkdir(parents=True, exist_ok=True)
        (prefix / "var" / "homebrew" / "linked" / formula).symlink_to(cellar / versions[-1])
    return cellar


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def uninstall(machine: Machine, formula: str, action: str = "create", check: bool = True):  # type: ignore[no-untyped-def]
    host = machine.host()
    host = dataclasses.replace(host, tools=dataclasses.replace(host.tools, jq=shutil.which("jq") or "jq"))
    args = FormulaUninstallArgs(host=host, formula=formula, tar=shutil.which("tar") or "tar")
    return machine.run(args.step(f"{formula}-formula-uninstall"), action, check=check)


def test_an_uninstalled_formula_comes_back_at_its_recorded_version(machine: Machine) -> None:
    cellar = keg(machine, "grafana", "12.0.1", "12.1.0")
    before = tree(cellar)
    opt = machine.state / "brew" / "prefix" / "opt" / "grafana"
    target = opt.readlink()
    result = uninstall(machine, "grafana")
    assert "uninstalled grafana 12.0.1 12.1.0" in result.stderr
    assert not cellar.exists() and not opt.is_symlink()
    assert "already" in uninstall(machine, "grafana").stderr  # a second run changes nothing
    restored = uninstall(machine, "grafana", "delete")
    assert "restored grafana 12.0.1 12.1.0" in restored.stderr
    assert tree(cellar) == before and opt.readlink() == target
    assert (machine.state / "brew" / "prefix" / "var" / "homebrew" / "linked" / "grafana").is_symlink()
    assert not (machine.home / ".local/state/blumeops/uninstalled/grafana").exists()


def test_a_formula_whose_service_runs_is_refused(machine: Machine) -> None:
    keg(machine, "forgejo", "13.0.3")
    (machine.state / "brew" / "services").mkdir(parents=True, exist_ok=True)
    (machine.state / "brew" / "services" / "forgejo").write_text("started")
    result = uninstall(machine, "forgejo", check=False)
    assert result.returncode != 0 and "brew service forgejo still runs" in result.stderr
    assert (machine.state / "brew" / "Cellar" / "forgejo" / "13.0.3").is_dir()


def test_a_formula_another_one_needs_is_refused_with_homebrews_reason(machine: Machine) -> None:
    keg(machine, "miniflux", "2.3.3")
    (machine.state / "brew" / "dependents").mkdir(parents=True)
    (machine.state / "brew" / "dependents" / "miniflux").write_text("feedbot")
    result = uninstall(machine, "miniflux", check=False)
    assert result.returncode != 0 and "because it is required by feedbot" in result.stderr
    assert (machine.state / "brew" / "Cellar" / "miniflux" / "2.3.3").is_dir()


def test_a_formula_never_installed_is_left_alone_both_ways(machine: Machine) -> None:
    assert "nothing to uninstall" in uninstall(machine, "transmission-cli").stderr
    assert "nothing recorded" in uninstall(machine, "transmission-cli", "delete").stderr
    assert not (machine.state / "brew" / "Cellar" / "transmission-cli").exists()


def test_the_backup_client_is_pinned_and_only_our_pin_is_taken_back(machine: Machine) -> None:
    keg(machine, "postgresql@18", "18.1")
    step = FormulaKeepArgs(host=machine.host(), formula="postgresql@18").step("backup-client-keep")
    machine.run(step)
    pinned = machine.state / "brew" / "pinned" / "postgresql@18"
    assert pinned.exists()
    machine.run(step, "delete")
    assert not pinned.exists()
    pinned.touch()  # the owner pinned it before phase 9
    machine.run(step)
    machine.run(step, "delete")
    assert pinned.exists()


def test_the_backup_client_must_be_installed(machine: Machine) -> None:
    step = FormulaKeepArgs(host=machine.host(), formula="postgresql@18").step("backup-client-keep")
    result = machine.run(step, check=False)
    assert result.returncode != 0 and "postgresql@18 is not installed" in result.stderr


def test_data_is_removed_only_by_the_removal_step_and_its_delete_names_the_way_back(machine: Machine) -> None:
    data = machine.root / "var" / "forgejo"
    (data / "data").mkdir(parents=True)
    (data / "data" / "forgejo.db").write_bytes(b"db")
    keg(machine, "forgejo", "13.0.3")
    uninstall(machine, "forgejo")
    assert (data / "data" / "forgejo.db").exists()  # uninstalling keeps the data
    step = RetiredDataRemovalArgs(host=machine.host(), paths=(str(data),)).step("retired-data-remove")
    assert "removed" in machine.run(step).stderr and not data.exists()
    assert "gone already" in machine.run(step).stderr
    back = machine.run(step, "delete")
    assert "borgmatic extract --archive latest --path" in back.stderr and not data.exists()


def test_bad_arguments_are_refused() -> None:
    from tests.phase_runner import _host
    with pytest.raises(ValueError, match="not a Homebrew formula name"):
        FormulaUninstallArgs(host=_host(), formula="grafana; rm -rf /")
    with pytest.raises(ValueError, match="must be an absolute path"):
        RetiredDataRemovalArgs(host=_host(), paths=("var/forgejo",))
