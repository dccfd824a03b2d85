"""Health declarations: what proves a component healthy, registered with the component itself.

A component puts ``{HEALTH_KEY: [check.declaration(), ...]}`` into the props it registers, so the plan JSON
carries every check of exactly what is deployed (``ops check`` and ``ops runbook`` read them there, the
periodic ``HealthCheckAgent`` runs the host-side ones on the host). A renamed label or a moved textfile
changes its check in the same place.

Two sides:

- ``host``: runs on the host, all of them in one SSH session (``ops check``) or in the periodic agent:
  ``LaunchdJob`` (``launchctl print <domain>/<label>``: loaded, last exit 0), ``Textfile`` (exists, younger
  than ``max_age_seconds``), ``HttpEndpoint(side="host")`` (``curl`` on the host, e.g. ``localhost``).
- ``operator``: runs where ``ops check`` runs, over the tailnet: ``HttpEndpoint`` and ``PostgresEndpoint``.

URLs and host names of the operator side may contain ``{tailnet}`` (the tailnet's DNS name, which
components do not know: ``ops check`` fills it in from the stack's ``blumeops:tailnet.name``).

A component may also declare ``Precondition``s under ``PRECONDITIONS_KEY``: manual set-up a step of it
checks and stops on (Docker Desktop, the zot build), which ``ops runbook`` lists before the steps; and, under
``RESTORED_KEY``, the checks that prove what its delete restores (a retired legacy service running again, its
name answering), which the runbook of a rollback lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.host.connection import Host

HEALTH_KEY = "healthChecks"
PRECONDITIONS_KEY = "preconditions"
RESTORED_KEY = "restoredChecks"
HOST_SIDE = "host"
OPERATOR_SIDE = "operator"
TAILNET = "{tailnet}"
DEFAULT_TIMEOUT = 3
# A check's name is a metric label value and a table cell: printable, no quotes or backslashes.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/{}()<>=+@-]*$")
TLS_MODES = ("public", "cluster", "none")


class HealthDeclarationError(ValueError):
    """A declaration in a plan that this version cannot read (names the resource and the field)."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Where the host-side checks run: the host the component's steps reach, with its pinned key."""

    address: str
    port: int
    user: str
    host_key: str
    bash: str

    @classmethod
    def of(cls, host: Host) -> SshTarget:
        return cls(host.address, host.port, host.user, host.host_key, host.tools.bash)

    def declaration(self) -> dict[str, Any]:
        return {"address": self.address, "port": self.port, "user": self.user, "hostKey": self.host_key,
                "bash": self.bash}


def _check_common(name: str, timeout: int) -> None:
    if not _NAME.match(name):
        raise ValueError(f"health check name {name!r}: use letters, digits, spaces and ._:/{{}}()<>=+@-")
    if not 1 <= timeout <= 30:
        raise ValueError(f"health check {name}: timeout {timeout}s must be between 1 and 30 seconds")


@dataclass(frozen=True, slots=True)
class LaunchdJob:
    """A LaunchAgent is loaded in ``domain`` and its last exit status is 0 (or it never exited)."""

    host: SshTarget
    label: str
    domain: str  # gui/501
    launchctl: str
    err_log: str
    timeout: int = DEFAULT_TIMEOUT

    kind = "launchd"
    side = HOST_SIDE

    def __post_init__(self) -> None:
        _check_common(self.name, self.timeout)

    @property
    def name(self) -> str:
        return f"launchd {self.label}"

    @property
    def target(self) -> str:
        return f"{self.domain}/{self.label}"

    @property
    def fix(self) -> str:
        return (f"read {self.err_log}; `launchctl kickstart -k {self.domain}/{self.label}` restarts it, "
                f"`make up` loads it again")

    def declaration(self) -> dict[str, Any]:
        return {"kind": self.kind, "side": self.side, "name": self.name, "label": self.label,
                "domain": self.domain, "launchctl": self.launchctl, "errLog": self.err_log,
                "timeoutSeconds": self.timeout, "fix": self.fix, "host": self.host.declaration()}


@dataclass(frozen=True, slots=True)
class Textfile:
    """A metrics textfile exists and is younger than ``max_age_seconds`` (three intervals of its writer)."""

    host: SshTarget
    path: str
    max_age_seconds: int
    writer: str  # the label of the agent that writes it
    timeout: int = DEFAULT_TIMEOUT

    kind = "textfile"
    side = HOST_SIDE

    def __post_init__(self) -> None:
        _check_common(self.name, self.timeout)
        if self.max_age_seconds <= 0:
            raise ValueError(f"{self.name}: max age {self.max_age_seconds}s must be positive")

    @property
    def name(self) -> str:
        return f"textfile {self.path.rsplit('/', 1)[-1]}"

    @property
    def target(self) -> str:
        return self.path

    @property
    def fix(self) -> str:
        return f"its writer {self.writer} is not running or failing: check `launchd {self.writer}` above"

    def declaration(self) -> dict[str, Any]:
        return {"kind": self.kind, "side": self.side, "name": self.name, "path": self.path,
                "maxAgeSeconds": self.max_age_seconds, "writer": self.writer, "timeoutSeconds": self.timeout,
                "fix": self.fix, "host": self.host.declaration()}


@dataclass(frozen=True, slots=True)
class HttpEndpoint:
    """``GET url`` answers with one of ``expect`` (a status code). ``side="host"`` runs ``curl`` on the host
    (for ``localhost`` URLs: the tailnet does not hairpin on indri); ``tls="cluster"`` verifies against the
    cluster's own CA (``ops check --cluster-ca``), ``public`` against the system's trust store."""

    name: str
    url: str
    fix: str
    expect: tuple[int, ...] = (200,)
    tls: str = "public"
    side: str = OPERATOR_SIDE
    host: SshTarget | None = None
    curl: str | None = None
    timeout: int = DEFAULT_TIMEOUT

    kind = "http"

    @property
    def target(self) -> str:
        return self.url

    def __post_init__(self) -> None:
        _check_common(self.name, self.timeout)
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"{self.name}: {self.url!r} is not an http(s) URL")
        if self.tls not in TLS_MODES:
            raise ValueError(f"{self.name}: tls {self.tls!r} is not one of {TLS_MODES}")
        if self.side == HOST_SIDE and (self.host is None or self.curl is None):
            raise ValueError(f"{self.name}: a host-side HTTP check needs the host and its curl")
        if self.side not in (HOST_SIDE, OPERATOR_SIDE):
            raise ValueError(f"{self.name}: side {self.side!r} is not host or operator")
        if not self.expect or any(not 100 <= code <= 599 for code in self.expect):
            raise ValueError(f"{self.name}: expect {self.expect} must be HTTP status codes")

    def declaration(self) -> dict[str, Any]:
        document: dict[str, Any] = {"kind": self.kind, "side": self.side, "name": self.name, "url": self.url,
                                    "expect": list(self.expect), "tls": self.tls, "timeoutSeconds": self.timeout,
                                    "fix": self.fix}
        if self.host is not None:
            document["host"] = self.host.declaration()
            document["curl"] = self.curl
        return document


@dataclass(frozen=True, slots=True)
class PostgresEndpoint:
    """A TCP connect to ``address:port`` and PostgreSQL's answer to an SSLRequest (``S`` or ``N``): the
    server speaks the protocol, without credentials (what ``pg_isready`` proves)."""

    name: str
    address: str  # may contain {tailnet}
    port: int
    fix: str
    timeout: int = DEFAULT_TIMEOUT

    kind = "postgres"
    side = OPERATOR_SIDE

    def __post_init__(self) -> None:
        _check_common(self.name, self.timeout)

    @property
    def target(self) -> str:
        return f"{self.address}:{self.port}"

    def declaration(self) -> dict[str, Any]:
        return {"kind": self.kind, "side": self.side, "name": self.name, "address": self.address,
                "port": self.port, "timeoutSeconds": self.timeout, "fix": self.fix}


HealthCheck = LaunchdJob | Textfile | HttpEndpoint | PostgresEndpoint


@dataclass(frozen=True, slots=True)
class Precondition:
    """Manual set-up the step ``checked_by`` verifies and stops on, with what to do."""

    text: str
    checked_by: str  # the step's resource name

    def declaration(self) -> dict[str, str]:
        return {"text": self.text, "checkedBy": self.checked_by}


def ingress(name: str, hostname: str, path: str, fix: str, expect: tuple[int, ...] = (200,)) -> HttpEndpoint:
    """The check of a Tailscale Ingress: ``https://<hostname>.<tailnet><path>`` (a public Let's Encrypt
    certificate issued to the proxy)."""
    return HttpEndpoint(name=name, url=f"https://{hostname}.{TAILNET}{path}", fix=fix, expect=expect)


def props(checks: Iterable[HealthCheck], preconditions: Iterable[Precondition] = (),
          restored: Iterable[HealthCheck] = ()) -> dict[str, Any]:
    """The props a component adds to what it registers (``restored``: what proves its delete's work)."""
    document: dict[str, Any] = {HEALTH_KEY: [check.declaration() for check in checks]}
    listed = [precondition.declaration() for precondition in preconditions]
    if listed:
        document[PRECONDITIONS_KEY] = listed
    restores = [check.declaration() for check in restored]
    if restores:
        document[RESTORED_KEY] = restores
    return document


def _field(declaration: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = declaration.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        wanted = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise HealthDeclarationError(f"{where}: field {key!r} must be {wanted}, found {value!r}")
    return value


def _ssh(declaration: Mapping[str, Any], where: str) -> SshTarget:
    host = declaration.get("host")
    if not isinstance(host, Mapping):
        raise HealthDeclarationError(f"{where}: a host-side check needs its host")
    return SshTarget(
        address=_field(host, "address", str, where), port=int(_field(host, "port", (int, float), where)),
        user=_field(host, "user", str, where), host_key=_field(host, "hostKey", str, where),
        bash=_field(host, "bash", str, where),
    )


def from_declaration(declaration: Any, where: str) -> HealthCheck:
    """A declaration read back from a plan; ``where`` names it in errors (the resource's URN)."""
    if not isinstance(declaration, Mapping):
        raise HealthDeclarationError(f"{where}: a health check must be an object, found {declaration!r}")
    kind = declaration.get("kind")
    timeout = int(declaration.get("timeoutSeconds", DEFAULT_TIMEOUT))
    try:
        if kind == LaunchdJob.kind:
            return LaunchdJob(_ssh(declaration, where), _field(declaration, "label", str, where),
                              _field(declaration, "domain", str, where), _field(declaration, "launchctl", str, where),
                              _field(declaration, "errLog", str, where), timeout)
        if kind == Textfile.kind:
            return Textfile(_ssh(declaration, where), _field(declaration, "path", str, where),
                            int(_field(declaration, "maxAgeSeconds", (int, float), where)),
                            _field(declaration, "writer", str, where), timeout)
        if kind == HttpEndpoint.kind:
            side = _field(declaration, "side", str, where)
            expect = tuple(int(code) for code in _field(declaration, "expect", list, where))
            return HttpEndpoint(
                name=_field(declaration, "name", str, where), url=_field(declaration, "url", str, where),
                fix=_field(declaration, "fix", str, where), expect=expect,
                tls=_field(declaration, "tls", str, where), side=side,
                host=_ssh(declaration, where) if side == HOST_SIDE else None,
                curl=_field(declaration, "curl", str, where) if side == HOST_SIDE else None, timeout=timeout,
            )
        if kind == PostgresEndpoint.kind:
            return PostgresEndpoint(_field(declaration, "name", str, where),
                                    _field(declaration, "address", str, where),
                                    int(_field(declaration, "port", (int, float), where)),
                                    _field(declaration, "fix", str, where), timeout)
    except ValueError as err:
        if isinstance(err, HealthDeclarationError):
            raise
        raise HealthDeclarationError(f"{where}: {err}") from None
    raise HealthDeclarationError(f"{where}: unknown health check kind {kind!r} (this ops knows launchd, textfile, "
                                 "http, postgres: update the checkout that runs it)")
