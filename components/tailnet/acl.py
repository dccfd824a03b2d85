"""The tailnet policy file and its rendering: logins come from settings, the rest is the file as written."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLICY_FILE = Path(__file__).with_name("policy.hujson")

_MARKER = re.compile(r'"<([a-z-]+)>"')
# Where the phases' parts go: a line `// <parts: tagOwners|services|grants|tests>` of the file.
_PARTS_MARKER = re.compile(r"^([ \t]*)// <parts: (tagOwners|services|grants|tests)>[ \t]*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class PolicyPart:
    """What one phase adds to the tailnet policy: tags it owns (``tag_owners``), Tailscale Services indri may
    host without a console click (``services``: autoApprovers), ``grants`` and the policy's own ``tests``.
    ``legacy``: it holds only while indri still runs its native services (its tags, their Services, the brew
    forge's egress), so phase 9 leaves it out. Two parts that own one tag give it the union of their owners."""

    phase: str  # the phase that declares it ("P6"), written beside each line it adds
    tag_owners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    services: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    grants: tuple[Mapping[str, Any], ...] = ()
    tests: tuple[Mapping[str, Any], ...] = ()
    legacy: bool = False


def _part_lines(section: str, parts: Sequence[PolicyPart], indent: str) -> list[str]:
    """The lines one section of the file gets from the parts, each entry once, its phases in a comment."""
    entries: dict[str, tuple[Any, list[str]]] = {}
    for part in parts:
        if section in ("tagOwners", "services"):
            mapping = part.tag_owners if section == "tagOwners" else part.services
            for key, owners in mapping.items():
                merged, phases = entries.get(key, ([], []))
                entries[key] = ([*merged, *(o for o in owners if o not in merged)], [*phases, part.phase])
        else:
            for entry in part.grants if section == "grants" else part.tests:
                key = json.dumps(entry, sort_keys=True)
                _, phases = entries.get(key, (entry, []))
                entries[key] = (entry, [*phases, part.phase])
    lines = []
    for key, (value, phases) in entries.items():
        origin = ", ".join(dict.fromkeys(phases))
        if section in ("tagOwners", "services"):
            lines.append(f"{indent}{json.dumps(key)}: {json.dumps(value)},  // {origin}")
        else:
            lines.append(f"{indent}{json.dumps(value)},  // {origin}")
    return lines


class PolicyError(ValueError):
    """The policy file names a marker the program cannot fill."""


def render_policy(admins: Sequence[str], members: Sequence[str], text: str | None = None,
                  parts: Sequence[PolicyPart] = (), legacy: bool = True) -> str:
    """The HuJSON policy: the file's base with the phases' ``parts`` in place of its ``// <parts: ...>`` lines
    (without the legacy ones when ``legacy`` is off: phase 9) and the login markers filled in; comments and
    layout are kept as written.

    ``"<admins>"`` / ``"<members>"`` expand to every login (inside a list), ``"<admin-user>"`` /
    ``"<member-user>"`` to the first. Any other ``"<...>"`` marker is an error, so a policy with an
    unfilled placeholder never reaches the tailnet.
    """
    if not admins or not members:
        raise PolicyError("the policy needs at least one admin and one member login")
    source = POLICY_FILE.read_text() if text is None else text
    included = [part for part in parts if legacy or not part.legacy]
    source = _PARTS_MARKER.sub(lambda m: "\n".join(_part_lines(m.group(2), included, m.group(1))), source)
    fills = {
        "admins": ", ".join(json.dumps(login) for login in admins),
        "members": ", ".join(json.dumps(login) for login in members),
        "admin-user": json.dumps(admins[0]),
        "member-user": json.dumps(members[0]),
    }

    def fill(match: re.Match[str]) -> str:
        marker = match.group(1)
        if marker not in fills:
            raise PolicyError(f'policy.hujson has an unknown marker "<{marker}>"')
        return fills[marker]

    return _MARKER.sub(fill, source)
