"""LegacyDatabaseImport: a database of the host's legacy PostgreSQL moves into the cluster's PostgreSQL.

Why a host step on the Mac and not a Job in the cluster: the legacy server (Homebrew ``postgresql@18``) listens
on the host's localhost only, and its ``pg_dump`` is the one that matches it; the dump stays on the host as a
dated file (under the backups' eyes, and for the operator to keep); and the host already reaches the cluster's
PostgreSQL through its tailnet name (ACL grant ``tag:homelab -> tag:k8s:5432``). A Job would need the legacy
server to listen on Docker's network (``host.minikube.internal``) and its ``pg_hba`` opened to it, for a
one-off copy. CloudNativePG's ``bootstrap.initdb.import`` runs only when a cluster is created: too late here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

from components.host.connection import Host
from components.host.launch_agent import path_problem
from components.host.script import HostStep

IMPORT_TYPE = "blumeops:host:LegacyDatabaseImport"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class PostgresEndpoint:
    """Where one database is reached: ``host:port``, database ``database``, as role ``user``."""

    host: str
    port: int
    user: str
    database: str

    def problems(self, what: str) -> list[str]:
        problems = []
        if not _HOSTNAME.match(self.host):
            problems.append(f"{what} host {self.host!r} is not a hostname")
        if not 1 <= self.port <= 65535:
            problems.append(f"{what} port {self.port} is not a TCP port")
        for key, value in (("user", self.user), ("database", self.database)):
            if not _IDENTIFIER.match(value):
                problems.append(f"{what} {key} {value!r} is not a plain PostgreSQL name (lower case, digits, _)")
        return problems

    def __str__(self) -> str:
        return f"{self.database} on {self.host}:{self.port} as {self.user}"


@dataclass(frozen=True, slots=True)
class LegacyDatabaseImportArgs:
    host: Host
    pg_dump: str  # the legacy server's client tools (absolute paths on the host)
    pg_restore: str
    psql: str
    source: PostgresEndpoint  # the legacy database (localhost:5432 on the host)
    target: PostgresEndpoint  # the cluster's database, through its tailnet name, as a superuser
    owner: str  # the role that owns every object of ``schema`` afterwards (the application's)
    dump_dir: str  # dated dumps (0600, directory 0700) and the marker of a verified import
    target_password: pulumi.Output[str]
    source_password: pulumi.Output[str] | None = None  # None: the legacy server trusts local connections
    schema: str = "public"
    mode: str = "import"  # "import" (phase 3) or "final-sync" (phase 4, after the legacy application stopped)

    def __post_init__(self) -> None:
        problems = [*self.source.problems("source"), *self.target.problems("target")]
        for key, value in (("pg_dump", self.pg_dump), ("pg_restore", self.pg_restore), ("psql", self.psql),
                           ("dump_dir", self.dump_dir)):
            problem = path_problem(value)
            if problem:
                problems.append(f"{key} {value!r} {problem}")
        for key, value in (("owner", self.owner), ("schema", self.schema)):
            if not _IDENTIFIER.match(value):
                problems.append(f"{key} {value!r} is not a plain PostgreSQL name (lower case, digits, _)")
        if problems:
            raise ValueError("LegacyDatabaseImport: " + "; ".join(problems))

    @property
    def imported_marker(self) -> str:
        """Left after a verified import: later runs find the target populated and leave it to the application
        (whose writes make its counts differ from the retired source's)."""
        return f"{self.dump_dir}/{self.source.database}-imported-into-{self.target.database}.done"

    def step(self, name: str) -> HostStep:
        variables: dict[str, str | int | bool] = {
            "PG_DUMP": self.pg_dump,
            "PG_RESTORE": self.pg_restore,
            "PSQL": self.psql,
            "SOURCE_HOST": self.source.host,
            "SOURCE_PORT": self.source.port,
            "SOURCE_USER": self.source.user,
            "SOURCE_DATABASE": self.source.database,
            "TARGET_HOST": self.target.host,
            "TARGET_PORT": self.target.port,
            "TARGET_USER": self.target.user,
            "TARGET_DATABASE": self.target.database,
            "OWNER": self.owner,
            "SCHEMA": self.schema,
            "DUMP_DIR": self.dump_dir,
            "IMPORTED_MARKER": self.imported_marker,
        }
        does = (f"dumps {self.source} to {self.dump_dir}, restores it into {self.target} when that has no "
                f"tables, verifies it and makes {self.owner} the owner")
        undoes = f"nothing: {self.target} keeps its data and the dumps in {self.dump_dir} stay"
        if self.source_password is None:
            return HostStep(name, "pg-import", {**variables, "SOURCE_PASSWORD": ""}, secrets=("TARGET_PASSWORD",),
                            does=does, undoes=undoes)
        return HostStep(name, "pg-import", variables, secrets=("SOURCE_PASSWORD", "TARGET_PASSWORD"),
                        does=does, undoes=undoes)

    def checks(self) -> str:
        """What the step checks, for the plan's reviewer (the tables are only known on the host)."""
        return "\n".join((
            f"source: {self.source} (dumped with {self.pg_dump} --format=custom to "
            f"{self.dump_dir}/{self.source.database}-<UTC time>.dump, 0600)",
            f"target: {self.target} (restored with {self.pg_restore} --no-owner --role={self.owner} "
            "--single-transaction)",
            f"- a target with user tables is never restored into: equal exact row counts of every table in "
            f"{self.schema} = already done, any difference = failure naming the tables",
            f"- after the restore: exact row counts (count(*)) of every table in {self.schema}, source against "
            "target, printed; any difference fails the step",
            f"- afterwards every table, sequence, view and type in {self.schema} is owned by {self.owner}",
            f"- a verified import leaves {self.imported_marker}; later runs leave the target to the application",
            "- credentials: on stdin into a temporary PGPASSFILE (0600, removed on exit)",
            "- delete: drops nothing (the cluster database is protected state)",
        )) + "\n"


class LegacyDatabaseImport(pulumi.ComponentResource):
    """Copies ``source`` into ``target`` once, on the host: a dated custom-format dump under ``dump_dir``,
    restored as ``target.user`` with every object created by ``owner``, verified by exact row counts and
    ownership (see ``LegacyDatabaseImportArgs.checks``). A populated target is never restored into.

    Undo: deleting it drops nothing; the imported data is protected state of the cluster, and the dumps stay
    in ``dump_dir`` (remove them by hand once the backups hold them).
    """

    def __init__(self, name: str, args: LegacyDatabaseImportArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        step = args.step(f"{name}-restore")
        super().__init__(
            IMPORT_TYPE,
            name,
            {
                "source": str(args.source),
                "target": str(args.target),
                "owner": args.owner,
                "schema": args.schema,
                "dumpDir": args.dump_dir,
                "artifacts": {
                    f"host/postgres/{name}-checks.txt": args.checks(),
                },
            },
            opts,
        )
        secrets = {"TARGET_PASSWORD": args.target_password}
        if args.source_password is not None:
            secrets["SOURCE_PASSWORD"] = args.source_password
        self.restore = step.register(args.host, secret_values=secrets, identity=(args.target.database,),
                                     opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"target": str(args.target), "owner": args.owner})
