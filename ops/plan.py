"""``python -m ops plan``: the offline preview of a stack.

Runs the program under the mock engine (``ops.harness``), turns the registrations into the plan JSON
(the contract below), renders what lands on the machines under ``build/plan/<stack>/``, sends every
resource through the policy pack's real analyzer interface and prints a tree per phase.

Plan JSON contract (tools and tests read it; keys and types are stable)::

    {"stack": "indri", "project": "blumeops", "targetPhase": "1",
     "phases": [{"id": "0", "title": "Foundation", "included": true}, ...],      # every phase, in order;
                                          # included: in the target's chain (a plan cannot know what is deployed)
     "resources": [                                                              # registration order
        {"urn": str, "type": str, "name": str, "custom": bool,
         "parent": str | null,            # parent URN; null for children of the stack
         "phase": str | null,             # id of the blumeops:phase:Phase it descends from
         "provider": str | null,          # URN of its explicit provider
         "inputs": {...},                 # engine (camelCase) names; secrets are "[secret]",
                                          # unknowns "[unknown]", resource references their URN
         "options": {"protect": bool, "dependsOn": [urn, ...], "deleteBeforeReplace": bool,
                     "ignoreChanges": [str, ...], "retainOnDelete": bool,
                     "replaceOnChanges": [str, ...],   # inputs whose change replaces the resource
                     "import": str | null}}, ...],     # the ID it adopts (blumeops:adopt), else null
     "exports": {...},                    # the stack outputs, secrets "[secret]"
     "secretScripts": {urn: str, ...}}    # each host step whose stdin is secret ("[secret]" above): its script
                                          # with the secrets as placeholders, so ops diff/review see a change

Health declarations (``components/health.py``; read by ``ops check``, ``ops runbook``): a component's inputs may
carry ``"healthChecks": [check, ...]`` and ``"preconditions": [{"text": str, "checkedBy": <step name>}, ...]``.
Every check has ``kind``, ``side`` ("host": run on the host over SSH; "operator": run where ops runs), ``name``
(unique in the plan), ``timeoutSeconds``, ``fix``; host-side ones a ``host`` {address, port, user, hostKey, bash}::

    {"kind": "launchd", "label": str, "domain": "gui/<uid>", "launchctl": path, "errLog": path}
    {"kind": "textfile", "path": str, "maxAgeSeconds": int, "writer": <label>}
    {"kind": "http", "url": str, "expect": [int, ...], "tls": "public" | "cluster" | "none",
     "curl": path}                        # curl only when side is "host"
    {"kind": "postgres", "address": str, "port": int}     # TCP connect + PostgreSQL's SSLRequest answer

``{tailnet}`` in a URL or address stands for the tailnet's DNS name (the stack's ``blumeops:tailnet.name``).

The plan is byte-identical across runs of the same program and config (sorted keys, deterministic
registration order), so a diff between two plans shows only real changes.

A ``kubernetes:helm.sh/v4:Chart`` is followed by the objects it deploys (``ops.charts_render``): resources
like any other, ``parent`` the Chart, typed and named as Pulumi's Kubernetes provider registers them.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import phases as phase_engine
from components.host.script import reviewable
from ops import charts
from ops.engine import analyzer, charts_render, harness, lifecycle, wire
from ops.stack import ROOT, StackConfig

SECRET = "[secret]"
UNKNOWN = "[unknown]"
PHASE_TYPE = "blumeops:phase:Phase"
# libyaml when PyYAML has it: rendered CRDs make the manifests large (the pure-Python emitter takes seconds)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
MANIFEST_CACHE = ROOT / "build" / "manifest-cache.sqlite"


class PlanError(Exception):
    """The plan is not acceptable: duplicate URNs, a leaked secret, a mandatory policy violation."""


def redact(value: Any) -> Any:
    """Wire-form inputs -> plan inputs: secrets hidden, references as URNs, assets by their source."""
    return wire.transform(value, secret=lambda _: SECRET, unknown=UNKNOWN)


@dataclass(slots=True)
class Plan:
    document: dict[str, Any]
    artifacts: dict[str, str] = field(default_factory=dict)  # relative path -> text
    stand_ins: list[str] = field(default_factory=list)
    run: harness.ProgramRun | None = None
    fake_secrets: dict[str, str] = field(default_factory=dict)  # key -> the fake value ops put in
    unrendered: dict[str, str] = field(default_factory=dict)  # Chart URN -> why its children are not shown
    chart_warnings: list[str] = field(default_factory=list)

    @property
    def resources(self) -> list[dict[str, Any]]:
        resources: list[dict[str, Any]] = self.document["resources"]
        return resources

    def text(self) -> str:
        """``json.dumps(document, indent=2, sort_keys=True)``, assembled from per-resource pieces that are
        cached across runs (the indenting encoder is pure Python; rendered CRDs make the plan megabytes)."""
        return indented_json(self.document, ManifestCache(MANIFEST_CACHE))


def _phase_of(registrations: Iterable[harness.Registration]) -> dict[str, str | None]:
    by_urn = {r.urn: r for r in registrations}
    phase_ids: dict[str, str | None] = {}

    def find(urn: str | None) -> str | None:
        seen: set[str] = set()
        while urn is not None and urn in by_urn and urn not in seen:
            seen.add(urn)
            record = by_urn[urn]
            if record.type == PHASE_TYPE:
                return str(redact(record.wire_inputs).get("phaseId"))
            urn = record.parent
        return None

    for record in by_urn.values():
        phase_ids[record.urn] = find(record.urn)
    return phase_ids


def plan_entry(record: harness.Registration, phase: str | None) -> dict[str, Any]:
    """One registration as a resource of the plan JSON (the contract at the top of this module)."""
    return {
        "urn": record.urn,
        "type": record.type,
        "name": record.name,
        "custom": record.custom,
        "parent": record.parent,
        "phase": phase,
        "provider": record.provider,
        "inputs": redact(record.wire_inputs),
        "options": {
            "protect": record.protect,
            "dependsOn": list(record.depends_on),
            "deleteBeforeReplace": record.delete_before_replace,
            "ignoreChanges": list(record.ignore_changes),
            "retainOnDelete": record.retain_on_delete,
            "replaceOnChanges": list(record.replace_on_changes),
            "import": record.import_id or None,
        },
    }


def build_plan(stack: StackConfig, program_dir: Path = ROOT, *, charts_required: bool | None = None,
               try_pull: bool | None = None,
               on_program: Callable[[harness.ProgramRun], None] | None = None,
               on_registrations: Callable[[harness.ProgramRun], None] | None = None) -> Plan:
    """Run the program for ``stack``, expand its Helm charts into their objects (``ops.charts_render``) and
    assemble the plan; raises ProgramError, PlanError or charts.ChartError.

    A chart missing from the chart cache fails the plan when ``charts_required`` (default:
    ``$BLUMEOPS_CHARTS_REQUIRED``); otherwise it is pulled into the cache if ``try_pull`` (default: when
    not required) and the network allows, and failing that the plan goes on and lists it in
    ``Plan.unrendered``. ``on_program`` is called with the run as soon as the program has run (before its charts
    are rendered), ``on_registrations`` once its registrations are final (the charts' objects included), before
    the artifacts are rendered: ``ops plan`` has the pack judge them meanwhile (``EarlyVerdicts``)."""
    required = charts.charts_required() if charts_required is None else charts_required
    run = harness.run_program(program_dir, stack.project, stack.stack, stack.config, stack.secret_keys)
    if on_program is not None:
        on_program(run)
    expansion = charts_render.expand(run.registrations, required=required,
                                     try_pull=not required if try_pull is None else try_pull)
    run.registrations = expansion.registrations(run.registrations)
    urns = [r.urn for r in run.registrations]
    duplicates = sorted({urn for urn in urns if urns.count(urn) > 1})
    if duplicates:
        raise PlanError("duplicate URNs (two resources with the same type and name under one parent):\n  "
                        + "\n  ".join(duplicates))
    if on_registrations is not None:
        on_registrations(run)
    phase_ids = _phase_of(run.registrations)
    included = {p for p in phase_ids.values() if p is not None}
    resources = [plan_entry(r, phase_ids[r.urn]) for r in run.registrations]
    document = {
        "stack": stack.stack,
        "project": stack.project,
        "targetPhase": stack.target,
        "phases": [
            {"id": spec.id, "title": spec.title, "included": spec.id in included}
            for spec in phase_engine.REGISTRY
        ],
        "resources": resources,
        "exports": redact(run.exports),
        "secretScripts": secret_scripts(run),
    }
    plan = Plan(document, stand_ins=list(stack.stand_ins), run=run, fake_secrets=dict(stack.fake_secrets),
                unrendered=dict(expansion.unrendered), chart_warnings=list(expansion.warnings))
    plan.artifacts = render_artifacts(plan)
    check_secrets(plan, stack.fake_secrets)
    kept = lifecycle.kept_state_problems(document)
    if kept:
        raise PlanError("state a rollback keeps would not survive it, or could not be taken back:\n  "
                        + "\n  ".join(kept))
    return plan


def secret_scripts(run: harness.ProgramRun) -> dict[str, str]:
    """The script of each host step whose stdin is a secret, as reviewers read it (``reviewable``): the values
    marked ``# blumeops-secret`` are placeholders. The plan's leak check holds it to that."""
    scripts: dict[str, str] = {}
    for record in run.registrations:
        stdin = record.wire_inputs.get("stdin") if record.type == "command:remote:Command" else None
        if isinstance(stdin, dict) and stdin.get(harness.SIG_KEY) == harness.SECRET_SIG \
                and isinstance(stdin.get("value"), str):
            scripts[record.urn] = reviewable(stdin["value"])
    return scripts


def check_secrets(plan: Plan, fake_secrets: Mapping[str, str]) -> None:
    """Fail when any secret value (the fakes ops put in) shows up in the plan or a rendered artifact."""
    # compact JSON (the C encoder) holds the same strings as plan.text(), in a fraction of the time
    texts = {"plan.json": json.dumps(plan.document, sort_keys=True), **plan.artifacts}
    # the fakes share their prefix (ops/stack.py, fake_secret): one scan of a text for it rules every fake out
    prefix = os.path.commonprefix(list(fake_secrets.values())) if fake_secrets else ""  # noqa: RUF071 (strings)
    suspects = {where: text for where, text in texts.items() if len(prefix) < 8 or prefix in text}
    leaks = sorted(
        f"{key} appears in {where}"
        for key, fake in fake_secrets.items()
        for where, text in suspects.items()
        if fake in text
    )
    if leaks:
        raise PlanError("secret values leaked into the plan:\n  " + "\n  ".join(leaks))


def analyzer_properties(value: Any) -> Any:
    """Wire-form inputs as the engine hands them to a policy pack: secrets marked and with their values
    (the engine sends them: a rule must be able to check a pinned host key inside a secret connection;
    offline they are the plan's fakes), unknowns unknown, resource references as their URNs."""
    return wire.transform(value, secret=wire.marked_secret)


def analyzer_resources(run: harness.ProgramRun,
                       records: Sequence[harness.Registration] | None = None) -> list[analyzer.AnalyzerResource]:
    """Every registration of a run (or ``records`` of it), in the form the engine sends to ``Analyze``."""
    by_urn = {r.urn: r for r in run.registrations}
    resources = []
    for record in run.registrations if records is None else records:
        provider = by_urn.get(record.provider) if record.provider else None
        resources.append(
            analyzer.AnalyzerResource(
                urn=record.urn,
                type=record.type,
                name=record.name,
                properties=analyzer_properties(record.wire_inputs),
                protect=record.protect,
                parent=record.parent,
                provider=analyzer.AnalyzerProvider(
                    urn=provider.urn, type=provider.type, name=provider.name,
                    properties=analyzer_properties(provider.wire_inputs),
                ) if provider is not None else None,
                ignore_changes=record.ignore_changes,
                delete_before_replace=record.delete_before_replace,
            )
        )
    return resources


class EarlyVerdicts:
    """The pack judges a plan's registrations while the plan is assembled, in its own process (the other core):
    the program's own as soon as the program has run (while the charts are rendered), the charts' objects once
    they are known (while the artifacts are rendered). Give ``program_ran`` and ``registrations_final`` to
    ``build_plan``; ``report`` waits for the verdicts and lists them in the plan's order, as one call would."""

    def __init__(self, served: analyzer.PolicyAnalyzer) -> None:
        self.served = served
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # one pack, its requests in order
        self.parts: list[concurrent.futures.Future[analyzer.AnalysisReport]] = []
        self.sent: set[str] = set()

    def _send(self, run: harness.ProgramRun, records: list[harness.Registration]) -> None:
        self.sent |= {record.urn for record in records}
        self.parts.append(self.pool.submit(self.served.analyze, analyzer_resources(run, records)))

    def program_ran(self, run: harness.ProgramRun) -> None:
        self._send(run, list(run.registrations))

    def registrations_final(self, run: harness.ProgramRun) -> None:
        self._send(run, [record for record in run.registrations if record.urn not in self.sent])

    def report(self, run: harness.ProgramRun) -> analyzer.AnalysisReport:
        """The verdicts on every registration of ``run`` (what the hooks did not send is sent now)."""
        rest = [record for record in run.registrations if record.urn not in self.sent]
        if rest or not self.parts:
            self._send(run, rest)
        try:
            reports = [part.result() for part in self.parts]
        finally:
            self.close()
        order = {record.urn: index for index, record in enumerate(run.registrations)}
        violations = sorted((v for report in reports for v in report.violations), key=lambda v: order.get(v.urn, -1))
        first = reports[0]
        return analyzer.AnalysisReport(pack=first.pack, version=first.version, policies=first.policies,
                                       violations=tuple(violations),
                                       resources_analyzed=sum(r.resources_analyzed for r in reports))

    def close(self) -> None:
        for part in self.parts:
            part.cancel()
        self.pool.shutdown(wait=True)
        self.served.stop()


def check_policy(plan: Plan, policy_dir: Path | None = None,
                 served: analyzer.PolicyAnalyzer | None = None,
                 report: analyzer.AnalysisReport | None = None) -> analyzer.AnalysisReport:
    """Send every resource of the plan through the served policy pack (``served``: one launched earlier), or
    take ``report``, the pack's verdicts on the plan's registrations made while the plan was assembled; the
    caller fails on mandatory."""
    assert plan.run is not None, "a plan read from JSON has no registrations to analyze"
    if report is None:
        report = analyzer.analyze(analyzer_resources(plan.run), policy_dir=policy_dir, served=served)
    said = "\n".join(f"{v.urn} {v.message}" for v in report.violations)
    leaks = sorted(key for key, fake in plan.fake_secrets.items() if fake in said)
    if leaks:
        raise PlanError("the policy pack's messages repeat secret values of: " + ", ".join(leaks))
    return report


def _k8s_path(resource: Mapping[str, Any]) -> str | None:
    inputs = resource["inputs"]
    is_kubernetes = resource["type"].startswith("kubernetes:")
    is_chart = resource["type"].startswith("kubernetes:helm.sh/")
    if not is_kubernetes or not (resource["custom"] or is_chart):
        return None
    metadata = inputs.get("metadata") if isinstance(inputs.get("metadata"), dict) else {}
    namespace = inputs.get("namespace") or metadata.get("namespace") or "_cluster"
    kind = resource["type"].rsplit(":", 1)[-1]
    name = metadata.get("name") or inputs.get("name") or resource["name"]
    return f"k8s/{namespace}/{kind.lower()}-{name}.yaml"


def _host_scripts(plan: Plan) -> dict[str, str]:
    """Each host step's script as it is sent (the command's recorded stdin), secrets shown as placeholders."""
    scripts: dict[str, str] = {}
    for record in plan.run.registrations if plan.run is not None else ():
        stdin = record.wire_inputs.get("stdin") if record.type == "command:remote:Command" else None
        if isinstance(stdin, dict) and stdin.get(harness.SIG_KEY) == harness.SECRET_SIG:
            stdin = stdin.get("value")
        if isinstance(stdin, str):
            scripts[f"host/scripts/{record.name}.sh"] = reviewable(stdin)
    return scripts


def render_artifacts(plan: Plan, cache: Path | None = MANIFEST_CACHE) -> dict[str, str]:
    """What a reviewer reads: every host step's script, every file a component renders for a machine, every
    Kubernetes object."""
    manifests = ManifestCache(cache)
    artifacts: dict[str, str] = _host_scripts(plan)
    owners: dict[str, str] = {}  # Kubernetes object artifact -> the URN that writes it
    for resource in plan.resources:
        files = resource["inputs"].get("artifacts")
        if isinstance(files, dict):
            for relative, text in files.items():
                artifacts[str(relative)] = text if isinstance(text, str) else json.dumps(text, indent=2)
        path = _k8s_path(resource)
        if path is not None:
            if path in owners:
                raise PlanError(f"two resources would write the same Kubernetes object {path}:\n  {owners[path]}\n  "
                                f"{resource['urn']}")
            owners[path] = resource["urn"]
            body = {k: v for k, v in resource["inputs"].items() if k != "artifacts"}
            artifacts[path] = manifests.text(body)
    manifests.save()
    return dict(sorted(artifacts.items()))


_RESOURCES_MARK = "__blumeops_plan_resources__"


def indented_json(document: Mapping[str, Any], cache: ManifestCache) -> str:
    """The plan document as ``json.dumps(document, indent=2, sort_keys=True) + "\n"``, byte for byte: the whole
    text from the cache when the document is one it has seen (keyed by its compact JSON, which the C encoder
    writes in a fraction of the indenting encoder's time), else assembled from cached per-resource pieces."""
    key = "plan-" + hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    whole = cache.lookup(key)
    if whole is not None:
        return whole
    rest = {**document, "resources": _RESOURCES_MARK}
    head = json.dumps(rest, indent=2, sort_keys=True)
    resources = document["resources"]
    if resources:
        pieces = (cache.json_text(resource).replace("\n", "\n    ") for resource in resources)
        listed = "[\n    " + ",\n    ".join(pieces) + "\n  ]"
    else:
        listed = "[]"
    text = cache.keep(key, head.replace(json.dumps(_RESOURCES_MARK), listed, 1) + "\n")
    cache.save()
    return text


class ManifestCache:
    """YAML text of Kubernetes objects (and indented JSON of plan resources, and whole plans) by the sha256 of
    their compact, sorted JSON, kept across runs in ``build/manifest-cache.sqlite``: PyYAML's representer and the
    indenting JSON encoder are pure Python and rendered CRDs are large. SQLite (the standard library's) because a
    warm run looks up a few hundred entries by key, and a cold one writes them in one transaction: one JSON file
    of every entry cost a full decode per run, a file per entry half a millisecond per write."""

    LIMIT = 4000  # entries kept: past that, a run that wrote new ones removes the oldest
    PLANS = 12  # whole plan texts kept (megabytes each): the plans of the targets one works on

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, str] = {}  # read or made by this run
        self.new: dict[str, str] = {}  # made by this run, written by save()
        self._db: sqlite3.Connection | None = None

    def _connection(self, create: bool = False) -> sqlite3.Connection | None:
        """The cache's database; None when it does not exist yet (a lookup never creates it) or cannot be read."""
        if self._db is None and self.path is not None and (create or self.path.exists()):
            try:
                self._db = sqlite3.connect(self.path, timeout=30)
                self._db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, text TEXT NOT NULL)")
            except sqlite3.Error:
                if create:
                    raise
                self._db = None
        return self._db

    def lookup(self, key: str) -> str | None:
        found = self.entries.get(key)
        if found is None:
            db = self._connection()
            try:
                row = db.execute("SELECT text FROM entries WHERE key = ?", (key,)).fetchone() if db else None
            except sqlite3.Error:
                row = None
            if row is None:
                return None
            found = self.entries[key] = str(row[0])
        return found

    def keep(self, key: str, text: str) -> str:
        self.entries[key] = self.new[key] = text
        return text

    def text(self, body: Mapping[str, Any]) -> str:
        key = "yaml-" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        found = self.lookup(key)
        if found is None:
            found = self.keep(key, yaml.dump(body, Dumper=DUMPER, sort_keys=True, default_flow_style=False))
        return found

    def json_text(self, value: Any) -> str:
        key = "json-" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
        found = self.lookup(key)
        if found is None:
            found = self.keep(key, json.dumps(value, indent=2, sort_keys=True))
        return found

    def save(self) -> None:
        if self.path is None or not self.new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connection(create=True)
        assert db is not None
        with db:  # one transaction; a concurrent run waits for the lock (timeout above)
            # a key's row is replaced, so its rowid is new: the oldest rows are the least recently written
            db.executemany("INSERT OR REPLACE INTO entries (key, text) VALUES (?, ?)", self.new.items())
            for pattern, limit in (("plan-%", self.PLANS), ("%", self.LIMIT)):
                db.execute(
                    "DELETE FROM entries WHERE key LIKE ? AND rowid NOT IN "
                    "(SELECT rowid FROM entries WHERE key LIKE ? ORDER BY rowid DESC LIMIT ?)",
                    (pattern, pattern, limit))
        self.new = {}


def write_artifacts(plan: Plan, directory: Path) -> None:
    """``directory`` holds exactly plan.json and the artifacts afterwards: a file whose text is already right is
    left as it is (a warm plan rewrites only what changed), one no artifact names any more is removed."""
    root = directory.resolve()
    wanted = {"plan.json": plan.text(), **plan.artifacts}
    for relative in wanted:
        if root not in (root / relative).resolve().parents:
            raise PlanError(f"artifact path {relative!r} escapes {directory}")
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        directory.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    present = {str(path.relative_to(directory)): path for path in directory.rglob("*") if not path.is_dir()}
    for relative, path in present.items():
        if relative not in wanted:
            path.unlink()
    for relative, text in wanted.items():
        target = directory / relative
        if relative in present and not present[relative].is_symlink():
            try:
                if target.read_text() == text:
                    continue
            except (OSError, UnicodeDecodeError):
                pass
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for path in sorted((p for p in directory.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(path.iterdir()):
            path.rmdir()


def _chart_label(chart: Mapping[str, Any]) -> str:
    inputs = chart["inputs"]
    return f"{str(inputs.get('chart', '')).rstrip('/').rpartition('/')[2]} {inputs.get('version', '')}".strip()


def chart_origins(plan: Plan) -> dict[str, str]:
    """URN of each rendered chart object -> "chart <name> <version>" (from its Chart's inputs)."""
    by_urn = {r["urn"]: r for r in plan.resources}
    origins: dict[str, str] = {}
    for resource in plan.resources:
        parent = by_urn.get(resource["parent"]) if resource["parent"] else None
        if parent is not None and parent["type"] == charts_render.CHART_TYPE and resource["custom"]:
            origins[resource["urn"]] = f"chart {_chart_label(parent)}"
    return origins


def tree_lines(plan: Plan, expand_charts: bool = False) -> list[str]:
    """The resources per phase as an indented tree, with counts. A Chart's rendered objects are folded into
    one line per type with a count, unless ``expand_charts``; a Chart that could not be rendered says why."""
    resources = plan.resources
    children: dict[str | None, list[dict[str, Any]]] = {}
    for resource in resources:
        children.setdefault(resource["parent"], []).append(resource)
    lines: list[str] = []

    def walk(resource: dict[str, Any], depth: int) -> None:
        marks = " [protected]" if resource["options"]["protect"] else ""
        if resource["options"].get("import"):
            marks += f" [import {resource['options']['import']}]"
        lines.append(f"{'  ' * depth}{resource['type']}  {resource['name']}{marks}")
        below = children.get(resource["urn"], [])
        if resource["type"] == charts_render.CHART_TYPE:
            if resource["urn"] in plan.unrendered:
                lines.append(f"{'  ' * (depth + 1)}(not rendered: chart {_chart_label(resource)}, see below)")
            if not expand_charts:
                counts: dict[str, int] = {}
                for child in below:
                    counts[child["type"]] = counts.get(child["type"], 0) + 1
                lines.extend(f"{'  ' * (depth + 1)}{token}  x{count}" for token, count in counts.items())
                return
        for child in below:
            walk(child, depth + 1)

    for phase in plan.document["phases"]:
        members = [r for r in resources if r["phase"] == phase["id"]]
        if not phase["included"]:
            continue
        roots = [r for r in members if r["type"] == PHASE_TYPE]
        lines.append(f"P{phase['id']} {phase['title']} ({len(members) - len(roots)} resources)")
        for root in roots:
            for child in children.get(root["urn"], []):
                walk(child, 1)
    outside = [r for r in resources if r["phase"] is None]
    if outside:
        lines.append(f"outside any phase ({len(outside)} resources)")
        for resource in outside:
            walk(resource, 1)
    return lines
