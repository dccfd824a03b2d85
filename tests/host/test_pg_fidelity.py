"""What the import and the final sync carry, on PostgreSQL 15 and 18: the realistic data set
(tests/host/data/pg_realistic.sql: two schemas, every common object class, grants, default privileges,
database settings, odd bytes), targets tampered with, rows written during the dump, the version check, and
phase 4's final sync both ways. The step is rendered as the program renders it and run on real servers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.host.conftest import Machine
from tests.host.test_pg_import import dumps, import_args, run_import
from tests.servers.postgres import MINIFLUX_SQL, PostgresServers


@pytest.fixture(params=["15", "18"])
def servers(request: pytest.FixtureRequest, postgres_servers: PostgresServers) -> PostgresServers:
    """The pair of one major: Debian's 15, or 18 (the homelab's: Homebrew postgresql@18, CNPG 18-standard-trixie)."""
    if request.param == "15":
        return postgres_servers
    pair: PostgresServers = request.getfixturevalue("postgres18_servers")
    return pair


@pytest.fixture
def realistic(servers: PostgresServers, request: pytest.FixtureRequest) -> str:
    """A database name for this test: the realistic data set on legacy, an empty database on the cluster."""
    name = re.sub(r"[^a-z0-9_]", "_", request.node.originalname.lower())[:50]
    for server in (servers.legacy, servers.cluster):
        server.drop_database(name)
    servers.legacy.seed_realistic(name)
    servers.cluster.create_database(name)
    return name


def query(server: object, sql: str, database: str) -> str:
    return server.sql(sql, database).strip()  # type: ignore[attr-defined, no-any-return]


def content(server: object, database: str) -> str:
    """Row checksums of every table and matview plus the sequences, read independently of the step."""
    return query(server, """
        SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
          SELECT 'entries ' || count(*) || ' ' || md5(string_agg(e::text, '' ORDER BY e.id)) AS x
            FROM public.entries e
          UNION ALL SELECT 'events ' || count(*) || ' ' || md5(string_agg(v::text, '' ORDER BY v.id))
            FROM reports.events v
          UNION ALL SELECT 'users ' || md5(string_agg(u::text, '' ORDER BY u.id)) FROM public.users u
          UNION ALL SELECT 'feeds ' || md5(string_agg(f::text, '' ORDER BY f.id)) FROM public.feeds f
          UNION ALL SELECT 'stats ' || md5(string_agg(s::text, '' ORDER BY s.feed_id)) FROM (
            SELECT feed_id, count(*) AS entries, count(*) FILTER (WHERE status = 'unread') AS unread
              FROM public.entries GROUP BY feed_id) s
          UNION ALL SELECT 'stats populated ' || relispopulated FROM pg_class WHERE oid = 'reports.feed_stats'::regclass
          UNION ALL SELECT 'seq ' || last_value || is_called FROM public.entries_id_seq
          UNION ALL SELECT 'icons ' || last_value || is_called FROM public.icon_ids
          UNION ALL SELECT 'never ' || last_value || is_called FROM reports.never_called) AS t;""", database)


def test_the_realistic_database_arrives_with_grants_settings_and_one_owner(
        machine: Machine, servers: PostgresServers, realistic: str) -> None:
    legacy, cluster = servers.legacy, servers.cluster
    args = import_args(machine, servers, realistic)
    result = run_import(machine, args)
    major = legacy.major
    assert f"versions: source PostgreSQL {major} " in result.stdout and f"pg_dump {major}" in result.stdout
    assert f"imported and verified: {realistic}" in result.stdout
    assert re.search(r"^reports\.events_2026h1\s+\d+\s+[0-9a-f]{32}$", result.stdout, re.MULTILINE)
    assert content(cluster, realistic) == content(legacy, realistic)
    # grants: table, column, schema, sequence, type, function (EXECUTE still revoked from PUBLIC), defaults
    assert query(cluster, """SELECT has_table_privilege('reporting', 'public.entries', 'SELECT'),
        has_column_privilege('reporting', 'public.users', 'username', 'SELECT'),
        has_column_privilege('reporting', 'public.users', 'password_hash', 'SELECT'),
        has_schema_privilege('reporting', 'reports', 'USAGE'),
        has_sequence_privilege('reporting', 'public.icon_ids', 'USAGE'),
        has_function_privilege('reporting', 'reports.unread_count(bigint)', 'EXECUTE'),
        has_function_privilege('borgmatic', 'reports.unread_count(bigint)', 'EXECUTE'),
        (SELECT count(*) FROM pg_default_acl)""", realistic) == "t|t|f|t|t|t|f|1"
    # the database's comment and settings (database-wide and per role)
    assert query(cluster, f"""SELECT shobj_description(oid, 'pg_database') FROM pg_database
        WHERE datname = '{realistic}'""", "postgres") == "the feed reader's data (odd: tab\tand \\ backslash)"
    settings = query(cluster, f"""SELECT string_agg(c, ';' ORDER BY c) FROM pg_db_role_setting s, unnest(setconfig) c
        WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = '{realistic}')""", "postgres")
    assert settings == ('app.tenant=home lab;search_path="$user", public, reports;statement_timeout=5min;'
                        'work_mem=8MB')
    # one owner for every object class, the multirange included; nothing else owns anything in either schema
    foreign = query(cluster, """
        SELECT string_agg(what, '; ') FROM (
          SELECT 'class ' || relname AS what FROM pg_class c JOIN pg_namespace n ON n.oid = relnamespace
           WHERE nspname IN ('public', 'reports') AND relowner <> 'miniflux'::regrole
          UNION ALL SELECT 'type ' || typname FROM pg_type t JOIN pg_namespace n ON n.oid = typnamespace
           WHERE nspname IN ('public', 'reports') AND typowner <> 'miniflux'::regrole
          UNION ALL SELECT 'routine ' || proname FROM pg_proc p JOIN pg_namespace n ON n.oid = pronamespace
           WHERE nspname IN ('public', 'reports') AND proowner <> 'miniflux'::regrole
          UNION ALL SELECT 'collation ' || collname FROM pg_collation WHERE collnamespace = 'reports'::regnamespace
           AND collowner <> 'miniflux'::regrole
          UNION ALL SELECT 'schema reports' FROM pg_namespace WHERE nspname = 'reports'
           AND nspowner <> 'miniflux'::regrole) AS f""", realistic)
    assert foreign == ""
    assert query(cluster, "SELECT string_agg(typtype::text, '' ORDER BY typtype) FROM pg_type "
                          "WHERE typname IN ('score_range', 'score_multirange', 'url', 'entry_status', 'pair')",
                 realistic) == "cdemr"
    # the marker records the fingerprint and the dump; a second run is already done and restores nothing
    marker = Path(args.imported_marker).read_text()
    (dump,) = dumps(machine)
    assert marker.startswith("blumeops-pg-import-marker 1\nmode: import\n") and f"dump: {dump}\n" in marker
    assert re.search(r"^table\|reports\.events_2026h2\|rows=\d+ md5=[0-9a-f]{32}$", marker, re.MULTILINE)
    assert "\nsequence|public.entries_id_seq|last_value=3000 is_called=true\n" in marker
    result = run_import(machine, args)
    assert "already done" in result.stdout and dumps(machine) == [dump]


def test_a_tampered_target_is_refused_naming_what_differs(
        machine: Machine, postgres18_servers: PostgresServers) -> None:
    servers, realistic = postgres18_servers, "tampered_target"
    for server in (servers.legacy, servers.cluster):
        server.drop_database(realistic)
    servers.legacy.seed_realistic(realistic)
    servers.cluster.create_database(realistic)
    cluster = servers.cluster
    args = import_args(machine, servers, realistic)
    run_import(machine, args)
    before = content(cluster, realistic)
    tamperings = {  # the change, what the refusal names, the undo
        "an altered row, counts equal": (
            "UPDATE reports.events SET payload = ROW('forged', 1) WHERE id = 7;", "table reports.events_2026h1:",
            "UPDATE reports.events SET payload = ROW('event 7', 7 / 7.0) WHERE id = 7;"),
        "a sequence reset": (
            "SELECT setval('public.entries_id_seq', 1, false);", "sequence public.entries_id_seq:",
            "SELECT setval('public.entries_id_seq', 3000, true);"),
        "an emptied matview": (
            "REFRESH MATERIALIZED VIEW reports.feed_stats WITH NO DATA;", "matview reports.feed_stats:",
            "REFRESH MATERIALIZED VIEW reports.feed_stats;"),
        "a revoked grant": (
            "REVOKE SELECT ON public.entries FROM reporting;", "table-def public.entries:",
            "GRANT SELECT ON public.entries TO reporting;"),
    }
    for what, (change, named, undo) in tamperings.items():
        cluster.sql(change, realistic)
        result = run_import(machine, args, check=False)
        assert result.returncode != 0, what
        error = next(line for line in result.stderr.splitlines() if "ERROR:" in line)
        assert named in error and "differs from what this step copied" in error, (what, result.stderr)
        cluster.sql(undo, realistic)
    assert content(cluster, realistic) == before
    assert "already done" in run_import(machine, args).stdout
    assert len(dumps(machine)) == 1


def test_a_foreign_target_is_refused_with_or_without_a_fake_marker(
        machine: Machine, postgres18_servers: PostgresServers) -> None:
    servers, name = postgres18_servers, "foreign_target"
    for server in (servers.legacy, servers.cluster):
        server.drop_database(name)
    servers.legacy.seed_realistic(name)
    servers.cluster.create_database(name)
    # the application's empty tables (it started on the cluster and ran its migrations)
    empty_schema = re.sub(r"^INSERT INTO .*?;$", "", MINIFLUX_SQL, flags=re.MULTILINE | re.DOTALL)
    servers.cluster.sql(empty_schema, name)
    args = import_args(machine, servers, name)
    result = run_import(machine, args, check=False)
    assert result.returncode != 0 and "no marker of this step" in result.stderr
    assert "table public.entries: source rows=3000" in result.stderr and "target rows=0" in result.stderr
    marker = Path(args.imported_marker)
    marker.parent.mkdir(parents=True, exist_ok=True)
    for fake in ("imported miniflux at some point; row counts:\nentries|0\n",
                 "blumeops-pg-import-marker 1\nmode: import\ntime: x\ndump: none\nfingerprint:\n"
                 "table|public.entries|rows=0 md5=-\n"):
        marker.write_text(fake)
        result = run_import(machine, args, check=False)
        assert result.returncode != 0 and "already done" not in result.stdout
        error = next(line for line in result.stderr.splitlines() if "ERROR:" in line)
        assert "table public." in error, error  # the data's differences come first
    assert servers.cluster.row_counts(name)["entries"] == 0 and dumps(machine) == []


def test_a_role_the_grants_name_that_the_cluster_lacks_is_refused_with_the_list(
        machine: Machine, postgres18_servers: PostgresServers) -> None:
    servers, name = postgres18_servers, "missing_role"
    for server in (servers.legacy, servers.cluster):
        server.drop_database(name)
    servers.legacy.seed_realistic(name)
    servers.cluster.create_database(name)
    servers.legacy.sql("DROP ROLE IF EXISTS legacy_only_analyst; CREATE ROLE legacy_only_analyst NOLOGIN;")
    servers.legacy.sql("GRANT SELECT ON public.feeds TO legacy_only_analyst;", name)
    result = run_import(machine, import_args(machine, servers, name), check=False)
    assert result.returncode != 0
    assert "lacks roles" in result.stderr and "legacy_only_analyst (grants)" in result.stderr
    assert "managed roles" in result.stderr and "reporting" not in result.stderr.split("lacks roles", 1)[1]
    assert servers.cluster.row_counts(name) == {}


def test_rows_written_during_the_dump_are_named_and_the_final_sync_carries_them(
        machine: Machine, postgres18_servers: PostgresServers) -> None:
    """pg_dump is a wrapper that inserts rows into the legacy database while the real pg_dump runs: the
    target holds the snapshot (exactly what the dump holds: verified), the step names the tables written
    since in a warning, and the final sync brings the rows over; nothing is lost silently."""
    servers, name = postgres18_servers, "race_during_dump"
    legacy = servers.legacy
    for server in (legacy, servers.cluster):
        server.drop_database(name)
    legacy.seed_realistic(name)
    servers.cluster.create_database(name)
    psql = (f"{servers.bin / 'psql'} -X -q -h {legacy.socket_dir} -p {legacy.port} -U postgres -d {name} -c "
            "\"INSERT INTO entries (user_id, feed_id, title) VALUES (2, 2, 'written during the dump')\"")
    wrapper = machine.bin / "racing-pg_dump"
    wrapper.write_text(f"#!/bin/bash\n[[ $1 == --version ]] && exec {servers.bin / 'pg_dump'} --version\n"
                       f"( for i in 1 2 3 4 5 6 7 8 9 10; do env -u PGPASSFILE {psql}; done ) &\n"
                       f"{servers.bin / 'pg_dump'} \"$@\"\nstatus=$?\nwait\nexit $status\n")
    wrapper.chmod(0o755)
    args = import_args(machine, servers, name, pg_dump=str(wrapper))
    result = run_import(machine, args)
    assert f"imported and verified: {name}" in result.stdout
    assert "written after the snapshot" in result.stderr and "table public.entries" in result.stderr
    assert servers.cluster.row_counts(name)["entries"] == 3000
    assert legacy.row_counts(name)["entries"] == 3010
    result = run_import(machine, import_args(machine, servers, name, mode="final-sync"))
    assert "final sync done" in result.stdout
    assert servers.cluster.row_counts(name)["entries"] == 3010
    assert content(servers.cluster, name) == content(legacy, name)


def test_client_tools_older_than_the_servers_are_refused_naming_the_setting(
        machine: Machine, postgres_servers: PostgresServers,
        postgres18_servers: PostgresServers) -> None:
    name = "old_tools"
    for server in (postgres18_servers.legacy, postgres18_servers.cluster):
        server.drop_database(name)
    postgres18_servers.legacy.seed_miniflux(name)
    postgres18_servers.cluster.create_database(name)
    args = import_args(machine, postgres18_servers, name, pg_dump=str(postgres_servers.bin / "pg_dump"),
                       pg_restore=str(postgres_servers.bin / "pg_restore"), psql=str(postgres_servers.bin / "psql"))
    result = run_import(machine, args, check=False)
    assert result.returncode != 0
    assert "versions: source PostgreSQL 18 (" in result.stdout and "target PostgreSQL 18 (" in result.stdout
    assert "is PostgreSQL 15, older than the servers (source 18, target 18)" in result.stderr
    assert "blumeops:tools.pgDump" in result.stderr
    assert "ghcr.io/cloudnative-pg/postgresql:18-standard-trixie" in result.stderr
    assert dumps(machine) == [] and postgres18_servers.cluster.row_counts(name) == {}


def test_the_final_sync_both_ways(machine: Machine, servers: PostgresServers, realistic: str) -> None:
    """Phase 4: rows written to the legacy database after the import arrive; a second run is in sync; the
    rollback carries the cluster's writes back; raising again finds both equal; a cluster written since the
    last copy is refused naming the table; when both changed the rollback keeps both and a dump."""
    legacy, cluster = servers.legacy, servers.cluster
    imported = import_args(machine, servers, realistic)
    sync = import_args(machine, servers, realistic, mode="final-sync")
    result = run_import(machine, sync, check=False)
    assert result.returncode != 0 and "phase 3's import (mode import) has not run" in result.stderr
    run_import(machine, imported)
    legacy.sql("INSERT INTO entries (user_id, feed_id, title, raw) VALUES (1, 1, 'after the import', '\\x00');"
               "UPDATE users SET is_admin = true WHERE id = 2; CREATE TABLE reports.added (n int);"
               "ALTER DATABASE " + realistic + " SET work_mem = '16MB';", realistic)
    result = run_import(machine, sync)
    assert "final sync done" in result.stdout
    assert content(cluster, realistic) == content(legacy, realistic)
    assert query(cluster, "SELECT count(*) FROM reports.added", realistic) == "0"
    assert "mode: final-sync\n" in Path(sync.imported_marker).read_text()
    # handed over: a re-run of either step (a changed script re-runs every create) connects to nothing (the
    # legacy server is retired and k8s-pg is gone by then) and compares nothing
    for step in (sync, imported):
        result = run_import(machine, step)
        assert "the final sync handed" in result.stdout and "versions:" not in result.stdout
    # the rollback: the cluster application wrote; the legacy database gets it back
    cluster.sql("INSERT INTO entries (user_id, feed_id, title) VALUES (3, 4, 'written in the cluster');", realistic)
    result = run_import(machine, sync, action="delete")
    assert "carried back" in result.stdout, result.stdout + result.stderr
    assert query(legacy, "SELECT count(*) FROM entries WHERE title = 'written in the cluster'", realistic) == "1"
    assert content(cluster, realistic) == content(legacy, realistic)
    assert "mode: final-sync-rollback\n" in Path(sync.imported_marker).read_text()
    assert "nothing to carry back" in run_import(machine, sync, action="delete").stdout
    assert "mode: final-sync-rollback\n" in Path(sync.imported_marker).read_text()
    # raised again: the legacy application wrote meanwhile, the cluster is as the rollback left it: synced
    legacy.sql("INSERT INTO feeds (user_id, feed_url, title) VALUES (1, 'https://example.org/y', 'y');", realistic)
    assert "final sync done" in run_import(machine, sync).stdout
    assert content(cluster, realistic) == content(legacy, realistic)
    # the cluster application writes; then a rollback while the legacy database was written too (by hand):
    # the rollback overwrites nothing, keeps a dump of the cluster database and says so
    cluster.sql("DELETE FROM entries WHERE id = 5;", realistic)
    legacy.sql("INSERT INTO feeds (user_id, feed_url, title) VALUES (1, 'https://example.org/x', 'x');", realistic)
    before, legacy_before = content(cluster, realistic), content(legacy, realistic)
    result = run_import(machine, sync, action="delete")
    assert "both changed" in result.stdout and "WARNING: both databases were written" in result.stderr
    kept = [dump for dump in dumps(machine) if f"{realistic}-cluster-" in dump.name]
    assert kept and str(kept[-1]) in result.stderr and kept[-1].read_bytes()[:5] == b"PGDMP"
    assert content(cluster, realistic) == before and content(legacy, realistic) == legacy_before
    # raising the target again now refuses, naming the table the cluster wrote, and restores nothing
    result = run_import(machine, sync, check=False)
    assert result.returncode != 0 and "was written since the last copy" in result.stderr
    assert "table public.entries:" in result.stderr and "Nothing was restored" in result.stderr
    assert content(cluster, realistic) == before


def test_the_version_pairing_image_is_the_clusters() -> None:
    from components.cluster.cloudnative_pg import POSTGRES_IMAGE
    from components.host.postgres_import import CLUSTER_IMAGE

    assert POSTGRES_IMAGE.ref == CLUSTER_IMAGE


def test_checks_describe_each_mode(machine: Machine, postgres_servers: PostgresServers) -> None:
    imported = import_args(machine, postgres_servers, "miniflux").checks()
    final = import_args(machine, postgres_servers, "miniflux", mode="final-sync").checks()
    assert imported.startswith("mode: import\n") and final.startswith("mode: final-sync\n")
    for text in (imported, final):
        assert "pg_dump --snapshot" in text and "md5" in text and "blumeops:tools.pgDump" in text
        assert "multirange" in text and "refused before anything runs" in text
    assert "drops nothing" in imported and "carries the writes" not in imported
    assert "untouched since the last copy" in final and "both changed" in final
    with pytest.raises(ValueError, match="mode 'phase4' is not one of import, final-sync"):
        import_args(machine, postgres_servers, "miniflux", mode="phase4")
    assert "readonly MODE=final-sync" in import_args(machine, postgres_servers, "miniflux",
                                                       mode="final-sync").step("x").render()


def test_the_import_runs_under_a_shell_that_keeps_no_coprocess() -> None:
    """The session's fifo is plain bash 3.2 (no coproc): the script names none."""
    script = (Path(__file__).resolve().parents[2] / "components/host/scripts/pg-import.sh").read_text()
    assert "coproc" not in script and "mkfifo" in script
    assert subprocess.run(["bash", "-n", "-c", script], check=False).returncode == 0
