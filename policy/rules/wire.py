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

The same servicer makes the pack's cost linear in what it judges, paid once per resource. pulumi_policy's
own `Analyze` converts the request (`MessageToDict`, `deserialize_properties`) and builds its
unknown-checking proxy, which copies the property path at every node, once per policy: twelve times for
every resource, which on a chart's 374 KB CustomResourceDefinition took seconds. This `Analyze` runs the
same loop over the policies with the same arguments, but converts the request once, hands every policy the
same `LazyUnknownProxy` (the SDK proxy's behaviour, built only where a rule looks), and opens a
`shared_walks()` scope in which the generic walk (`rules.workloads.fields`) is computed once per resource
for all rules.

pulumi_policy's servicer class is private; `install()` fails loudly when it is missing, and
tests/policy/test_policy_served.py checks over gRPC that a marked stdin passes and a plain one fails, and
that the served verdicts equal the rules' own on every resource of the plan.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from inspect import isawaitable
from typing import Any, TypeVar

from pulumi_policy.deserialize import _deserialize_property
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

T = TypeVar("T")
_REQUEST: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("blumeops_wire", default=None)
_WALKS: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar("blumeops_walks", default=None)
_UNKNOWNS = frozenset({UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UNKNOWN_ARRAY_VALUE,
                       UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE, UNKNOWN_OBJECT_VALUE})


def _is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in _UNKNOWNS


def _open(value: Any) -> Any:
    """A wire-form value as pulumi_policy's `deserialize_properties` gives it, for the one level a rule reads:
    a secret, asset or archive (a dict with the special signature key) is deserialized whole (it is small);
    any other dict or list stays wire form, its children opened when they are read."""
    if isinstance(value, dict) and SIG_KEY in value:
        return _deserialize_property(value)
    return value


def _wrap(value: Any, path: list[str]) -> Any:
    if isinstance(value, dict):
        return LazyUnknownProxy(value, path)
    if isinstance(value, list):
        return LazyUnknownList(value, path)
    return value


def _whole(proxy: LazyUnknownProxy | LazyUnknownList) -> Any:
    """``proxy["__target"]``: the subtree deserialized whole, once (what pulumi_policy's proxy hands out)."""
    if proxy._opened is None:
        proxy._opened = _deserialize_property(proxy._target)
    return proxy._opened


class LazyUnknownProxy(Mapping[str, Any]):
    """What `pulumi_policy.proxy.unknown_checking_proxy` returns for a dict, built lazily: reading an unknown
    value raises `UnknownValueError` with the same sentinel and path; `["__target"]` is the raw dict. Children
    are wrapped when first read, so a rule pays for what it reads, not for the whole tree."""

    __slots__ = ("_children", "_opened", "_path", "_target")

    def __init__(self, target: dict[str, Any], path: list[str]) -> None:
        self._target = target  # wire form: deserialized as it is read (``_open``), or whole for ``__target``
        self._path = path
        self._children: dict[Any, Any] = {}
        self._opened: Any = None

    def __getitem__(self, key: Any) -> Any:
        if key == "__target":
            return _whole(self)
        if key in self._children:
            return self._children[key]
        value = _open(self._target[key])
        path = [*self._path, str(key)]
        if _is_unknown(value):
            raise UnknownValueError(value, path)
        wrapped = self._children[key] = _wrap(value, path)
        return wrapped

    def __setitem__(self, key: Any, value: Any) -> None:
        self._children.pop(key, None)
        self._opened = None
        self._target[key] = value

    @property
    def wire(self) -> dict[str, Any]:
        """The wire form below this proxy, not deserialized: open each value with ``open_value`` as you read
        it (what a rule that reads a whole subtree, a CRD's schema, pays no more than the walk does)."""
        return self._target

    def __iter__(self) -> Iterator[str]:
        return iter(self._target)

    def __len__(self) -> int:
        return len(self._target)


class LazyUnknownList(Sequence[Any]):
    """The list counterpart of `LazyUnknownProxy` (a slice is a list of wrapped items, unchecked, as the SDK's)."""

    __slots__ = ("_children", "_opened", "_path", "_target")

    def __init__(self, target: list[Any], path: list[str]) -> None:
        self._target = target
        self._path = path
        self._children: dict[int, Any] = {}
        self._opened: Any = None

    def __getitem__(self, key: Any) -> Any:
        if key == "__target":
            return _whole(self)
        if isinstance(key, slice):
            return [_wrap(_open(item), [*self._path, str(index)])
                    for index, item in zip(range(len(self._target))[key], self._target[key], strict=True)]
        index = key + len(self._target) if isinstance(key, int) and key < 0 else key
        if index in self._children:
            return self._children[index]
        value = _open(self._target[key])
        if _is_unknown(value):  # named as asked (-1 stays -1), as pulumi_policy's proxy names it
            raise UnknownValueError(value, [*self._path, str(key)])
        wrapped = self._children[index] = _wrap(value, [*self._path, str(index)])
        return wrapped

    def __len__(self) -> int:
        return len(self._target)

    @property
    def wire(self) -> list[Any]:
        return self._target


open_value = _open


def struct_to_dict(struct: Any) -> dict[str, Any]:
    """`json_format.MessageToDict` of a `google.protobuf.Struct`, the same values (numbers as floats; infinity
    and NaN refused, as MessageToDict refuses them), without its generic descriptor machinery, which on a
    374 KB CRD took 50 ms."""
    fields = struct.fields
    return {key: _value_to_python(fields[key]) for key in fields}


def _value_to_python(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value_to_python(item) for item in value.list_value.values]
    if kind == "bool_value":
        return value.bool_value
    if kind == "number_value":
        number = value.number_value
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("Fail to serialize Infinity or NaN for Value.number_value")
        return number
    return None  # null_value, or no kind set: MessageToDict gives None for both


def lazy_unknown_checking_proxy(props: dict[str, Any]) -> LazyUnknownProxy:
    return LazyUnknownProxy(props, [])


@contextmanager
def shared_walks() -> Iterator[None]:
    """While the block runs (one `Analyze`), `shared_walk` computes each walk once and replays it."""
    token = _WALKS.set({})
    try:
        yield
    finally:
        _WALKS.reset(token)


def shared_walk(key: Any, compute: Callable[[], T]) -> T:
    """`compute()` once per `key` inside `shared_walks()`; outside it (a rule called directly), every time."""
    walks = _WALKS.get()
    if walks is None:
        return compute()
    if key not in walks:
        walks[key] = compute()
    found: T = walks[key]
    return found


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

    needed = ("_configure_runtime_settings", "_get_enforcement_level", "_create_report_violation",
              "_get_resource_options", "_get_provider_resource", "_get_policy_config", "_map_enforcement_level")
    missing = [name for name in needed if not hasattr(base, name)]
    if missing:
        raise RuntimeError(f"pulumi_policy's servicer lacks {missing}: pin pulumi-policy==1.21.0 "
                           "(policy/requirements.txt) or adapt policy/rules/wire.py")
    proto = vars(served)["proto"]
    policy_types = (vars(served)["ResourceValidationPolicy"], vars(served)["EnforcementLevel"],
                    vars(served)["ResourceValidationArgs"], vars(served)["_NotApplicableError"])

    class SharedRequestServicer(base):  # type: ignore[misc, valid-type]
        """pulumi_policy 1.21's Analyze, with the request converted once and shared by every policy."""

        blumeops_keeps_wire_form = True

        def Analyze(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
            validation_policy, level, validation_args, not_applicable = policy_types
            self._configure_runtime_settings()
            response = proto.AnalyzeResponse()
            wire_form = struct_to_dict(request.properties)
            # deserialized as the rules read it (a generic walk reads wire_form, a CRD's schema is never walked):
            # the cost follows what is read, not the size of the resource
            props = lazy_unknown_checking_proxy(dict(wire_form))
            opts = self._get_resource_options(request)
            provider = self._get_provider_resource(request)
            with request_properties(wire_form), shared_walks():
                for policy in self._PolicyAnalyzerServicer__policies:
                    enforcement_level = self._get_enforcement_level(policy)
                    if enforcement_level == level.DISABLED or not isinstance(policy, validation_policy):
                        continue
                    if not policy.has_validation():
                        response.not_applicable.append(proto.PolicyNotApplicable(
                            policy_name=policy.name, reason="Policy does not implement validate"))
                        continue
                    if enforcement_level == level.REMEDIATE:
                        enforcement_level = level.MANDATORY
                    report = self._create_report_violation(response, policy.name, policy.description,
                                                           enforcement_level, policy.severity)
                    args = validation_args(request.type, props, request.urn, request.name, opts, provider,
                                           self._get_policy_config(policy.name),
                                           self._PolicyAnalyzerServicer__stack_tags)
                    try:
                        result = policy.validate(args, report)
                        if isawaitable(result):  # as pulumi_policy runs an asynchronous validate
                            loop = asyncio.new_event_loop()
                            loop.run_until_complete(asyncio.ensure_future(result, loop=loop))
                            loop.close()
                    except UnknownValueError as exc:
                        response.diagnostics.append(proto.AnalyzeDiagnostic(
                            policyName=policy.name,
                            policyPackName=self._PolicyAnalyzerServicer__policy_pack_name,
                            policyPackVersion=self._PolicyAnalyzerServicer__policy_pack_version,
                            message=(f"can't run policy '{policy.name}' from policy pack "
                                     f"'{self._PolicyAnalyzerServicer__policy_pack_name}@v"
                                     f"{self._PolicyAnalyzerServicer__policy_pack_version}' during preview: "
                                     f"{exc.message}"),
                            urn="", description=policy.description,
                            enforcementLevel=self._map_enforcement_level(level.ADVISORY)))
                    except not_applicable as exc:
                        response.not_applicable.append(proto.PolicyNotApplicable(
                            policy_name=policy.name, reason=exc.reason or ""))
            return response

    vars(served)["_PolicyAnalyzerServicer"] = SharedRequestServicer
