"""Phase 3, PostgreSQL data and backups: the legacy database moves into ``blumeops-pg`` and borgmatic on
indri backs up both.

Takes indri, the metrics paths (phase 0) and ``blumeops-pg`` (phase 1). The import is a host step on indri
(see ``components.host.postgres_import`` for why not a Job): the legacy brew ``postgresql@18`` only
listens on localhost, and indri reaches the cluster's database at its tailnet name. Borgmatic dumps the
legacy database and the cluster's during the transition; phase 4 (which retires the brew PostgreSQL and
gives the cluster the name ``pg``) amends ``LEGACY_POSTGRES_SERVING`` and phase 1's ``PG_HOSTNAME``, and
borgmatic then dumps only the cluster's database, at ``pg``. The import itself always reaches the cluster at
``k8s-pg``, phase 1's own LoadBalancer, the name it had when the import ran (it is never re-run against the
application's live database: see ``components.host.postgres_import``). Gives ``BORGMATIC`` (what a
retirement's "recent archive" precondition is built from), ``IMPORT`` (what a retirement of the legacy
PostgreSQL must wait for) and ``IMPORT_ARGS`` (what phase 4's final sync repeats).
"""

from __future__ import annotations

import re
from typing import Any

import pulumi

from components.host import (
    AgentName,
    Borgmatic,
    BorgmaticArgs,
    BorgmaticDatabase,
    BorgRepository,
    LegacyDatabaseImport,
    LegacyDatabaseImportArgs,
    PostgresEndpoint,
    Retention,
)
from phases import Amendable, Handover, Key, Later, Phase
from phases import settings as s
from phases.p0_foundation import INDRI, METRICS
from phases.p1_kubernetes import K8S_PG, PG_HOSTNAME, POSTGRES, PostgresSettings
from phases.parsers import passcommand, within
from phases.settings import HOME

PG_PORT = 5432
EBLUME = "eblume"  # the cluster's superuser role (phase 1), the one the import restores as


def _role(raw: Any) -> str:
    """A PostgreSQL role or database name as the homelab writes them: a plain identifier."""
    value = s.text(raw)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise s.InvalidValueError(f"{value!r} is not a plain PostgreSQL name (lower-case letters, digits, '_')")
    return value


def _directory(raw: Any) -> str:
    """An absolute directory written with its trailing slash, as borgmatic's repository path is."""
    return s.absolute_path(raw).rstrip("/") + "/"


def _absolute_paths(raw: Any) -> tuple[str, ...]:
    found = tuple(s.absolute_path(item) for item in s.json_list(raw))
    if not found:
        raise s.InvalidValueError("needs at least one directory")
    return found


@s.section("pgImport")
class PostgresImportSettings:
    """The legacy database and where its dated dumps are kept on indri."""

    source_host: str = s.setting(s.hostname, "host of the legacy PostgreSQL, as indri reaches it",
                                 default="localhost")
    source_port: int = s.setting(s.port, "port of the legacy PostgreSQL", default=PG_PORT, example="5432")
    source_user: str = s.setting(_role, "role the dump runs as (the legacy superuser)", default="eblume")
    database: str = s.setting(_role, "the database that moves (Miniflux's)", default="miniflux")
    owner: str = s.setting(_role, "role that owns every object of public afterwards (the application's)",
                           default="miniflux")
    dump_dir: str = s.setting(s.owned_dir, "where the dated dumps are kept on indri (0700)",
                              default=f"{HOME}/Backups/postgres")
    source_password: pulumi.Output[str] | None = s.setting(
        s.text, "password of source_user (unset: the brew server trusts local connections)", secret=True)


@s.section("borgmatic")
class BorgmaticSettings:
    """borgmatic on indri: its config, the repository on sifaka, what it keeps."""

    config_path: str = s.setting(s.owned_file, "borgmatic's config.yaml (0600)",
                                 default=f"{HOME}/.config/borgmatic/config.yaml")
    pgpass_path: str = s.setting(s.owned_file, "the .pgpass the borgmatic role's line goes in",
                                 default=f"{HOME}/.pgpass")
    source_directories: tuple[str, ...] = s.setting(
        _absolute_paths, "directories every archive holds",
        # Loki stays on indri in this plan (Grafana reads it at host.minikube.internal:3100), so its data does too
        default=(f"{HOME}/code/personal/zk", "/opt/homebrew/var/forgejo", f"{HOME}/.config/borgmatic",
                 f"{HOME}/Documents", f"{HOME}/Pictures", f"{HOME}/devpi", "/opt/homebrew/var/loki"),
        example="'[\"/Users/erichblume/Documents\"]'")
    repository: str = s.setting(_directory, "the borg repository (sifaka's SMB share mounted on indri)",
                                default="/Volumes/backups/borg/")
    repository_label: str = s.setting(s.text, "the repository's label", default="sifaka-borg-backups")
    encryption_passcommand: str = s.setting(passcommand, "command that prints the repository's passphrase",
                                            default=f"/bin/cat {HOME}/.borg/config.yaml")
    keep_daily: int = s.setting(s.count(0, 10_000), "daily archives kept", default=7, example="7")
    keep_monthly: int = s.setting(s.count(0, 10_000), "monthly archives kept", default=12, example="12")
    keep_yearly: int = s.setting(s.count(0, 10_000), "yearly archives kept", default=1000, example="1000")
    log_dir: str = s.setting(s.owned_dir, "log directory of the nightly backup agent",
                             default=f"{HOME}/Library/Logs")

    def __post_init__(self) -> None:
        for source in self.source_directories:
            if within(self.repository, source) or within(source, self.repository):
                where = "is inside" if within(self.repository, source) else "holds"
                raise ValueError(
                    f"blumeops:borgmatic.repository {self.repository!r} {where} the source directory {source!r} "
                    "(blumeops:borgmatic.sourceDirectories): every archive would back up the repository itself. "
                    "Put the repository outside every source (`pulumi config set blumeops:borgmatic.repository "
                    "<dir>`), or drop that source from sourceDirectories")


SETTINGS = (PostgresImportSettings, BorgmaticSettings)

BORGMATIC = Key("borgmatic", BorgmaticArgs, "borgmatic on indri: its repository, for 'a recent archive holds X'")
IMPORT = Key("postgres.import", LegacyDatabaseImport, "the verified import of the legacy database")
IMPORT_ARGS = Key("postgres.importArgs", LegacyDatabaseImportArgs, "how the legacy database was imported")

# Phase 4 retires the brew PostgreSQL: from then on only the cluster's database is dumped.
LEGACY_POSTGRES_SERVING = Amendable("postgres.legacyServing", True,
                                    "the brew postgresql@18 on indri still serves and is backed up")

# Directories later phases move off indri: phase 5 moves devpi's server directory into the cluster. The
# directory itself stays on disk, and the archives that hold it stay in the repository (append-only).
RETIRED_SOURCES: Amendable[tuple[str, ...]] = Amendable(
    "borgmatic.retiredSources", (), "source directories borgmatic no longer backs up (their data moved)")

# What borgmatic's config waits for before it drops a source: phase 4's retirement of the brew PostgreSQL
# (until then the legacy database is dumped every night), phase 5's devpi with the host server imported. None
# of them waits for borgmatic (phase 4's backup check reads the repository, not this component).
BORGMATIC_WAITS = Later("borgmatic.waitsFor", "steps after which borgmatic may drop what they retired or moved")

BORGMATIC_AGENT = AgentName("mcquack.eblume.borgmatic", "mcquack.borgmatic")
BORGMATIC_METRICS_AGENT = AgentName("mcquack.eblume.borgmatic-metrics", "mcquack.borgmatic-metrics")


def build(phase: Phase, handover: Handover) -> None:
    host = handover.take(INDRI)
    cluster = handover.take(POSTGRES)
    tools = host.tools
    tailnet = handover.settings.tailnet
    postgres = handover.section(PostgresSettings)
    imported = handover.section(PostgresImportSettings)
    import_host = f"{K8S_PG}.{tailnet.name}"
    backup_host = f"{handover.amended(PG_HOSTNAME)}.{tailnet.name}"
    # Both steps reach blumeops-pg through its LoadBalancer, which exists once the cluster component does.
    after_cluster = pulumi.ResourceOptions(parent=phase, depends_on=[cluster])

    import_args = LegacyDatabaseImportArgs(
        host=host,
        pg_dump=tools.pg_dump,
        pg_restore=tools.pg_restore,
        psql=tools.psql,
        source=PostgresEndpoint(imported.source_host, imported.source_port, imported.source_user,
                                imported.database),
        target=PostgresEndpoint(import_host, PG_PORT, EBLUME, imported.database),
        owner=imported.owner,
        dump_dir=imported.dump_dir,
        target_password=postgres.eblume_password,
        source_password=imported.source_password,
    )
    database_import = LegacyDatabaseImport(f"{imported.database}-import", import_args, after_cluster)
    handover.give(IMPORT, database_import)
    handover.give(IMPORT_ARGS, import_args)

    backup = handover.section(BorgmaticSettings)
    databases = [BorgmaticDatabase(imported.database, backup_host, PG_PORT)]
    if handover.amended(LEGACY_POSTGRES_SERVING):
        databases.insert(0, BorgmaticDatabase(imported.database, imported.source_host, imported.source_port))
    borgmatic_args = BorgmaticArgs(
        host=host,
        borgmatic=tools.borgmatic,
        borg=tools.borg,
        pg_dump=tools.pg_dump,
        pg_restore=tools.pg_restore,
        psql=tools.psql,
        jq=tools.jq,
        config_path=backup.config_path,
        pgpass_path=backup.pgpass_path,
        source_directories=tuple(path for path in backup.source_directories
                                 if path not in handover.amended(RETIRED_SOURCES)),
        repository=BorgRepository(backup.repository, backup.repository_label, backup.encryption_passcommand),
        databases=tuple(databases),
        borgmatic_password=postgres.borgmatic_password,
        agent_name=BORGMATIC_AGENT,
        metrics_agent_name=BORGMATIC_METRICS_AGENT,
        log_dir=backup.log_dir,
        metrics=handover.take(METRICS),
        retention=Retention(backup.keep_daily, backup.keep_monthly, backup.keep_yearly),
    )
    # what later phases retire or move must be gone from the host (or verified elsewhere) before borgmatic
    # stops backing it up: its config waits for their steps (BORGMATIC_WAITS)
    waits = handover.later(BORGMATIC_WAITS).apply(lambda later: [cluster, *later])
    Borgmatic("borgmatic", borgmatic_args, pulumi.ResourceOptions(parent=phase, depends_on=waits))
    handover.give(BORGMATIC, borgmatic_args)
