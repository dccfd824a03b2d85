"""``python -m ops check``: probe what the deployed phases promise, from the checks their components declared.

The list is not kept by hand: every component registers its checks (``components/health.py``) under
``healthChecks`` in its props, so the plan of the stack's target carries exactly the checks of what is
deployed. Operator-side checks (HTTPS over the tailnet, PostgreSQL's startup answer) run here, each in its
own thread; host-side checks (launchd jobs, textfiles, ``localhost`` URLs) run on the host in ONE SSH
session, in parallel there, each under its own timeout. The whole run never takes longer than the slowest
timeout: what has not answered by then is FAILED ("timed out").
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from components import health
from components.host.check_agent import host_probe_step
from components.host.script import STEP_SHELL
from ops import console
from ops import diff as plan_diff
from ops import plan as offline_plan
from ops.stack import StackConfig, load_stack
from phases import settings as stack_settings

OK, FAILED, SKIPPED = "OK", "FAILED", "SKIPPED"
# The share of a host probe's timeout kept for opening the SSH session (the remote watchdog gets the rest),
# so a host probe that hangs is reported within its declared timeout like any other.
SSH_SETUP_SECONDS = 1
SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's SSLRequest: length 8, code 1234.5679


class CheckError(Exception):
    """The checks cannot be run: a malformed declaration, a bad argument."""


@dataclass(frozen=True, slots=True)
class Probe:
    """A declared check with the resource that declared it."""

    check: health.HealthCheck
    urn: str
    component: str
    phase: str | None


@dataclass(slots=True)
class Result:
    probe: Probe
    status: str
    detail: str
    seconds: float = 0.0
    cause_fix: str | None = None  # when the probe could not run at all (no SSH session): fix that instead

    @property
    def fix(self) -> str:
        if self.status != FAILED:
            return ""
        return self.cause_fix if self.cause_fix is not None else self.probe.check.fix

    def document(self) -> dict[str, Any]:
        check = self.probe.check
        return {"name": check.name, "kind": check.kind, "side": check.side, "target": check.target,
                "phase": self.probe.phase,
                "component": self.probe.component, "urn": self.probe.urn, "status": self.status,
                "detail": self.detail, "fix": self.fix, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True, slots=True)
class Options:
    tailnet: str
    cluster_ca: str | None = None
    skip: frozenset[str] = frozenset()  # sides not probed: "host", "operator"
    ssh_options: tuple[str, ...] = ()  # extra `-o KEY=VALUE`
    identity: str | None = None
    ssh: str = "ssh"
    # Trust store of public-TLS checks: the system's unless given (tests hand a private CA)
    public_ca: str | None = None


def probes_from_plan(document: Mapping[str, Any]) -> list[Probe]:
    """Every declared check of the plan, in registration order; a malformed one is an error naming it."""
    probes: list[Probe] = []
    for resource in document.get("resources", []):
        declared = resource.get("inputs", {}).get(health.HEALTH_KEY)
        if declared is None:
            continue
        if not isinstance(declared, list):
            raise CheckError(f"{resource['urn']}: {health.HEALTH_KEY} must be a list")
        for index, item in enumerate(declared):
            where = f"{resource['urn']} {health.HEALTH_KEY}[{index}]"
            try:
                check = health.from_declaration(item, where)
            except health.HealthDeclarationError as err:
                raise CheckError(str(err)) from None
            probes.append(Probe(check, resource["urn"], resource.get("name", ""), resource.get("phase")))
    names = [probe.check.name for probe in probes]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise CheckError(f"checks declared twice (two components claim one name): {', '.join(twice)}")
    return probes


def resolve(check: health.HealthCheck, tailnet: str) -> health.HealthCheck:
    """``{tailnet}`` in a URL or address replaced by the tailnet's DNS name."""
    if isinstance(check, health.HttpEndpoint):
        return dataclasses.replace(check, url=check.url.replace(health.TAILNET, tailnet))
    if isinstance(check, health.PostgresEndpoint):
        return dataclasses.replace(check, address=check.address.replace(health.TAILNET, tailnet))
    return check


# ---- operator side -------------------------------------------------------------------------------------

def _tls_context(check: health.HttpEndpoint, options: Options) -> tuple[ssl.SSLContext, str]:
    if check.tls == "cluster":
        if options.cluster_ca:
            return ssl.create_default_context(cafile=options.cluster_ca), ""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context, " (certificate not verified: pass --cluster-ca with the cluster's CA, ~/.minikube/ca.crt)"
    return ssl.create_default_context(cafile=options.public_ca), ""


def _network_error(err: BaseException, target: str, timeout: int) -> str:
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS certificate of {target} not trusted: {err.verify_message}"
    if isinstance(err, ssl.SSLError):
        return f"TLS handshake with {target} failed: {err.reason or err}"
    if isinstance(err, socket.gaierror):
        return f"cannot resolve {target}: {err.strerror} (is this machine on the tailnet?)"
    if isinstance(err, (TimeoutError, socket.timeout)):
        return f"no answer from {target} within {timeout}s"
    if isinstance(err, ConnectionRefusedError):
        return f"{target} refused the connection"
    return f"{target}: {err}"


def probe_http(check: health.HttpEndpoint, options: Options) -> tuple[str, str]:
    parts = urlsplit(check.url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    note = ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context, note = _tls_context(check, options)
        connection = http.client.HTTPSConnection(host, parts.port, timeout=check.timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=check.timeout)
    try:
        connection.request("GET", path, headers={"User-Agent": "blumeops-check"})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as err:
        return FAILED, _network_error(err, check.url, check.timeout)
    finally:
        connection.close()
    if status in check.expect:
        return OK, f"HTTP {status}{note}"
    return FAILED, f"HTTP {status} from {check.url} (expected {', '.join(str(c) for c in check.expect)})"


def probe_postgres(check: health.PostgresEndpoint) -> tuple[str, str]:
    target = f"{check.address}:{check.port}"
    try:
        with socket.create_connection((check.address, check.port), timeout=check.timeout) as sock:
            sock.sendall(SSL_REQUEST)
            answer = sock.recv(1)
    except OSError as err:
        return FAILED, _network_error(err, target, check.timeout)
    if answer in (b"S", b"N"):
        tls = "offers TLS" if answer == b"S" else "without TLS"
        return OK, f"PostgreSQL answered the startup request ({tls})"
    if not answer:
        return FAILED, f"{target} closed the connection without a PostgreSQL answer"
    return FAILED, f"{target} answered {answer!r}, not PostgreSQL's S or N"


# ---- host side -----------------------------------------------------------------------------------------

REMOTE_COMMAND = f"{STEP_SHELL} -euo pipefail -s -- check"  # macOS's own bash reads the probes from stdin


def _known_hosts(target: health.SshTarget, directory: Path) -> Path:
    path = directory / "known_hosts"
    host = target.address if target.port == 22 else f"[{target.address}]:{target.port}"
    path.write_text(f"{host} {target.host_key}\n")
    return path


def ssh_command(target: health.SshTarget, options: Options, known_hosts: Path, connect_timeout: int) -> list[str]:
    """One SSH session to ``target``: batch mode, its host key pinned to the declared one."""
    command = [options.ssh, "-T", "-p", str(target.port), "-o", "BatchMode=yes",
               "-o", f"ConnectTimeout={connect_timeout}", "-o", "StrictHostKeyChecking=yes",
               "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    if options.identity:
        command += ["-i", options.identity, "-o", "IdentitiesOnly=yes"]
    for option in options.ssh_options:
        command += ["-o", option]
    # The remote command is a constant, as every host step's is: sshd runs it through the login shell, so
    # nothing from a setting may be in it (the probes read their tools' paths from the script on stdin). `--`
    # ends ssh's options: the destination is never read as one.
    command += ["--", f"{target.user}@{target.address}", REMOTE_COMMAND]
    return command


def run_host_batch(target: health.SshTarget, probes: Sequence[Probe], options: Options,
                   deadline: float) -> list[Result]:
    """Every probe of one host in one SSH session; what has not answered by ``deadline`` is FAILED."""
    started = time.monotonic()
    remote = [dataclasses.replace(p.check, timeout=max(1, p.check.timeout - SSH_SETUP_SECONDS)) for p in probes]
    script = host_probe_step("ops-check", remote).render()
    budget = max(0.5, deadline - started)
    with tempfile.TemporaryDirectory(prefix="blumeops-check-") as directory:
        command = ssh_command(target, options, _known_hosts(target, Path(directory)), max(1, int(budget)))
        try:
            done = subprocess.run(command, input=script, capture_output=True, text=True, timeout=budget, check=False)
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - started
            return [Result(p, FAILED, f"timed out after {budget:.0f}s (the SSH session to {target.address} "
                                      "did not finish)", elapsed,
                           f"`ssh -p {target.port} {target.user}@{target.address} true` must answer quickly")
                    for p in probes]
    elapsed = time.monotonic() - started
    answers: dict[int, tuple[str, str]] = {}
    for line in done.stdout.splitlines():
        fields = line.split("\t", 2)
        if len(fields) == 3 and fields[0].isdigit() and fields[1] in (OK, FAILED):
            answers[int(fields[0])] = (fields[1], fields[2])
    if not answers:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        fix = (f"`ssh -p {target.port} {target.user}@{target.address} true` must work without a prompt, with "
               "the host key the stack pins (blumeops:indri.hostKey)")
        return [Result(p, FAILED, f"SSH to {target.address}:{target.port} failed: {why}", elapsed, fix)
                for p in probes]
    results = []
    for index, probe in enumerate(probes, start=1):
        status, detail = answers.get(index, (FAILED, "no answer in the SSH session's output"))
        results.append(Result(probe, status, detail, elapsed))
    return results


# ---- running -------------------------------------------------------------------------------------------

def run_checks(probes: Sequence[Probe], options: Options) -> list[Result]:
    """Run every probe concurrently (host probes grouped per host into one SSH session); return in order."""
    started = time.monotonic()
    resolved = [dataclasses.replace(p, check=resolve(p.check, options.tailnet)) for p in probes]
    results: dict[int, Result] = {}
    lock = threading.Lock()
    running = [p for p in resolved if p.check.side not in options.skip]
    slowest = max((p.check.timeout for p in running), default=0)
    deadline = started + slowest
    for index, probe in enumerate(resolved):
        if probe.check.side in options.skip:
            results[index] = Result(probe, SKIPPED, f"{probe.check.side}-side checks skipped (--skip)")

    def record(pairs: Sequence[tuple[int, Result]]) -> None:
        with lock:
            for index, result in pairs:
                results.setdefault(index, result)

    def operator_probe(index: int, probe: Probe) -> None:
        began = time.monotonic()
        check = probe.check
        try:
            if isinstance(check, health.HttpEndpoint):
                status, detail = probe_http(check, options)
            elif isinstance(check, health.PostgresEndpoint):
                status, detail = probe_postgres(check)
            else:
                status, detail = FAILED, f"{check.kind} is not an operator-side check"
        except Exception as err:  # a probe must report, never take the run down
            status, detail = FAILED, f"probe error: {err!r}"
        record([(index, Result(probe, status, detail, time.monotonic() - began))])

    threads: list[threading.Thread] = []
    hosts: dict[health.SshTarget, list[int]] = {}
    for index, probe in enumerate(resolved):
        if probe.check.side in options.skip:
            continue
        if probe.check.side == health.HOST_SIDE:
            hosts.setdefault(_ssh_target(probe.check), []).append(index)
            continue
        threads.append(threading.Thread(target=operator_probe, args=(index, probe), daemon=True))

    def host_batch(target: health.SshTarget, indexes: list[int]) -> None:
        batch = run_host_batch(target, [resolved[i] for i in indexes], options, deadline)
        record(list(zip(indexes, batch, strict=True)))

    for target, indexes in hosts.items():
        threads.append(threading.Thread(target=host_batch, args=(target, indexes), daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:  # daemon threads: one stuck in a DNS lookup cannot hold the process past this
        thread.join(max(0.0, deadline + 0.2 - time.monotonic()))
    with lock:
        for index, probe in enumerate(resolved):
            if index not in results:
                results[index] = Result(probe, FAILED, f"timed out after {probe.check.timeout}s",
                                        time.monotonic() - started)
        return [results[index] for index in range(len(resolved))]


def _ssh_target(check: health.HealthCheck) -> health.SshTarget:
    target = getattr(check, "host", None)
    if not isinstance(target, health.SshTarget):
        raise CheckError(f"{check.name}: a host-side check without its host")
    return target


# ---- output --------------------------------------------------------------------------------------------

def table_lines(results: Sequence[Result], out: TextIO) -> list[str]:
    rows = [[r.status, r.probe.check.name, r.probe.phase or "-", r.detail, r.fix] for r in results]
    lines = console.table(["status", "check", "phase", "detail", "fix"], rows)
    styles = {OK: "green", FAILED: "red", SKIPPED: "yellow"}
    painted = lines[:2]
    for line, result in zip(lines[2:], results, strict=True):
        status = result.status
        painted.append(console.paint(status, styles[status], out) + line[len(status):])
    return painted


def summary(results: Sequence[Result], seconds: float) -> str:
    counts = {status: sum(1 for r in results if r.status == status) for status in (OK, FAILED, SKIPPED)}
    return (f"{counts[OK]} OK, {counts[FAILED]} FAILED, {counts[SKIPPED]} SKIPPED "
            f"({len(results)} checks in {seconds:.1f}s)")


def tailnet_name(stack: StackConfig, document: Mapping[str, Any]) -> str:
    """The tailnet's DNS name: the stack's ``blumeops:tailnet.name`` when it sets one, else the tailnet of the
    endpoints the plan exports (``https://<name>.<tailnet>``: what the program built from that setting)."""
    key = f"{stack_settings.NAMESPACE}:tailnet.name"
    if key in stack.config:
        return stack.config[key]
    endpoints = document.get("exports", {}).get("endpoints", {})
    hosts = [urlsplit(url).hostname or "" for url in endpoints.values() if isinstance(url, str)]
    found = {host.split(".", 1)[1] for host in hosts if host.endswith(".ts.net")}
    if len(found) == 1:
        return found.pop()
    raise CheckError(f"cannot tell the tailnet's name (the stack does not set {key} and the plan's endpoints "
                     f"name {sorted(found) or 'none'}): pass --tailnet <name>.ts.net")


def load_document(args: argparse.Namespace) -> tuple[dict[str, Any], StackConfig]:
    """The plan to check: ``--plan FILE`` or the offline plan of the stack's target (run in-process)."""
    stack = load_stack(args.stack)
    if args.plan:
        try:
            return plan_diff.load_plan(Path(args.plan)), stack
        except plan_diff.DiffError as err:
            raise CheckError(f"--plan: {err}") from None
    return offline_plan.build_plan(load_stack(args.stack, args.phase)).document, stack


def command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    document, stack = load_document(args)
    probes = probes_from_plan(document)
    on_tailnet = any(health.TAILNET in json.dumps(probe.check.declaration()) for probe in probes)
    options = Options(
        tailnet=args.tailnet or (tailnet_name(stack, document) if on_tailnet else ""),
        cluster_ca=args.cluster_ca,
        skip=frozenset(args.skip or ()),
        ssh_options=tuple(args.ssh_option or ()),
        identity=args.identity,
    )
    started = time.monotonic()
    results = run_checks(probes, options)
    seconds = time.monotonic() - started
    failed = any(r.status == FAILED for r in results)
    if args.json:
        json.dump({"stack": document.get("stack"), "targetPhase": document.get("targetPhase"),
                   "ok": not failed, "seconds": round(seconds, 3),
                   "results": [r.document() for r in results]}, out, indent=2)
        out.write("\n")
    else:
        for line in table_lines(results, out):
            print(line, file=out)
        print(f"stack {document.get('stack')}, target phase {document.get('targetPhase')}: "
              + summary(results, seconds), file=out)
    return 1 if failed else 0


Command = Callable[[argparse.Namespace], int]


def reporting(run: Command, *errors: type[Exception]) -> Command:
    """``run``, with ``errors`` printed as ``error: ...`` and exit 1 (as ``python -m ops`` does for its own)."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except errors as err:
            print(console.paint("error: ", "red", sys.stderr) + str(err), file=sys.stderr)
            return 1

    return wrapped


def add_parser(sub: Any, run: Command) -> None:
    check = sub.add_parser(
        "check",
        help="probe what the deployed phases promise (checks declared by the components); exit 1 on a failure",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m ops check\n  python -m ops check --json --skip host\n"
               "  python -m ops check --plan build/plan/indri/plan.json --cluster-ca ~/.minikube-indri/ca.crt",
    )
    check.add_argument("--stack", default="indri", help="the stack whose target phase is checked (default indri)")
    check.add_argument("--phase", choices=stack_settings.PHASE_IDS,
                       help="check the plan of this target instead of the stack's")
    check.add_argument("--plan", help="read this plan JSON (python -m ops plan --out) instead of running the plan")
    check.add_argument("--tailnet", help="the tailnet's DNS name (default: the stack's blumeops:tailnet.name)")
    check.add_argument("--cluster-ca", help="CA file of the cluster's API server (verifies the k8s check's TLS)")
    check.add_argument("--skip", action="append", choices=(health.HOST_SIDE, health.OPERATOR_SIDE),
                       help="do not run this side's checks (reported SKIPPED); repeatable")
    check.add_argument("--ssh-option", action="append", metavar="KEY=VALUE",
                       help="an extra ssh -o option for the host session; repeatable")
    check.add_argument("--identity", help="SSH private key file for the host session (default: ssh's own)")
    check.add_argument("--json", action="store_true", help="print the results as JSON")
    check.set_defaults(func=reporting(run, CheckError))

