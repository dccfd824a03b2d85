"""Which inputs the engine sent marked secret.

The engine sends a resource's inputs to `Analyze` with secrets marked (`KeepSecrets: true` in
pulumi's analyzer plugin), but `pulumi_policy` 1.21 drops the marks before a rule runs: a rule sees
`config.require_secret(...)` and a string typed into the program alike. Whether a secret-looking
value travels marked is exactly what `no-plaintext-secrets` must judge for a command's `stdin` and
`environment` (a plain one lands in the state file and in every diff), so the pack keeps the wire
form of the request for the duration of each `Analyze` call:

- `install()` (called by `policy/__main__.py` before the pack is served) replaces pulumi_policy's
  analyzer servicer with a subclass whose `Analyze` puts the request's properties, in wire form,
  into a context variable while the rules run, and takes them away afterwards;
- `secret_marked(path)` answers from it: True when the value at `path` or a value containing it was
  marked, False when not, and also False when no wire form is at hand (a rule called directly, as
  the tests do without `request_properties`): a value is only trusted as secret when the engine
  said so.

pulumi_policy's servicer class is private; `install()` fails loudly when it is missing, and
tests/policy/test_policy_served.py checks over gRPC that a marked stdin passes and a plain one fails.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

_REQUEST: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("blumeops_wire", default=None)


@contextmanager
def request_properties(properties: Mapping[str, Any]) -> Iterator[None]:
    """Make `properties` (wire form: secrets as {SIG_KEY: SECRET_SIG, "value": ...}) the request the
    rules see while the block runs."""
    token = _REQUEST.set(properties)
    try:
        yield
    finally:
        _REQUEST.reset(token)


def is_secret_value(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(SIG_KEY) == SECRET_SIG


def secret_marked(*path: str | int) -> bool:
    """Was the input at `path` (or one enclosing it) sent marked secret? False when unknown."""
    current: Any = _REQUEST.get()
    if current is None:
        return False
    for step in path:
        if is_secret_value(current):
            return True
        if isinstance(step, int):
            if not isinstance(current, list) or not -len(current) <= step < len(current):
                return False
            current = current[step]
        else:
            if not isinstance(current, Mapping) or step not in current:
                return False
            current = current[step]
    return is_secret_value(current)


def install() -> None:
    """Serve the pack with an analyzer that keeps each request's wire form for `secret_marked`."""
    from pulumi_policy import policy as served

    base = getattr(served, "_PolicyAnalyzerServicer", None)
    if base is None or not hasattr(base, "Analyze"):
        raise RuntimeError(
            "pulumi_policy has no _PolicyAnalyzerServicer.Analyze: the blumeops pack cannot see which inputs "
            "are secret; pin pulumi-policy==1.21.0 (policy/requirements.txt) or adapt policy/rules/wire.py"
        )
    if getattr(base, "blumeops_keeps_wire_form", False):
        return

    class WireKeepingServicer(base):  # type: ignore[misc, valid-type]
        blumeops_keeps_wire_form = True

        def Analyze(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
            # the same conversion pulumi_policy applies before it drops the secret marks
            with request_properties(message_to_dict(request.properties)):
                return super().Analyze(request, context)

    message_to_dict = vars(served)["json_format"].MessageToDict
    vars(served)["_PolicyAnalyzerServicer"] = WireKeepingServicer
