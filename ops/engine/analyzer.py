"""Send recorded resources through the served blumeops policy pack, exactly as the engine does.

The Pulumi engine starts a Python policy pack as `python -m pulumi.policy <engine-address> <pack>`;
the pack prints the port of its Analyzer gRPC server on the first line of stdout. The engine then
calls `GetAnalyzerInfo`, `Configure` (every policy with its enforcement level and config) and
`Analyze` once per resource, with the resource's inputs as a protobuf Struct in wire form: a secret
is `{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": ...}` and an
unknown is the string "04da6b54-80e4-46f7-96ec-b56ff0331ba9". This module does the same, so
`ops plan` judges the program with the very code `pulumi preview --policy-pack policy` runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from ops import console

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY_DIR = REPO_ROOT / "policy"
START_TIMEOUT_SECONDS = 60.0
RPC_TIMEOUT_SECONDS = 60.0

MANDATORY = "mandatory"
ADVISORY = "advisory"
_LEVEL_NAMES = {
    proto.ADVISORY: ADVISORY,
    proto.MANDATORY: MANDATORY,
    proto.DISABLED: "disabled",
    proto.REMEDIATE: "remediate",
}
_LEVEL_VALUES = {name: value for value, name in _LEVEL_NAMES.items()}


class AnalyzerError(RuntimeError):
    """The policy pack could not be started or answered badly."""


@dataclass(frozen=True, slots=True)
class AnalyzerProvider:
    """The provider resource of a resource, as the engine reports it to the analyzer."""

    urn: str
    type: str
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AnalyzerResource:
    """One resource as the engine hands it to `Analyze`: type token, name, URN, inputs, options."""

    urn: str
    type: str
    name: str
    properties: Mapping[str, Any]
    protect: bool = False
    parent: str | None = None
    provider: AnalyzerProvider | None = None
    ignore_changes: tuple[str, ...] = ()
    delete_before_replace: bool | None = None
    additional_secret_outputs: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    name: str
    description: str
    level: str


@dataclass(frozen=True, slots=True)
class Violation:
    policy: str
    level: str  # "mandatory" | "advisory" (| "remediate" | "disabled", never sent by this pack)
    urn: str
    message: str  # what the rule said (the policy's description prefix removed)
    description: str = ""
    resource_type: str = ""
    resource_name: str = ""


@dataclass(frozen=True, slots=True)
class AnalysisReport:
    pack: str
    version: str
    policies: tuple[PolicyInfo, ...]
    violations: tuple[Violation, ...]
    resources_analyzed: int

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == MANDATORY]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == ADVISORY]

    @property
    def ok(self) -> bool:
        return not self.mandatory


def to_struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    """JSON-compatible properties (secrets/unknowns in wire form) -> Struct, as the engine sends them."""
    struct = struct_pb2.Struct()
    json_format.ParseDict(_jsonable(properties), struct)
    return struct


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def analyze_request(resource: AnalyzerResource) -> proto.AnalyzeRequest:
    options = proto.AnalyzerResourceOptions(
        protect=resource.protect,
        ignoreChanges=list(resource.ignore_changes),
        deleteBeforeReplace=bool(resource.delete_before_replace),
        deleteBeforeReplaceDefined=resource.delete_before_replace is not None,
        additionalSecretOutputs=list(resource.additional_secret_outputs),
        aliases=list(resource.aliases),
        parent=resource.parent or "",
    )
    request = proto.AnalyzeRequest(
        type=resource.type,
        properties=to_struct(resource.properties),
        urn=resource.urn,
        name=resource.name,
        options=options,
    )
    if resource.provider is not None:
        request.provider.CopyFrom(
            proto.AnalyzerProviderResource(
                type=resource.provider.type,
                properties=to_struct(resource.provider.properties),
                urn=resource.provider.urn,
                name=resource.provider.name,
            )
        )
    return request


VERDICT_CACHE = REPO_ROOT / "build" / "policy-verdicts"
IN_FLIGHT = 8  # Analyze requests sent before the first answer is awaited (the pack serves four at once)


def pack_fingerprint(policy_dir: Path) -> str:
    """sha256 over every file of the pack (its rules, images.yaml, PulumiPolicy.yaml), by relative path."""
    digest = hashlib.sha256()
    for path in sorted(p for p in policy_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(policy_dir)
        if relative.parts[0] in ("venv", ".venv") or "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        digest.update(str(relative).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class PolicyAnalyzer:
    """A served policy pack: start it, talk to it, stop it (a context manager).

    Verdicts are cached in ``build/policy-verdicts`` by the pack's fingerprint (every file of it), its
    configuration and the exact Analyze request, so an unchanged re-plan does not send an unchanged resource
    through the pack again: the rules are functions of those alone. The pack's own description (its
    ``GetAnalyzerInfo``, a function of its files) is cached the same way, and the pack is started only when a
    request misses the cache: a warm re-plan of an unchanged program starts no pack at all.
    ``BLUMEOPS_POLICY_CACHE=0`` (or ``cache_dir=None``) turns it off; CI starts without it."""

    def __init__(self, policy_dir: Path | None = None, config: Mapping[str, Mapping[str, Any]] | None = None,
                 cache_dir: Path | None = VERDICT_CACHE):
        self.policy_dir = Path(policy_dir) if policy_dir is not None else DEFAULT_POLICY_DIR
        self.config = dict(config or {})
        self.cache_dir = cache_dir if os.environ.get("BLUMEOPS_POLICY_CACHE", "1") != "0" else None
        self._fingerprint: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._info: proto.AnalyzerInfo | None = None
        self.port: int | None = None

    def __enter__(self) -> PolicyAnalyzer:
        if self.cache_dir is None:
            self.start()
        return self

    def _ensure_started(self) -> None:
        if self._stub is None:
            self.start()

    def _info_cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        if self._fingerprint is None:
            self._fingerprint = pack_fingerprint(self.policy_dir)
        key = hashlib.sha256(self._fingerprint.encode() + json.dumps(self.config, sort_keys=True).encode())
        return self.cache_dir / "info" / f"{key.hexdigest()}.pb"

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def cache_is_cold(self) -> bool:
        """Nothing of this pack (with this configuration) is cached yet: every resource will need it."""
        cached = self._info_cache_path()
        return cached is None or not cached.is_file()

    def launch(self) -> None:
        """Start the pack's process without waiting for it (``start`` connects): a plan launches it before it
        runs the program when the cache is cold, so the pack's own start-up runs on the other core."""
        if self._process is not None:
            return
        if not (self.policy_dir / "__main__.py").is_file():
            raise AnalyzerError(f"no policy pack at {self.policy_dir} (expected __main__.py)")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the served pack
        environment = dict(os.environ)
        environment.setdefault("PYTHONUNBUFFERED", "1")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pulumi.policy", "127.0.0.1:0", str(self.policy_dir)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=environment,
        )

    def start(self) -> None:
        self.launch()
        assert self._process is not None
        line = self._read_first_line(self._process)
        try:
            self.port = int(line.strip())
        except ValueError:
            self.stop()
            raise AnalyzerError(f"policy pack {self.policy_dir} did not print its port: {line!r}") from None
        self._channel = grpc.insecure_channel(
            f"127.0.0.1:{self.port}", options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)]
        )
        try:
            grpc.channel_ready_future(self._channel).result(timeout=START_TIMEOUT_SECONDS)
        except grpc.FutureTimeoutError:
            self.stop()
            raise AnalyzerError(f"policy pack on port {self.port} did not accept connections") from None
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self._info = self._stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=RPC_TIMEOUT_SECONDS)
        self._configure()
        cached = self._info_cache_path()
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            staged = cached.with_suffix(f".{os.getpid()}.tmp")
            staged.write_bytes(self._info.SerializeToString(deterministic=True))
            staged.replace(cached)

    def _read_first_line(self, process: subprocess.Popen[bytes]) -> str:
        assert process.stdout is not None
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(START_TIMEOUT_SECONDS)
        if not result or not result[0]:
            self.stop()
            raise AnalyzerError(
                f"policy pack {self.policy_dir} did not start "
                f"({'timed out' if not result else 'exited'}):\n{self.stderr_text()}"
            )
        return result[0].decode(errors="replace")

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def _configure(self) -> None:
        """As the engine: every policy gets its enforcement level (its default unless overridden)."""
        assert self._stub is not None and self._info is not None
        request = proto.ConfigureAnalyzerRequest()
        for policy in self._info.policies:
            wanted = dict(self.config.get(policy.name, {}))
            level = wanted.pop("enforcementLevel", None)
            entry = request.policyConfig[policy.name]
            entry.enforcementLevel = _LEVEL_VALUES[level] if level else policy.enforcementLevel
            if wanted:
                entry.properties.update(wanted)
        self._stub.Configure(request, timeout=RPC_TIMEOUT_SECONDS)

    @property
    def info(self) -> proto.AnalyzerInfo:
        if self._info is None:
            cached = self._info_cache_path()
            if cached is not None and cached.is_file():
                info = proto.AnalyzerInfo()
                try:
                    info.ParseFromString(cached.read_bytes())
                    self._info = info
                except Exception:
                    self._info = None
        if self._info is None:
            self._ensure_started()
        if self._info is None:
            raise AnalyzerError("policy pack not started")
        return self._info

    def policies(self) -> tuple[PolicyInfo, ...]:
        return tuple(
            PolicyInfo(p.name, p.description, _LEVEL_NAMES.get(p.enforcementLevel, str(p.enforcementLevel)))
            for p in self.info.policies
        )

    def _cache_path(self, resource: AnalyzerResource) -> Path | None:
        """Keyed by the pack, its configuration and the whole resource, from which the `Analyze` request is
        made (``analyze_request`` is a function of it alone): a hit needs no request built at all."""
        if self.cache_dir is None:
            return None
        if self._fingerprint is None:
            self._fingerprint = pack_fingerprint(self.policy_dir)
        provider = resource.provider
        described = json.dumps(
            [resource.urn, resource.type, resource.name, resource.properties, resource.protect, resource.parent,
             [provider.urn, provider.type, provider.name, provider.properties] if provider is not None else None,
             resource.ignore_changes, resource.delete_before_replace, resource.additional_secret_outputs,
             resource.aliases],
            sort_keys=True, default=repr)
        key = hashlib.sha256(self._fingerprint.encode() + json.dumps(self.config, sort_keys=True).encode()
                             + described.encode()).hexdigest()
        return self.cache_dir / key[:2] / f"{key}.json"

    def call_analyze(self, request: Any) -> Any:
        """One `Analyze` call as the engine makes it, without the verdict cache (what `ops bench` times)."""
        self._ensure_started()
        assert self._stub is not None
        return self._stub.Analyze(request, timeout=RPC_TIMEOUT_SECONDS)

    def analyze_resource(self, resource: AnalyzerResource) -> list[Violation]:
        cached = self._cache_path(resource)
        found = self._recall(cached)
        if found is not None:
            return found
        self._ensure_started()
        assert self._stub is not None
        request = analyze_request(resource)
        try:
            response = self._stub.Analyze(request, timeout=RPC_TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            raise AnalyzerError(
                f"policy pack failed on {resource.urn}: {exc}\n{self.stderr_text()}"
            ) from exc
        violations = self._violations(resource, response)
        self._remember(cached, violations)
        return violations

    @staticmethod
    def _recall(cached: Path | None) -> list[Violation] | None:
        if cached is None or not cached.is_file():
            return None
        try:
            return [Violation(**item) for item in json.loads(cached.read_text())]
        except (OSError, ValueError, TypeError):
            return None  # an unreadable entry is analyzed again and rewritten

    @staticmethod
    def _remember(cached: Path | None, violations: Sequence[Violation]) -> None:
        if cached is None:
            return
        cached.parent.mkdir(parents=True, exist_ok=True)
        staged = cached.with_suffix(f".{os.getpid()}.tmp")
        staged.write_text(json.dumps([dataclasses.asdict(v) for v in violations]))
        staged.replace(cached)

    def _violations(self, resource: AnalyzerResource, response: Any) -> list[Violation]:
        violations = []
        for diagnostic in response.diagnostics:
            message = diagnostic.message
            if diagnostic.description and message.startswith(diagnostic.description + "\n"):
                message = message[len(diagnostic.description) + 1 :]
            violations.append(
                Violation(
                    policy=diagnostic.policyName,
                    level=_LEVEL_NAMES.get(diagnostic.enforcementLevel, str(diagnostic.enforcementLevel)),
                    urn=diagnostic.urn or resource.urn,
                    message=message,
                    description=diagnostic.description,
                    resource_type=resource.type,
                    resource_name=resource.name,
                )
            )
        return violations

    def analyze(self, resources: Sequence[AnalyzerResource]) -> AnalysisReport:
        """Every resource, in order: cached verdicts read, the others sent to the pack a few at a time, so that
        building one request overlaps the pack judging the one before (the pack runs in its own process)."""
        verdicts: list[list[Violation] | None] = [None] * len(resources)
        pending: list[tuple[int, Path | None, Any]] = []

        def collect(entry: tuple[int, Path | None, Any]) -> None:
            index, cached, future = entry
            try:
                response = future.result(timeout=RPC_TIMEOUT_SECONDS)
            except grpc.RpcError as exc:
                raise AnalyzerError(
                    f"policy pack failed on {resources[index].urn}: {exc}\n{self.stderr_text()}") from exc
            verdicts[index] = self._violations(resources[index], response)
            self._remember(cached, verdicts[index] or [])

        for index, resource in enumerate(resources):
            cached = self._cache_path(resource)
            found = self._recall(cached)
            if found is not None:
                verdicts[index] = found
                continue
            self._ensure_started()
            assert self._stub is not None
            pending.append((index, cached, self._stub.Analyze.future(analyze_request(resource),
                                                                     timeout=RPC_TIMEOUT_SECONDS)))
            if len(pending) >= IN_FLIGHT:
                collect(pending.pop(0))
        for entry in pending:
            collect(entry)
        return AnalysisReport(
            pack=self.info.name,
            version=self.info.version,
            policies=self.policies(),
            violations=tuple(v for found in verdicts for v in found or ()),
            resources_analyzed=len(resources),
        )

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._stub = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=5)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None


def analyze(
    resources: Sequence[AnalyzerResource],
    policy_dir: Path | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    served: PolicyAnalyzer | None = None,
) -> AnalysisReport:
    """Start the pack (or use ``served``, launched earlier), analyze every resource, stop the pack."""
    with served if served is not None else PolicyAnalyzer(policy_dir, config) as analyzer:
        return analyzer.analyze(resources)


_STYLES = {MANDATORY: "red", ADVISORY: "yellow", "ok": "green", "dim": "dim"}


def render_report(report: AnalysisReport, stream: TextIO | None = None, color: bool | None = None, *,
                  verbose: bool = False, origins: Mapping[str, str] | None = None) -> str:
    """The verdicts for people: one line per mandatory violation (what blocks), then the advisory ones
    grouped by rule with a count, then a summary. ``verbose``: every violation with its whole message and
    URN. ``origins``: URN -> where the resource comes from (e.g. "chart argo-cd 10.1.1"), added to its line.
    Colour only when `color` is True, or when None and `stream` (default stdout) is a TTY."""
    out = stream if stream is not None else sys.stdout
    enabled = color if color is not None else console.use_colour(out)
    origins = origins or {}

    def paint(kind: str, text: str) -> str:
        return console.colour(text, _STYLES[kind], enabled)

    lines = [f"policy pack {report.pack}@v{report.version}: {len(report.policies)} policies, "
             f"{report.resources_analyzed} resources"]
    ordered = sorted(report.violations, key=lambda v: (v.level != MANDATORY, v.policy, v.urn))
    shown = ordered if verbose else [v for v in ordered if v.level == MANDATORY]
    grouped: dict[str, list[Violation]] = {}
    for violation in ordered if not verbose else ():
        if violation.level != MANDATORY:
            grouped.setdefault(violation.policy, []).append(violation)
    rows = [(v.level, v.policy) for v in shown] + [(v[0].level, policy) for policy, v in grouped.items()]
    level_width = max((len(level) for level, _ in rows), default=0)
    policy_width = max((len(policy) for _, policy in rows), default=0)
    indent = " " * (2 + level_width + 2 + policy_width + 2)

    def head(level: str) -> str:
        return paint(level if level in _STYLES else "dim", level.upper().ljust(level_width))

    for violation in shown:
        first, *rest = violation.message.splitlines() or [""]
        origin = origins.get(violation.urn)
        suffix = f" [{origin}]" if origin else ""
        lines.append(f"  {head(violation.level)}  {violation.policy.ljust(policy_width)}  {first}{suffix}")
        if verbose:
            lines.extend(f"{indent}{line}" for line in rest)
            lines.append(f"{indent}{paint('dim', violation.urn)}")
    for policy, violations in grouped.items():
        count = len(violations)
        summary = violations[0].description.splitlines()[0] if violations[0].description else ""
        lines.append(f"  {head(violations[0].level)}  {policy.ljust(policy_width)}  "
                     f"{count} finding{'s' if count != 1 else ''}{': ' + summary if summary else ''}")
    if grouped:
        lines.append(paint("dim", f"{indent}(--verbose lists every finding)"))
    summary = (f"{len(report.mandatory)} mandatory, {len(report.advisory)} advisory violation(s) "
               f"in {report.resources_analyzed} resources")
    if report.ok:
        verdict = paint("ok", f"policy: passed ({summary})")
    else:
        verdict = paint(MANDATORY, f"policy: FAILED ({summary})")
    lines.append(verdict)
    return "\n".join(lines) + "\n"
