"""The tailnet policy file and its rendering: logins come from settings, the rest is the file as written."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

POLICY_FILE = Path(__file__).with_name("policy.hujson")

_MARKER = re.compile(r'"<([a-z-]+)>"')


class PolicyError(ValueError):
    """The policy file names a marker the program cannot fill."""


def render_policy(admins: Sequence[str], members: Sequence[str], text: str | None = None) -> str:
    """The HuJSON policy with the login markers filled in; comments and layout are kept as written.

    ``"<admins>"`` / ``"<members>"`` expand to every login (inside a list), ``"<admin-user>"`` /
    ``"<member-user>"`` to the first. Any other ``"<...>"`` marker is an error, so a policy with an
    unfilled placeholder never reaches the tailnet.
    """
    if not admins or not members:
        raise PolicyError("the policy needs at least one admin and one member login")
    source = POLICY_FILE.read_text() if text is None else text
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
