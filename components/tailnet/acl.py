"""The tailnet policy file and its rendering: logins come from settings, the rest is the file as written."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

POLICY_FILE = Path(__file__).with_name("policy.hujson")

_MARKER = re.compile(r'"<([a-z-]+)>"')
# A line of the policy that holds only while indri still has its legacy services (tags, Services, the brew
# forge's egress): phase 9 renders the policy without them.
LEGACY_MARK = "// legacy until P9"


class PolicyError(ValueError):
    """The policy file names a marker the program cannot fill."""


def render_policy(admins: Sequence[str], members: Sequence[str], text: str | None = None,
                  legacy: bool = True) -> str:
    """The HuJSON policy with the login markers filled in; comments and layout are kept as written. Without
    ``legacy`` (phase 9), every line marked ``// legacy until P9`` is left out (each such line is a whole
    entry: a tag owner, an auto-approver, a grant or a test).

    ``"<admins>"`` / ``"<members>"`` expand to every login (inside a list), ``"<admin-user>"`` /
    ``"<member-user>"`` to the first. Any other ``"<...>"`` marker is an error, so a policy with an
    unfilled placeholder never reaches the tailnet.
    """
    if not admins or not members:
        raise PolicyError("the policy needs at least one admin and one member login")
    source = POLICY_FILE.read_text() if text is None else text
    if not legacy:
        source = "".join(line for line in source.splitlines(keepends=True) if LEGACY_MARK not in line)
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
