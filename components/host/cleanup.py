"""The end of the migration on the host: the Homebrew formulas the cutovers stopped, uninstalled in a way a
rollback undoes exactly (``FormulaUninstall``), and the one formula kept for its client tools (``FormulaKeep``).

Why the keg is archived: Homebrew installs only a formula's current version, so a rollback that ran
``brew install`` could bring back another major than the retired service ran (and whose data it wrote). The
uninstall keeps ``Cellar/<formula>`` whole as a tar in its record, and the delete puts it back with its optlink
and link: the same version, the same files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from components.host.connection import Host
from components.host.script import HostStep, require_absolute

FORMULA_UNINSTALL_TYPE = "blumeops:host:FormulaUninstall"
FORMULA_KEEP_TYPE = "blumeops:host:FormulaKeep"
_FORMULA = re.compile(r"^[a-z0-9][a-z0-9@._+-]*$")


def _record_dir(host: Host, kind: str, formula: str) -> str:
    return f"{host.home}/.local/state/blumeops/{kind}/{formula}"


@dataclass(frozen=True, slots=True)
class FormulaUninstallArgs:
    host: Host
    formula: str
    tar: str = "/usr/bin/tar"

    def __post_init__(self) -> None:
        if not _FORMULA.match(self.formula):
            raise ValueError(f"FormulaUninstall: {self.formula!r} is not a Homebrew formula name")

    @property
    def record_dir(self) -> str:
        return _record_dir(self.host, "uninstalled", self.formula)

    def step(self, name: str) -> HostStep:
        tools = self.host.tools
        return HostStep(
            name, "brew-uninstall",
            {"BREW": tools.brew, "FORMULA": self.formula, "RECORD_DIR": self.record_dir, "TAR": self.tar,
             "JQ": tools.jq},
            does=(f"records the keg of {self.formula} (every version, in {self.record_dir}) and uninstalls it; "
                  "refused while its service runs; its data stays"),
            undoes=f"restores the keg of {self.formula} as it was (version, optlink, link)",
        )


class FormulaUninstall(pulumi.ComponentResource):
    """Takes off the host one Homebrew formula a cutover retired: the step ``<name>-uninstall``, after the
    retirement that stopped it (so a rollback reinstalls it before that retirement's undo restarts it).

    Undo: the delete restores the recorded keg exactly."""

    def __init__(self, name: str, args: FormulaUninstallArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(FORMULA_UNINSTALL_TYPE, name, {
            "formula": args.formula, "record": args.record_dir}, opts)
        self.uninstall = args.step(f"{name}-uninstall").register(
            args.host, identity=(args.formula,), opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


@dataclass(frozen=True, slots=True)
class FormulaKeepArgs:
    host: Host
    formula: str

    def __post_init__(self) -> None:
        if not _FORMULA.match(self.formula):
            raise ValueError(f"FormulaKeep: {self.formula!r} is not a Homebrew formula name")

    def step(self, name: str) -> HostStep:
        record = _record_dir(self.host, "kept", self.formula)
        return HostStep(
            name, "brew-keep", {"BREW": self.host.tools.brew, "FORMULA": self.formula, "RECORD_DIR": record},
            does=f"keeps {self.formula} installed for its client tools and pins it (brew upgrade leaves it)",
            undoes=f"unpins {self.formula} (unless it was pinned before)")


class FormulaKeep(pulumi.ComponentResource):
    """Keeps one retired formula installed and pinned for its client tools (``postgresql@18``'s ``pg_dump``,
    which borgmatic's nightly dump of the cluster runs): the step ``<name>-keep``.

    Undo: unpins it (a pin it found stays)."""

    def __init__(self, name: str, args: FormulaKeepArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(FORMULA_KEEP_TYPE, name, {"formula": args.formula}, opts)
        self.keep = args.step(f"{name}-keep").register(args.host, identity=(args.formula,),
                                                       opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})


RETIRED_DATA_TYPE = "blumeops:host:RetiredDataRemoval"


@dataclass(frozen=True, slots=True)
class RetiredDataRemovalArgs:
    host: Host
    paths: tuple[str, ...]  # the data directories a setting names; each checked archived before (the phase)

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError("RetiredDataRemoval: no path to remove")
        for path in self.paths:
            require_absolute("RetiredDataRemoval", "path", path)

    def step(self, name: str) -> HostStep:
        variables: dict[str, str | int | bool] = {"PATH_COUNT": len(self.paths)}
        for index, path in enumerate(self.paths, start=1):
            variables[f"PATH_{index}_DIR"] = path
        return HostStep(
            name, "retired-data-removal", variables,
            does=f"removes {', '.join(self.paths)} (a recent borgmatic archive holds each: checked first)",
            undoes="nothing can be restored by the program: borgmatic extract brings each back")


class RetiredDataRemoval(pulumi.ComponentResource):
    """Removes from the host the data directories of retired services that ``blumeops:cleanup.removeData``
    names, each only after a check that a borgmatic archive of the last day holds it: the step
    ``<name>-remove``. The one thing a rollback cannot undo.

    Undo: the delete removes nothing and restores nothing; it names each directory and the borgmatic extract
    that brings it back."""

    def __init__(self, name: str, args: RetiredDataRemovalArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(RETIRED_DATA_TYPE, name, {"paths": list(args.paths),
                                                   "onRollback": "not restored: borgmatic extract"}, opts)
        self.remove = args.step(f"{name}-remove").register(args.host, identity=args.paths,
                                                            opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
