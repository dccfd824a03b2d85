"""Runs the Pulumi program in-process under Pulumi's own mock engine and records every registration.

``MockMonitor`` answers the program's RPCs; ``RecordingMonitor`` keeps the raw ``RegisterResourceRequest``
of each one (inputs in their wire form, with secrets and resource references still marked, and the
options ``MockResourceArgs`` does not carry). ``PlanMocks`` gives each resource plausible outputs so the
program runs to the end as it would in a preview.

Registrations are listed in the order the program constructs its resources (recorded synchronously as
each constructor runs), not in the order the RPCs happen to reach the monitor from the SDK's worker
threads: it is the same on every run, so the plan is deterministic. Construction order is a valid
registration order except for a resource that waits for what a later phase adds (``phases.Later``): such a
resource is moved after the last resource it names (``in_construction_order``), as the engine, which
registers it only once its dependencies resolved, sees it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import runpy
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.resource as pulumi_resource
import pulumi.runtime.config as runtime_config
import pulumi.runtime.settings as runtime_settings
from google.protobuf import json_format
from pulumi.runtime import mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass(frozen=True, slots=True)
class Registration:
    """One ``RegisterResource`` call as the engine would receive it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    provider: str | None
    wire_inputs: dict[str, Any]  # protobuf-JSON form: secrets/references/assets keep their signatures
    protect: bool
    depends_on: tuple[str, ...]
    delete_before_replace: bool
    ignore_changes: tuple[str, ...]
    retain_on_delete: bool
    replace_on_changes: tuple[str, ...]
    custom_timeouts: tuple[str, str, str] = ("", "", "")  # create, update, delete ("" = the provider's)
    import_id: str = ""  # the ``import`` option: the ID of the live resource this registration adopts


@dataclass(slots=True)
class ProgramRun:
    registrations: list[Registration]
    exports: dict[str, Any]
    log: list[tuple[str, str]] = field(default_factory=list)  # (level, message) the program logged


class ProgramError(Exception):
    """The program refused to run (bad settings, unimplemented phase) or crashed.

    ``registered`` counts the resources it had registered before stopping (0 for a refusal)."""

    def __init__(self, message: str, registered: int = 0) -> None:
        super().__init__(message)
        self.registered = registered


class RecordingMonitor(mocks.MockMonitor):
    def __init__(self, plan_mocks: mocks.Mocks) -> None:
        super().__init__(plan_mocks)
        self.registrations: list[Registration] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The engine leaves the root stack out of a child's qualified type; the stock mock does not.
        if parent and parent.split("::")[2] == "pulumi:pulumi:Stack":
            parent = ""
        return super().make_urn(parent, type_, name)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the engine's RPC name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        provider = request.provider or None
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                parent=None if request.parent.endswith("::" + _stack_type_name()) else (request.parent or None),
                provider=provider.rsplit("::", 1)[0] if provider else None,
                wire_inputs=whole_numbers(json_format.MessageToDict(request.object)),
                protect=bool(request.protect),
                depends_on=tuple(sorted(set(request.dependencies))),
                delete_before_replace=bool(request.deleteBeforeReplace),
                ignore_changes=tuple(request.ignoreChanges),
                retain_on_delete=bool(request.retainOnDelete),
                replace_on_changes=tuple(request.replaceOnChanges),
                custom_timeouts=(request.customTimeouts.create, request.customTimeouts.update,
                                 request.customTimeouts.delete),
                import_id=request.importId,
            )
        )
        return response


def whole_numbers(value: Any) -> Any:
    """protobuf Structs carry every number as a double; give back the integers the program wrote
    (a port is 5432, not 5432.0, in the plan and in the rendered manifests)."""
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _stack_type_name() -> str:
    return f"pulumi:pulumi:Stack::{pulumi.get_project()}-{pulumi.get_stack()}"


Outputs = Callable[[mocks.MockResourceArgs], dict[str, Any]]


def _fake_certificate(seed: str) -> str:
    body = base64.b64encode(hashlib.sha256(seed.encode()).digest() * 8).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def fake_kubeconfig(server: str = "https://k8s.tail8d86e.ts.net") -> str:
    """A structurally valid kubeconfig with fake certificate material, as MinikubeDockerCluster prints it."""
    ca = base64.b64encode(_fake_certificate("ca").encode()).decode()
    cert = base64.b64encode(_fake_certificate("client").encode()).decode()
    key = base64.b64encode(b"-----BEGIN RSA PRIVATE KEY-----\nb2ZmbGluZQ==\n-----END RSA PRIVATE KEY-----\n").decode()
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: minikube-indri\n  cluster:\n    server: {server}\n"
        f"    certificate-authority-data: {ca}\n"
        "contexts:\n- name: minikube-indri\n  context:\n    cluster: minikube-indri\n    user: minikube-indri\n"
        "current-context: minikube-indri\n"
        f"users:\n- name: minikube-indri\n  user:\n    client-certificate-data: {cert}\n"
        f"    client-key-data: {key}\n"
    )


# What devpi's export step prints (the import image it pushed, tagged with a content hash only the host can
# compute): offline, a stand-in of the same form (a real preview shows it unknown until the update).
FAKE_IMPORT_IMAGE = "registry.tail8d86e.ts.net/blumeops/devpi-import:0ff11e0ff11e0ff1"
# What the forge's OAuth2 application step prints (the forge issues them): offline stand-ins of the same form.
FAKE_OAUTH_APPLICATION = ('{"id":1,"client_id":"offline-oauth-client-id",'
                          '"client_secret":"offline-oauth-client-secret-never-real"}')


def _remote_command_outputs(args: mocks.MockResourceArgs) -> dict[str, Any]:
    # A host step whose name ends in "-kubeconfig" prints the cluster's kubeconfig on stdout; devpi's
    # "-export" step the import image's reference.
    stdout = fake_kubeconfig() if args.name.endswith("-kubeconfig") else ""
    if args.name.endswith("-export"):
        stdout = FAKE_IMPORT_IMAGE + "\n"
    if args.name.endswith("-oauth-app"):
        stdout = FAKE_OAUTH_APPLICATION + "\n"
    return {"stdout": stdout, "stderr": ""}


DEFAULT_OUTPUTS: Mapping[str, Outputs] = {"command:remote:Command": _remote_command_outputs}


class PlanMocks(mocks.Mocks):
    """Outputs a preview would show: inputs echoed back, plus the outputs the program reads
    (``DEFAULT_OUTPUTS`` by type token, overridable per run)."""

    def __init__(self, extra_outputs: Mapping[str, Outputs] | None = None) -> None:
        self.extra_outputs = {**DEFAULT_OUTPUTS, **(extra_outputs or {})}

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ in self.extra_outputs:
            state.update(self.extra_outputs[args.typ](args))
        digest = hashlib.sha256(f"{args.typ}::{args.name}".encode()).hexdigest()[:12]
        return f"{args.name}-{digest}", state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "tailscale:index/getDevice:getDevice":
            name = str(args.args.get("name") or args.args.get("hostname"))
            node = "n" + hashlib.sha256(name.encode()).hexdigest()[:16]
            return {"id": node[1:], "nodeId": node, "name": name, "hostname": name.split(".")[0],
                    "addresses": ["100.64.0.1"], "tags": []}, []
        return {}, []


_LOGGER = logging.getLogger("blumeops.plan")


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname.lower(), record.getMessage()))


def run_program(
    program_dir: Path,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: Sequence[str],
    extra_outputs: Mapping[str, Outputs] | None = None,
) -> ProgramRun:
    """Run ``program_dir/__main__.py`` under mocks with ``config``; return what it registered and exported."""
    main = program_dir / "__main__.py"
    added_path = str(program_dir) not in sys.path
    if added_path:
        sys.path.insert(0, str(program_dir))
    try:
        return run(lambda: runpy.run_path(str(main), run_name="__main__"), project, stack, config, secret_keys,
                   extra_outputs)
    finally:
        if added_path:
            sys.path.remove(str(program_dir))


def run(
    program: Callable[[], Any],
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: Sequence[str],
    extra_outputs: Mapping[str, Outputs] | None = None,
) -> ProgramRun:
    """Run ``program`` (a Pulumi program as a function) under mocks with ``config``."""
    plan_mocks = PlanMocks(extra_outputs)
    monitor = RecordingMonitor(plan_mocks)
    capture = _LogCapture()
    _LOGGER.handlers = [capture]
    _LOGGER.propagate = False

    constructed: list[tuple[str, str]] = []
    original_register = getattr(pulumi_resource, "register_resource")  # noqa: B009 (not re-exported)

    def record_construction(res: Any, ty: str, name: str, *args: Any, **kwargs: Any) -> None:
        constructed.append((ty, name))
        original_register(res, ty, name, *args, **kwargs)

    setattr(pulumi_resource, "register_resource", record_construction)  # noqa: B010
    _ensure_event_loop()  # type: ignore[no-untyped-call]
    runtime_settings.ROOT.set(None)
    runtime_config.set_all_config(dict(config), list(secret_keys))
    mocks.set_mocks(plan_mocks, project=project, stack=stack, preview=True, logger=_LOGGER, monitor=monitor)
    runtime_settings.SETTINGS.rpc_manager.clear()
    runtime_settings.SETTINGS.outputs.clear()
    exports: dict[str, Any] = {}
    try:
        _sync_await(run_pulumi_func(program))
        root = runtime_settings.get_root_resource()
        outputs = getattr(root, "outputs", {})
        for key, value in outputs.items():
            exports[key] = _sync_await(_resolve(value))
    except pulumi.RunError as err:
        raise ProgramError(str(err), len(monitor.registrations)) from None
    except Exception as err:  # the program crashed: say where, once
        raise ProgramError(f"the program failed: {type(err).__name__}: {err}", len(monitor.registrations)) from err
    finally:
        setattr(pulumi_resource, "register_resource", original_register)  # noqa: B010
        runtime_settings.ROOT.set(None)
    errors = [message for level, message in capture.records if level == "error"]
    if errors:
        raise ProgramError("the program reported errors:\n" + "\n".join(errors), len(monitor.registrations))
    return ProgramRun(in_construction_order(monitor.registrations, constructed), exports, capture.records)


def in_construction_order(registrations: Sequence[Registration],
                          constructed: Sequence[tuple[str, str]]) -> list[Registration]:
    """Sort registrations by when the program constructed them (same type and name: first come first)."""
    positions: dict[tuple[str, str], list[int]] = {}
    for index, key in enumerate(constructed):
        positions.setdefault(key, []).append(index)
    ranked = []
    for arrival, registration in enumerate(registrations):
        queue = positions.get((registration.type, registration.name))
        rank = queue.pop(0) if queue else len(constructed) + arrival
        ranked.append((rank, registration))
    ordered = [registration for _, registration in sorted(ranked, key=lambda pair: pair[0])]
    return _after_what_they_name(ordered)


def _after_what_they_name(ordered: list[Registration]) -> list[Registration]:
    """``ordered`` with every registration after its parent, provider and dependencies (stable: a resource
    keeps its place unless it names a later one; its children follow it)."""
    present = {registration.urn for registration in ordered}
    done: set[str] = set()
    result: list[Registration] = []
    pending = list(ordered)
    while pending:
        waiting = []
        for registration in pending:
            named = {registration.parent, registration.provider, *registration.depends_on} & present
            if named <= done:
                result.append(registration)
                done.add(registration.urn)
            else:
                waiting.append(registration)
        if len(waiting) == len(pending):  # a cycle the engine would refuse too: keep construction order
            result.extend(waiting)
            break
        pending = waiting
    return result


async def _resolve(value: Any) -> Any:
    output = pulumi.Output.from_input(value)
    resolved = await output.future(with_unknowns=True)
    is_secret = await output.is_secret()
    if is_secret:
        return {SIG_KEY: SECRET_SIG, "value": "[secret]"}
    return json.loads(json.dumps(resolved, default=str))
