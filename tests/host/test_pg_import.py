"""LegacyDatabaseImport's step, rendered exactly as the program renders it, run against two real PostgreSQL
servers on loopback (tests/servers/postgres.py): "legacy" plays Homebrew's postgresql@18, "cluster" blumeops-pg.
Each test uses its own database names on the session's servers."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from components.host import LegacyDatabaseImportArgs, PostgresEndpoint
from tests.host.conftest import Machine
from tests.host.test_hardening import quick
from tests.servers.postgres import BORGMATIC_PASSWORD, EBLUME_PASSWORD, ROWS, PostgresServers

SECRETS = {"SOURCE_PASSWORD": EBLUME_PASSWORD, "TARGET_PASSWORD": EBLUME_PASSWORD}
PASSWORDS = (EBLUME_PASSWORD, BORGMATIC_PASSWORD)
STEP = "miniflux-import-restore"


def import_args(machine: Machine, servers: PostgresServers, database: str,
                **changes: object) -> LegacyDatabaseImportArgs:
    values: dict[str, object] = {
        "host": machine.host(),
        "pg_dump": str(servers.bin / "pg_dump"), "pg_restore": str(servers.bin / "pg_restore"),
        "psql": str(servers.bin / "psql"),
        "source": PostgresEndpoint("127.0.0.1", servers.legacy.port, "eblume", database),
        "target": PostgresEndpoint("127.0.0.1", servers.cluster.port, "eblume", database),
        "owner": "miniflux", "dump_dir": str(machine.home / "backups/postgres"),
        "target_password": object(), "source_password": object(),
    }
    values.update(changes)
    return LegacyDatabaseImportArgs(**values)  # type: ignore[arg-type]


def run_import(machine: Machine, args: LegacyDatabaseImportArgs, check: bool = True,
               action: str = "create") -> subprocess.CompletedProcess[str]:
    result = machine.run(args.step(STEP), action, secrets=SECRETS, check=check)
    for password in PASSWORDS:
        assert password not in result.stdout + result.stderr
    # the temporary PGPASSFILE is gone, whatever happened
    assert not list((machine.root / "tmp").glob("blumeops-pgpass.*"))
    return result


@pytest.fixture
def databases(postgres_servers: PostgresServers, request: pytest.FixtureRequest) -> str:
    """A database name for this test (seeded on legacy, empty and owned by miniflux on the cluster)."""
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    for server in (postgres_servers.legacy, postgres_servers.cluster):
        server.drop_database(name)
    postgres_servers.legacy.seed_miniflux(name)
    postgres_servers.cluster.create_database(name)
    return name


def dumps(machine: Machine) -> list[Path]:
    directory = machine.home / "backups/postgres"
    return sorted(directory.glob("*.dump")) if directory.exists() else []


def test_first_run_imports_verifies_and_hands_everything_to_miniflux(
        machine: Machine, postgres_servers: PostgresServers, databases: str) -> None:
    cluster = postgres_servers.cluster
    args = import_args(machine, postgres_servers, databases)
    result = run_import(machine, args)
    assert cluster.row_counts(databases) == ROWS
    for table, rows in ROWS.items():  # the counts are in the step's output
        assert re.search(rf"^public\.{table}\s+{rows}\s+[0-9a-f]{{32}}$", result.stdout, re.MULTILINE), result.stdout
    assert f"imported and verified: {databases}" in result.stdout
    # ownership, read from pg_class and pg_type: nothing in public is owned by anyone else, and the check saw
    # tables, sequences (serial and standalone), indexes, the view and the enum type
    assert cluster.foreign_owned(databases, "miniflux") == []
    assert {"r", "S", "i", "v", "enum"} <= cluster.owned_kinds(databases, "miniflux")
    # the dump: a dated custom-format file, 0600 in a 0700 directory
    (dump,) = dumps(machine)
    assert re.fullmatch(rf"{databases}-\d{{8}}T\d{{6}}Z\.dump", dump.name)
    assert dump.read_bytes()[:5] == b"PGDMP"
    assert dump.stat().st_mode & 0o777 == 0o600 and dump.parent.stat().st_mode & 0o777 == 0o700
    assert not list(dump.parent.glob(".partial-*"))


def test_the_borgmatic_role_can_dump_the_imported_database(
        machine: Machine, postgres_servers: PostgresServers, databases: str, tmp_path: Path) -> None:
    run_import(machine, import_args(machine, postgres_servers, databases))
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{postgres_servers.cluster.port}:*:borgmatic:"
                      + BORGMATIC_PASSWORD.replace(":", "\\:") + "\n")
    pgpass.chmod(0o600)
    env = {"PATH": os.environ["PATH"], "PGPASSFILE": str(pgpass)}
    result = subprocess.run(
        [str(postgres_servers.bin / "pg_dump"), "-w", "-h", "127.0.0.1", "-p", str(postgres_servers.cluster.port),
         "-U", "borgmatic", "-d", databases, "--format=plain"],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "COPY public.entries" in result.stdout and "entry 44" in result.stdout


def test_second_run_is_already_done_and_restores_nothing(
        machine: Machine, postgres_servers: PostgresServers, databases: str) -> None:
    args = import_args(machine, postgres_servers, databases)
    run_import(machine, args)
    first_dumps = dumps(machine)
    result = run_import(machine, args)
    assert "already done" in result.stdout and args.imported_marker in result.stdout
    assert dumps(machine) == first_dumps
    # without the marker (another machine ran the import): the target is compared with the source by content,
    # and they are equal: adopted, the marker written again
    Path(args.imported_marker).unlink()
    result = run_import(machine, args)
    assert "already done" in result.stdout and "holds exactly what the legacy database" in result.stdout
    assert Path(args.imported_marker).read_text().startswith("blumeops-pg-import-marker 1\nmode: import\n")
    assert dumps(machine) == first_dumps
    assert postgres_servers.cluster.row_counts(databases) == ROWS


def test_a_target_whose_counts_differ_fails_naming_the_tables_and_is_left_alone(
        machine: Machine, postgres_servers: PostgresServers, databases: str) -> None:
    cluster = postgres_servers.cluster
    cluster.drop_database(databases)
    cluster.seed_miniflux(databases)
    cluster.sql("DELETE FROM entries WHERE id > 40;", databases)
    result = run_import(machine, import_args(machine, postgres_servers, databases), check=False)
    assert result.returncode != 0
    assert "table public.entries: source rows=44" in result.stderr and "target rows=40" in result.stderr
    assert "never overwrites" in result.stderr
    assert "table public.feeds" not in result.stderr  # only the tables that differ are named
    assert cluster.row_counts(databases) == {**ROWS, "entries": 40}
    assert dumps(machine) == []


def test_a_hand_restored_target_with_equal_counts_gets_miniflux_as_owner(
        machine: Machine, postgres_servers: PostgresServers, databases: str) -> None:
    # the original migration: a superuser restore of a plain dump left every object owned by eblume
    cluster = postgres_servers.cluster
    dumped = subprocess.run(
        [str(postgres_servers.bin / "pg_dump"), "-h", str(postgres_servers.legacy.socket_dir),
         "-p", str(postgres_servers.legacy.port), "-U", "postgres", "-d", databases, "--format=plain"],
        capture_output=True, text=True, check=True, timeout=60, env={"PATH": os.environ["PATH"]})
    cluster.sql(dumped.stdout, databases)
    assert cluster.foreign_owned(databases, "miniflux") != []
    result = run_import(machine, import_args(machine, postgres_servers, databases))
    assert "already done" in result.stdout
    assert cluster.foreign_owned(databases, "miniflux") == []
    assert cluster.row_counts(databases) == ROWS


def test_a_failed_restore_is_rolled_back_and_the_next_run_starts_over(
        machine: Machine, postgres_servers: PostgresServers, databases: str) -> None:
    cluster = postgres_servers.cluster
    # the owner role is missing on the target: pg_restore --role fails before anything is kept
    result = run_import(machine, import_args(machine, postgres_servers, databases, owner="feeds_owner"), check=False)
    assert result.returncode != 0 and "the role feeds_owner does not exist" in result.stderr
    assert "nothing was restored" in result.stderr
    assert cluster.row_counts(databases) == {}
    assert len(dumps(machine)) == 1  # the dump stays
    run_import(machine, import_args(machine, postgres_servers, databases))
    assert cluster.row_counts(databases) == ROWS


def test_an_unreachable_source_or_wrong_password_fails_clearly(
        machine: Machine, postgres_servers: PostgresServers, databases: str) -> None:
    args = import_args(machine, postgres_servers, databases)
    result = machine.run(args.step(STEP), secrets={**SECRETS, "SOURCE_PASSWORD": "wrong"}, check=False)
    assert result.returncode != 0 and "cannot connect to the legacy database" in result.stderr
    assert postgres_servers.cluster.row_counts(databases) == {}


def test_delete_drops_nothing_and_says_so(
        machine: Machine, postgres_servers: PostgresServers, databases: str) -> None:
    args = import_args(machine, postgres_servers, databases)
    run_import(machine, args)
    result = run_import(machine, args, action="delete")
    assert "nothing dropped" in result.stdout and "protected state" in result.stdout
    assert postgres_servers.cluster.row_counts(databases) == ROWS


def test_passwords_are_secrets_of_the_step_and_never_rendered(machine: Machine,
                                                              postgres_servers: PostgresServers) -> None:
    args = import_args(machine, postgres_servers, "miniflux")
    step = args.step(STEP)
    assert step.secrets == ("SOURCE_PASSWORD", "TARGET_PASSWORD")
    assert EBLUME_PASSWORD not in step.render() and "<secret TARGET_PASSWORD" in step.render()
    trusting = import_args(machine, postgres_servers, "miniflux", source_password=None).step(STEP)
    assert trusting.secrets == ("TARGET_PASSWORD",) and "readonly SOURCE_PASSWORD=''" in trusting.render()


def test_bad_arguments_are_refused_naming_each() -> None:
    with pytest.raises(ValueError) as error:
        LegacyDatabaseImportArgs(
            host=None, pg_dump="pg_dump", pg_restore="~/bin/pg_restore", psql="/usr/bin/psql",  # type: ignore[arg-type]
            source=PostgresEndpoint("local host", 5432, "eblume", "miniflux"),
            target=PostgresEndpoint("k8s-pg.tail8d86e.ts.net", 70000, "eblume", "Mini-Flux"),
            owner="miniflux; drop", dump_dir="backups", target_password=None,  # type: ignore[arg-type]
        )
    message = str(error.value)
    for expected in ("pg_dump 'pg_dump' is relative", "pg_restore '~/bin/pg_restore' starts with ~",
                     "source host 'local host'", "target port 70000", "target database 'Mini-Flux'",
                     "owner 'miniflux; drop'", "dump_dir 'backups' is relative"):
        assert expected in message


def test_passwords_reach_no_argument_and_no_environment_of_the_tools(
        machine: Machine, postgres_servers: PostgresServers, databases: str) -> None:
    """Each client tool is a shim that records its arguments and environment, then runs the real tool."""
    record = machine.state / "pg-tools.log"
    shims = {}
    for tool in ("pg_dump", "pg_restore", "psql"):
        shim = machine.bin / tool
        shim.write_text(f'#!/bin/bash\n{{ printf "%s\\n" "$0 $*"; env; }} >>{record}\n'
                        f'exec {postgres_servers.bin / tool} "$@"\n')
        shim.chmod(0o755)
        shims[tool] = str(shim)
    run_import(machine, import_args(machine, postgres_servers, databases, **shims))
    recorded = record.read_text()
    calls = [line.split()[0].rsplit("/", 1)[-1] for line in recorded.splitlines()
             if line.startswith(str(machine.bin)) and "--version" not in line]
    assert calls.count("pg_restore") == 1 and calls.count("pg_dump") == 1
    assert "PGPASSFILE=" in recorded and "PGPASSWORD" not in recorded
    for password in PASSWORDS:
        assert password not in recorded
    assert postgres_servers.cluster.row_counts(databases) == ROWS


@pytest.mark.parametrize("tool", ["psql", "pg_dump", "pg_restore"])
def test_a_hung_tool_stops_the_import_and_the_next_run_completes(
        machine: Machine, postgres_servers: PostgresServers, databases: str, tool: str) -> None:
    """The tool never returns (a wrapper that sleeps): killed at its bound (2 s here), the step fails saying
    so, nothing half restored and no dump left half written; the next run imports and verifies."""
    hanging = machine.bin / f"hanging-{tool}"
    hanging.write_text("#!/bin/sh\nexec sleep 3600\n")
    hanging.chmod(0o755)
    args = import_args(machine, postgres_servers, databases, **{tool: str(hanging)})
    started = time.monotonic()
    result = machine.run_text(quick(args.step(STEP).render(SECRETS)), "create", check=False)
    assert time.monotonic() - started < 15
    assert result.returncode != 0 and "did not finish within 2s: killed" in result.stderr, result.stderr
    assert postgres_servers.cluster.row_counts(databases) == {}
    assert not Path(args.imported_marker).exists()
    assert not list(machine.home.rglob(".partial-*")), "no half-written dump stays"
    assert not list((machine.root / "tmp").iterdir()), "the PGPASSFILE and the scratch files went with the step"
    result = run_import(machine, import_args(machine, postgres_servers, databases))
    assert f"imported and verified: {databases}" in result.stdout
