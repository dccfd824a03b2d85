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
MODES = ("import", "final-sync")
# The cluster's PostgreSQL image (components/cluster/cloudnative_pg.py POSTGRES_IMAGE), named by the version
# check when the client tools and the servers disagree.
CLUSTER_IMAGE = "ghcr.io/cloudnative-pg/postgresql:18-standard-trixie"
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
    schema: str = "public"  # the application's schema: the source must have tables there
    # "import" (phase 3): copy into an empty target once; "final-sync" (phase 4): copy again into a target
    # untouched since the last copy, and carry the cluster's writes back on delete. Both share the marker.
    mode: str = "import"
    target_image: str = CLUSTER_IMAGE  # named in the version check's message

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
        if self.mode not in MODES:
            problems.append(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if problems:
            raise ValueError("LegacyDatabaseImport: " + "; ".join(problems))

    @property
    def imported_marker(self) -> str:
        """What the cluster database held when this step last copied it (either mode): the fingerprint, the
        dump it came from, the mode and the time. "Already done" and "untouched since" compare with it."""
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
            "MODE": self.mode,
            "TARGET_IMAGE": self.target_image,
        }
        if self.mode == "import":
            does = (f"dumps {self.source} to {self.dump_dir} in one snapshot, restores it into {self.target} when "
                    f"that is empty, verifies it by content and makes {self.owner} the owner")
            undoes = f"nothing: {self.target} keeps its data and the dumps in {self.dump_dir} stay"
        else:
            does = (f"replaces the content of {self.target} by a fresh snapshot of {self.source} when the target "
                    "is untouched since the last copy (refuses otherwise), verified by content")
            undoes = (f"carries the writes to {self.target} back into {self.source} when the legacy database is "
                      f"untouched since the final sync; when both changed keeps a dump of the cluster database in "
                      f"{self.dump_dir} and overwrites nothing")
        if self.source_password is None:
            return HostStep(name, "pg-import", {**variables, "SOURCE_PASSWORD": ""}, secrets=("TARGET_PASSWORD",),
                            does=does, undoes=undoes)
        return HostStep(name, "pg-import", variables, secrets=("SOURCE_PASSWORD", "TARGET_PASSWORD"),
                        does=does, undoes=undoes)

    def checks(self) -> str:
        """What the step checks, for the plan's reviewer (the tables are only known on the host)."""
        common = (
            f"mode: {self.mode}",
            f"source: {self.source}; target: {self.target}",
            f"- versions first: {self.pg_dump}, {self.pg_restore} and {self.psql} must be at least both servers' "
            "major, and the restoring server's major at least the dumped one's; the majors are printed; a mismatch "
            f"names blumeops:tools.pgDump (pgRestore, psql) and the cluster image {self.target_image}",
            "- a database's fingerprint: per table and materialized view of every schema the dump holds (not only "
            f"{self.schema}) the exact row counts (count(*)) and an md5 of its rows' md5s in sorted order; every "
            "sequence's last_value and is_called; every object (schemas, tables, partitions, views, matviews, "
            "sequences, indexes, types, routines, collations, constraints, triggers, policies, extensions) with its "
            "privileges (the owner's own read as <owner>), default privileges, the database's settings and comment",
            f"- a copy: pg_dump --snapshot of the one REPEATABLE READ snapshot the fingerprint is computed in "
            f"(--format=custom, {self.dump_dir}/<database>-<UTC time>.dump, 0600); the sequences' state is read "
            "from the dump itself",
            f"- a restore: one transaction with the dump's SQL (pg_restore --no-owner --role={self.owner}, grants "
            "kept), the database's settings and comment, ownership; committed only when the restored fingerprint "
            "is the dump's, else rolled back naming what differs",
            "- grants: a role the dump's grants, default privileges or settings name that the restoring server lacks "
            "is refused before anything runs, with the list (declare it as a managed role of the cluster)",
            f"- ownership: {self.owner} owns every schema (public stays with pg_database_owner), table, partition, "
            "view, materialized view, sequence, type (enum, domain, range with its multirange, composite), "
            "function, procedure, aggregate, collation, conversion, operator, text search object and statistics "
            "object; extensions and their objects stay with the superuser that created them",
            f"- {self.imported_marker}: fingerprint, dump, mode and time of the last copy (both modes)",
            "- credentials: on stdin into a temporary PGPASSFILE (0600, removed on exit)",
        )
        if self.mode == "import":
            specific = (
                "- create: an empty target gets a copy; a target whose fingerprint is the marker's is already "
                "done; a target with objects whose fingerprint is not the marker's (or with no marker and not "
                "equal to the source) is refused naming per table what differs, never overwritten; a marker of "
                "the final sync means the application owns the target (not compared); writes to the source "
                "after the snapshot are named in a warning (the final sync carries them)",
                "- delete: drops nothing (the cluster database is protected state)",
            )
        else:
            specific = (
                "- create: needs the marker (the import ran); target = source: already in sync; target = marker "
                "(untouched since the last copy): its content is replaced by a fresh copy in one transaction, "
                "with its tables locked and the marker's fingerprint checked again inside it; otherwise refused "
                "naming what changed in the cluster database since the last copy",
                "- delete (the rollback): cluster = marker: nothing to carry; legacy = marker: the cluster's "
                "content replaces the legacy database's (one transaction, verified) and the marker records it; "
                f"both changed: nothing overwritten, a dump of the cluster database kept in {self.dump_dir}, a "
                "warning names it and what differs, exit 0",
            )
        return "\n".join((*common, *specific)) + "\n"


class LegacyDatabaseImport(pulumi.ComponentResource):
    """Copies ``source`` into ``target`` on the host: a dated custom-format dump under ``dump_dir`` taken in
    one snapshot, restored in one transaction as ``target.user`` with every object created by ``owner``,
    verified by content (see ``LegacyDatabaseImportArgs.checks``). Mode ``import``: once, into an empty
    target. Mode ``final-sync``: again, into a target untouched since the last copy.

    Undo: mode ``import`` drops nothing; the imported data is protected state of the cluster, and the dumps
    stay in ``dump_dir`` (remove them by hand once the backups hold them). Mode ``final-sync`` carries the
    cluster's writes back into the legacy database, or keeps them in a dump when both changed.
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
                "mode": args.mode,
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
