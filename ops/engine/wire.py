"""The engine's wire form of resource inputs, walked in one place.

Inputs travel as protobuf ``Struct`` JSON in which secrets, resource references, assets and archives are
objects marked with a signature key, and unknown values a sentinel string (the SDK's ``rpc`` module). The
plan hides secrets, the policy analyzer passes them on marked, the tests open them: each is one call of
``transform`` with what to do with a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ops.engine.harness import ARCHIVE_SIG, ASSET_SIG, RESOURCE_SIG, SECRET_SIG, SIG_KEY, UNKNOWN


def transform(value: Any, secret: Callable[[Any], Any], unknown: Any = UNKNOWN) -> Any:
    """``value`` with every secret replaced by ``secret(<its transformed inner value>)``, resource references by
    their URN, assets and archives by their source, unknowns by ``unknown``.

    A value with nothing to replace (neither the signature key nor the unknown sentinel anywhere in it, as
    the C JSON encoder finds in a fraction of a walk's time: a chart's 374 KB CRD) is returned as it is, not
    copied; callers only read what they get."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = None
    if text is not None and SIG_KEY not in text and UNKNOWN not in text:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            sig = item.get(SIG_KEY)
            if sig == SECRET_SIG:
                return secret(walk(item.get("value")))
            if sig == RESOURCE_SIG:
                return item.get("urn")
            if sig == ASSET_SIG:
                return {"asset": item.get("path") or item.get("uri") or item.get("text")}
            if sig == ARCHIVE_SIG:
                return {"archive": item.get("path") or item.get("uri") or sorted(item.get("assets", {}))}
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [walk(inner) for inner in item]
        if item == UNKNOWN:
            return unknown
        return item

    return walk(value)


def marked_secret(value: Any) -> dict[str, Any]:
    """A secret in wire form, as the engine hands it to a policy pack (value included)."""
    return {SIG_KEY: SECRET_SIG, "value": value}
