"""Phase 9, cleanup: what the cutovers stopped is taken off indri in a way a rollback undoes exactly, the
backups keep their client, and the tailnet loses what only the legacy services needed.

Takes indri (phase 0) and borgmatic (phase 3), and the brew formulas the chain retired (``handover.retired``:
phases 2, 4, 6, 7). One ``pulumi up`` from 8 to 9 runs:

1. ``postgresql@18`` kept installed and pinned (``cleanup.keepFormula``): borgmatic's nightly ``pg_dump`` of the
   cluster is its client (the same major as the cluster: phase 3's config step checks it), and a pinned formula
   is never upgraded to another major under the backups;
2. every other retired formula uninstalled, each after the retirement that stopped it, its keg recorded so the
   delete restores the same version (``FormulaUninstall``);
3. the data directories ``cleanup.removeData`` names removed, each only after a check that a borgmatic archive of
   the last day holds it (the one thing a rollback cannot undo);
4. indri's legacy service tags dropped, and the policy rendered without its legacy lines (the legacy Services'
   auto-approvals, tag:grafana, the brew forge's egress grant; phase 0's ``KEEP_LEGACY_TAGS``). The tags the
   cluster's proxies carry (tag:kiwix, tag:forge, tag:feed, tag:pg, tag:devpi) stay: members' grants reach the
   services through them.

What stays on indri is the homelab's host (facts §13): zot, borgmatic, minikube and their agents (alloy and Plex
are the owner's own, outside the program). Lowering the target to 8 restores each formula's keg, unpins
postgresql@18 and puts the legacy tags and policy lines back; removed data stays removed (borgmatic has it).
"""

from __future__ import annotations

import pulumi

from components.host.cleanup import (
    FormulaKeep,
    FormulaKeepArgs,
    FormulaUninstall,
    FormulaUninstallArgs,
    RetiredDataRemoval,
    RetiredDataRemovalArgs,
)
from phases import Handover, Phase
from phases import settings as s
from phases.p0_foundation import INDRI, KEEP_LEGACY_TAGS
from phases.p3_postgres_data import BORGMATIC
from phases.parsers import removable_dir


def _data_dirs(raw: object) -> tuple[str, ...]:
    """Absolute directories of retired services, as a JSON list."""
    found = []
    for item in s.json_list(raw):
        try:
            found.append(removable_dir(item))
        except s.InvalidValueError as err:
            raise s.InvalidValueError(f"{item!r}: {err}") from None
    return tuple(found)


@s.section("cleanup")
class CleanupSettings:
    """What phase 9 takes off indri."""

    keep_formula: str = s.setting(s.text, "the retired formula kept (pinned) for the backups' client tools",
                                  default="postgresql@18")
    keep_installed: tuple[str, ...] = s.setting(
        s.json_list, "other retired formulas to leave installed (JSON list)", default=(), example="'[\"grafana\"]'")
    remove_data: tuple[str, ...] = s.setting(
        _data_dirs, "data directories of retired services to remove (each only if a recent archive holds it)",
        default=(), example="'[\"/opt/homebrew/var/forgejo\"]'")


SETTINGS = (CleanupSettings,)

AMENDS = (KEEP_LEGACY_TAGS.to(False),)


def build(phase: Phase, handover: Handover) -> None:
    host = handover.take(INDRI)
    cleanup = handover.section(CleanupSettings)
    child = pulumi.ResourceOptions(parent=phase)
    keep = FormulaKeep("backup-client", FormulaKeepArgs(host=host, formula=cleanup.keep_formula), child)
    kept = {cleanup.keep_formula, *map(str, cleanup.keep_installed)}
    uninstalled: list[pulumi.Resource] = []
    for formula, retirement in sorted(handover.retired.items()):
        if formula in kept:
            continue
        step = FormulaUninstall(
            f"{formula.replace('@', '-')}-formula", FormulaUninstallArgs(host=host, formula=formula),
            pulumi.ResourceOptions(parent=phase, depends_on=[retirement, keep.keep]))
        uninstalled.append(step.uninstall)
    if cleanup.remove_data:
        borgmatic = handover.take(BORGMATIC)
        checks = [borgmatic.recent_archive(path.lstrip("/")).step(f"retired-data-check-{index}").register(
            host, opts=child) for index, path in enumerate(cleanup.remove_data, start=1)]
        RetiredDataRemoval("retired-data", RetiredDataRemovalArgs(host=host, paths=tuple(cleanup.remove_data)),
                           pulumi.ResourceOptions(parent=phase, depends_on=[*checks, *uninstalled]))
