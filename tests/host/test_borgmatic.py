"""Borgmatic's steps, agents and scripts. The configuration is checked by the real borgmatic (PyPI, pinned to
Homebrew's version) and used with the real borg (Debian's borgbackup) against the loopback "cluster"
PostgreSQL of tests/servers/postgres.py: create an archive, read it back (metrics, archive precondition) and
restore it into a fresh database (the disaster-recovery drill). launchctl and plutil are the stub toolbox."""

from __future__ import annotations

import dataclasses
import json
import os
import plistlib
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from components.host import (
    AgentName,
    BorgmaticArgs,
    BorgmaticDatabase,
    BorgRepository,
    Host,
    HostTools,
    LegacyDatabaseImportArgs,
    MetricsPaths,
    PostgresEndpoint,
    RecentBorgmaticArchive,
)
from components.host.script import library_for
from phases import settings
from tests.host.conftest import BASH, FAKE_HOST_KEY, Machine
from tests.host.test_hardening import quick
from tests.servers.postgres import BORGMATIC_PASSWORD, EBLUME_PASSWORD, ROWS, PostgresServers
from tests.servers.registry import INSTALL_SCRIPT, free_port

BORGMATIC = str(Path(sys.executable).parent / "borgmatic")
BORG = "/usr/bin/borg"
JQ = "/usr/bin/jq"
AGENT = AgentName("mcquack.eblume.borgmatic", "mcquack.borgmatic")
METRICS_AGENT = AgentName("mcquack.eblume.borgmatic-metrics", "mcquack.borgmatic-metrics")
PASSPHRASE = "borg-test-passphrase-93c1"
HOME = "/Users/erichblume"


def ensure_borg() -> None:
    if Path(BORG).exists() and Path(JQ).exists():
        return
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    if Path(BORG).exists() and Path(JQ).exists():
        return
    reason = f"borg or jq is missing and install-test-servers.sh could not install them: {result.stderr.strip()}"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def indri_args(**changes: object) -> BorgmaticArgs:
    """The configuration as phase 3 gives it for indri (facts §5.7), both databases of the transition."""
    tools = dataclasses.replace(settings.defaults(HostTools), tailscale="/usr/bin/tailscale")
    pg = "/opt/homebrew/opt/postgresql@18/bin"
    values: dict[str, object] = {
        "host": Host("indri", 22, "erichblume", 501, HOME, FAKE_HOST_KEY, tools),
        "borgmatic": "/opt/homebrew/bin/borgmatic", "borg": "/opt/homebrew/bin/borg", "pg_dump": f"{pg}/pg_dump",
        "pg_restore": f"{pg}/pg_restore", "psql": f"{pg}/psql", "jq": "/opt/homebrew/bin/jq",
        "config_path": f"{HOME}/.config/borgmatic/config.yaml", "pgpass_path": f"{HOME}/.pgpass",
        "source_directories": (f"{HOME}/code/personal/zk", "/opt/homebrew/var/forgejo", f"{HOME}/.config/borgmatic",
                               f"{HOME}/Documents", f"{HOME}/Pictures"),
        "repository": BorgRepository("/Volumes/backups/borg/", "sifaka-borg-backups",
                                     f"/bin/cat {HOME}/.borg/config.yaml"),
        "databases": (BorgmaticDatabase("miniflux", "localhost"),
                      BorgmaticDatabase("miniflux", "k8s-pg.tail8d86e.ts.net")),
        "borgmatic_password": object(), "agent_name": AGENT, "metrics_agent_name": METRICS_AGENT,
        "log_dir": f"{HOME}/Library/Logs",
        "metrics": MetricsPaths("/opt/homebrew/var/node_exporter/textfile", "/opt/homebrew/var/log", f"{HOME}/bin"),
    }
    values.update(changes)
    return BorgmaticArgs(**values)  # type: ignore[arg-type]


def machine_args(machine: Machine, servers: PostgresServers | None = None, database: str = "miniflux",
                 **changes: object) -> BorgmaticArgs:
    """indri's configuration with only the repository, home and tool paths pointed at the test's machine."""
    home = machine.home
    bin_dir = servers.bin if servers is not None else Path("/usr/lib/postgresql/15/bin")
    port = servers.cluster.port if servers is not None else 5432
    values: dict[str, object] = {
        "host": machine.host(), "borgmatic": BORGMATIC, "borg": BORG, "jq": JQ,
        "pg_dump": str(bin_dir / "pg_dump"), "pg_restore": str(bin_dir / "pg_restore"), "psql": str(bin_dir / "psql"),
        "config_path": str(home / ".config/borgmatic/config.yaml"), "pgpass_path": str(home / ".pgpass"),
        "source_directories": (str(home / "Documents"), str(home / ".config/borgmatic")),
        "repository": BorgRepository(f"{machine.root}/borg/", "sifaka-borg-backups",
                                     f"/bin/cat {home}/.borg/config.yaml"),
        "databases": (BorgmaticDatabase(database, "127.0.0.1", port),),
        "log_dir": str(home / "Library/Logs"), "metrics": machine.metrics(),
    }
    values.update(changes)
    return indri_args(**values)


def secrets(args: BorgmaticArgs) -> dict[str, str]:
    return {"PGPASS_LINES": args.pgpass_lines(BORGMATIC_PASSWORD)}


def borgmatic(machine: Machine, args: BorgmaticArgs, *arguments: str,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real borgmatic with the installed config, as the agent runs it (HOME = the machine's home)."""
    result = subprocess.run(
        [args.borgmatic, "--config", args.config_path, *arguments], capture_output=True, text=True, check=False,
        timeout=120, env=machine_env(machine, env),
    )
    for password in (BORGMATIC_PASSWORD, EBLUME_PASSWORD, PASSPHRASE):
        assert password not in result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def machine_env(machine: Machine, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(machine.home), "TMPDIR": str(machine.root / "tmp"), "LANG": "C",
            "TZ": "UTC", **(extra or {})}


def run_script(machine: Machine, text: str, action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BASH, "-euo", "pipefail", "-s", "--", action], input=text, text=True,
                          capture_output=True, env=machine_env(machine, env), timeout=60, check=False)


# ---- the rendering -------------------------------------------------------------------------------------


def test_indri_config_carries_every_absolute_path_of_the_facts() -> None:
    config = yaml.safe_load(indri_args().config_text())
    assert config["local_path"] == "/opt/homebrew/bin/borg"
    assert config["repositories"] == [{"path": "/Volumes/backups/borg/", "label": "sifaka-borg-backups",
                                       "encryption": "repokey", "append_only": True}]
    assert config["encryption_passcommand"] == f"/bin/cat {HOME}/.borg/config.yaml"
    assert (config["keep_daily"], config["keep_monthly"], config["keep_yearly"]) == (7, 12, 1000)
    assert config["source_directories_must_exist"] is True
    assert [(d["hostname"], d["port"], d["username"], d["pg_dump_command"]) for d in config["postgresql_databases"]] \
        == [(host, 5432, "borgmatic", "/opt/homebrew/opt/postgresql@18/bin/pg_dump")
            for host in ("localhost", "k8s-pg.tail8d86e.ts.net")]


def test_indri_config_passes_borgmatic_config_validate(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(indri_args().config_text() + "\n")
    result = subprocess.run([BORGMATIC, "config", "validate", "--config", str(config)], capture_output=True,
                            text=True, check=False, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr


def test_from_phase_4_only_the_cluster_database_at_pg() -> None:
    args = indri_args(databases=(BorgmaticDatabase("miniflux", "pg.tail8d86e.ts.net"),))
    databases = yaml.safe_load(args.config_text())["postgresql_databases"]
    assert [d["hostname"] for d in databases] == ["pg.tail8d86e.ts.net"]
    assert args.pgpass_lines("pw:1") == "pg.tail8d86e.ts.net:5432:*:borgmatic:pw\\:1"


def test_agents_run_absolute_programs_on_the_homelab_schedule() -> None:
    args = indri_args()
    plist = plistlib.loads(args.agent().plist().encode())
    assert plist["ProgramArguments"] == ["/opt/homebrew/bin/borgmatic", "--config", args.config_path,
                                         "--verbosity", "1", "create", "prune", "compact"]
    assert plist["StartCalendarInterval"] == {"Hour": 2, "Minute": 0}
    assert plist["StandardOutPath"] == f"{HOME}/Library/Logs/mcquack.borgmatic.out.log"
    assert plist["StandardErrorPath"] == f"{HOME}/Library/Logs/mcquack.borgmatic.err.log"
    assert plist["EnvironmentVariables"]["PATH"].split(":")[:2] == [
        "/opt/homebrew/bin", "/opt/homebrew/opt/postgresql@18/bin"]
    metrics = plistlib.loads(args.metrics_agent().plist().encode())
    assert metrics["ProgramArguments"] == ["/bin/bash", f"{HOME}/bin/borgmatic-metrics", "agent"]
    assert metrics["StartInterval"] == 3600
    assert metrics["StandardOutPath"] == "/opt/homebrew/var/log/mcquack.borgmatic-metrics.out.log"


def test_the_password_is_a_secret_of_the_config_step() -> None:
    step = indri_args().config_step("borgmatic-config")
    assert step.secrets == ("PGPASS_LINES",)
    assert "<secret PGPASS_LINES" in step.render() and ":*:borgmatic:" not in step.render()


def test_bad_arguments_are_refused_naming_each() -> None:
    with pytest.raises(ValueError) as error:
        indri_args(borg="borg", source_directories=("~/Documents",), databases=(),
                   repository=BorgRepository("backups", "sifaka borg", "cat /Users/erichblume/.borg/config.yaml"))
    message = str(error.value)
    for expected in ("borg 'borg' is relative", "source_directories[0] '~/Documents' starts with ~",
                     "databases is empty", "repository 'backups' is relative", "label 'sifaka borg'",
                     "encryption_passcommand 'cat"):
        assert expected in message
    with pytest.raises(ValueError, match="must be relative"):
        indri_args().recent_archive("/borgmatic/x")


# ---- the config step on the fake machine (the real borgmatic validates) ---------------------------------


def test_config_step_writes_0600_files_validates_and_changes_nothing_twice(machine: Machine) -> None:
    args = machine_args(machine)
    (machine.home / ".pgpass").write_text("otherhost:5432:*:eblume:theirs\n")
    result = machine.run(args.config_step("borgmatic-config"), secrets=secrets(args))
    assert BORGMATIC_PASSWORD not in result.stdout + result.stderr
    config = Path(args.config_path)
    assert yaml.safe_load(config.read_text()) == args.config()
    assert config.stat().st_mode & 0o777 == 0o600 and config.parent.stat().st_mode & 0o777 == 0o700
    pgpass = machine.home / ".pgpass"
    assert pgpass.stat().st_mode & 0o777 == 0o600
    assert pgpass.read_text().splitlines() == [
        "# BEGIN blumeops borgmatic", args.pgpass_lines(BORGMATIC_PASSWORD), "# END blumeops borgmatic",
        "otherhost:5432:*:eblume:theirs"]
    before = machine.files()
    machine.run(args.config_step("borgmatic-config"), secrets=secrets(args))
    assert machine.files() == before
    # delete: the block goes, the other line stays, the config is removed
    machine.run(args.config_step("borgmatic-config"), "delete", secrets=secrets(args))
    assert pgpass.read_text() == "otherhost:5432:*:eblume:theirs\n"
    assert not config.exists() and not config.parent.exists()


def test_a_symlinked_pgpass_stays_a_symlink(machine: Machine) -> None:
    """~/.pgpass from a dotfiles checkout: the lines go into the file it links to, and come out again."""
    args = machine_args(machine)
    dotfiles = machine.home / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "pgpass"
    target.write_text("otherhost:5432:*:eblume:theirs\n")
    target.chmod(0o600)
    link = machine.home / ".pgpass"
    link.symlink_to("dotfiles/pgpass")
    machine.run(args.config_step("borgmatic-config"), secrets=secrets(args))
    assert link.is_symlink() and link.readlink() == Path("dotfiles/pgpass")
    assert target.read_text().splitlines() == [
        "# BEGIN blumeops borgmatic", args.pgpass_lines(BORGMATIC_PASSWORD), "# END blumeops borgmatic",
        "otherhost:5432:*:eblume:theirs"]
    machine.run(args.config_step("borgmatic-config"), "delete", secrets=secrets(args))
    assert link.is_symlink() and target.read_text() == "otherhost:5432:*:eblume:theirs\n"


@pytest.mark.parametrize("broken", [
    "# BEGIN blumeops borgmatic\nold:5432:*:borgmatic:x\nmine:5432:*:eblume:mine\n",  # END deleted by hand
    "# END blumeops borgmatic\nmine:5432:*:eblume:mine\n",
    "# BEGIN blumeops borgmatic\n# BEGIN blumeops borgmatic\nx\n# END blumeops borgmatic\n",
])
def test_a_block_without_its_end_is_refused_and_nothing_is_lost(machine: Machine, broken: str) -> None:
    args = machine_args(machine)
    pgpass = machine.home / ".pgpass"
    pgpass.write_text(broken)
    for action in ("create", "delete"):
        result = machine.run(args.config_step("borgmatic-config"), action, secrets=secrets(args), check=False)
        assert result.returncode != 0 and "block of" in result.stderr and "is broken" in result.stderr
        assert "# END blumeops borgmatic" in result.stderr, "the message names the line to put back"
        assert pgpass.read_text() == broken, "every line after a lone BEGIN is still there"


def test_rejected_config_leaves_the_old_one(machine: Machine) -> None:
    args = machine_args(machine)
    machine.run(args.config_step("borgmatic-config"), secrets=secrets(args))
    before = Path(args.config_path).read_bytes()
    rejecting = machine.bin / "borgmatic"
    rejecting.write_text("#!/bin/sh\necho 'config.yaml: keep_daily: not a number' >&2\nexit 1\n")
    rejecting.chmod(0o755)
    changed = machine_args(machine, borgmatic=str(rejecting), source_directories=(str(machine.home / "Pictures"),))
    result = machine.run(changed.config_step("borgmatic-config"), secrets=secrets(changed), check=False)
    assert result.returncode != 0 and "rejected" in result.stderr and "left as it was" in result.stderr
    assert Path(args.config_path).read_bytes() == before
    assert sorted(p.name for p in Path(args.config_path).parent.iterdir()) == ["config.yaml"]


def test_a_hung_validate_stops_the_step_and_leaves_the_old_config(machine: Machine) -> None:
    """`borgmatic config validate` never returns (the stub hangs): killed at its bound, the step fails saying
    so, the old configuration stays and no staged file is left; healed, the next run writes the new one."""
    args = machine_args(machine)
    machine.run(args.config_step("borgmatic-config"), secrets=secrets(args))
    before = Path(args.config_path).read_bytes()
    changed = machine_args(machine, borgmatic=str(machine.bin / "borgmatic"),
                           source_directories=(str(machine.home / "Pictures"),))
    machine.fail("borgmatic-config", how="hang")
    started = time.monotonic()
    result = machine.run_text(quick(changed.config_step("borgmatic-config").render(secrets(changed))), "create",
                              check=False)
    assert time.monotonic() - started < 15
    assert result.returncode != 0 and "did not finish within 2s: killed" in result.stderr, result.stderr
    assert Path(args.config_path).read_bytes() == before
    assert sorted(p.name for p in Path(args.config_path).parent.iterdir()) == ["config.yaml"]
    machine.heal("borgmatic-config", how="hang")
    machine.run(changed.config_step("borgmatic-config"), secrets=secrets(changed))
    assert yaml.safe_load(Path(args.config_path).read_text()) == changed.config()


def test_the_config_found_before_comes_back_on_delete(machine: Machine) -> None:
    args = machine_args(machine)
    config = Path(args.config_path)
    config.parent.mkdir(parents=True)
    config.write_text("# written by ansible\nsource_directories: [/Users/erichblume/Documents]\n")
    machine.run(args.config_step("borgmatic-config"), secrets=secrets(args))
    assert yaml.safe_load(config.read_text()) == args.config()
    machine.run(args.config_step("borgmatic-config"), "delete", secrets=secrets(args))
    assert config.read_text().startswith("# written by ansible")
    assert not (machine.home / ".pgpass").exists()


def test_agents_install_and_delete_restores_the_machine(machine: Machine) -> None:
    args = machine_args(machine)
    before = machine.tree()
    machine.run(args.config_step("borgmatic-config"), secrets=secrets(args))
    machine.run(args.agent().step("borgmatic-agent-install"))
    machine.run(args.metrics_script_step("borgmatic-metrics-script"))
    machine.run(args.metrics_agent().step("borgmatic-metrics-agent-install"))
    assert (machine.state / "launchd" / AGENT.label).exists()
    assert (machine.state / "launchd" / METRICS_AGENT.label).exists()
    assert Path(args.metrics_script_path).read_text() == args.metrics_script() + "\n"
    calls = len(machine.calls())
    machine.run(args.agent().step("borgmatic-agent-install"))
    machine.run(args.metrics_agent().step("borgmatic-metrics-agent-install"))
    assert machine.mutating_calls(since=calls) == []
    machine.run(args.metrics_agent().step("borgmatic-metrics-agent-install"), "delete")
    machine.run(args.metrics_script_step("borgmatic-metrics-script"), "delete")
    machine.run(args.agent().step("borgmatic-agent-install"), "delete")
    machine.run(args.config_step("borgmatic-config"), "delete", secrets=secrets(args))
    after = {p for p in machine.tree() if not p.startswith(("home/Library", "home/log"))}
    assert after == before


# ---- the real thing: borgmatic + borg + PostgreSQL ------------------------------------------------------


def test_backup_metrics_precondition_and_restore_drill(machine: Machine, postgres_servers: PostgresServers) -> None:
    ensure_borg()
    cluster = postgres_servers.cluster
    database = "borgmatic_drill"
    cluster.drop_database(database)
    cluster.seed_miniflux(database)
    (machine.home / "Documents").mkdir()
    (machine.home / "Documents/notes.md").write_text("the homelab's notes\n")
    (machine.home / ".borg").mkdir()
    (machine.home / ".borg/config.yaml").write_text(PASSPHRASE + "\n")
    args = machine_args(machine, postgres_servers, database)
    machine.run(args.config_step("borgmatic-config"), secrets=secrets(args))
    borgmatic(machine, args, "repo-create")
    created = time.time()
    borgmatic(machine, args, "--verbosity", "1", "create")
    (db,) = args.databases

    # the archive holds the files and the dump made by the borgmatic role through ~/.pgpass
    listing = subprocess.run([BORG, "list", "--short", f"{args.repository.path}::" + latest_archive(machine, args)],
                             capture_output=True, text=True, check=True, timeout=60,
                             env=machine_env(machine, {"BORG_PASSCOMMAND": args.repository.encryption_passcommand}))
    paths = listing.stdout.splitlines()
    assert str(machine.home / "Documents/notes.md").lstrip("/") in paths
    # borg 1.4 (Homebrew's) stores borgmatic's dumps at archive_path; Debian's 1.2 below borgmatic's runtime dir
    assert any(path == db.archive_path or path.endswith(f"/{db.archive_path}") for path in paths), paths

    # metrics: borgmatic_up, the newest archive's time and sizes
    result = run_script(machine, args.metrics_script(), "agent", {})
    assert result.returncode == 0, result.stderr
    prom = (Path(args.metrics.textfile_dir) / "borgmatic.prom").read_text()
    assert "borgmatic_up 1" in prom and "borgmatic_archive_count 1" in prom
    stamp = float(re.search(r"^borgmatic_last_archive_timestamp_seconds (\S+)$", prom, re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert created - 5 <= stamp <= time.time()
    assert int(re.search(r'kind="original"\} (\d+)', prom).group(1)) > 0  # type: ignore[union-attr]

    # the data precondition: found in a fresh archive; not when the path is absent or the archive too old
    check = args.recent_archive(db.archive_path, max_age_hours=1)
    result = run_script(machine, check.step("miniflux-backed-up").render(), "create", {})
    assert result.returncode == 0 and f"contains {db.archive_path}" in result.stderr, result.stderr
    # borg shows times in the reader's zone: another TZ does not change an archive's age
    result = run_script(machine, check.step("miniflux-backed-up").render(), "create", {"TZ": "Etc/GMT-5"})
    assert result.returncode == 0, result.stderr
    missing = args.recent_archive("borgmatic/postgresql_databases/127.0.0.1:1/nothing", 1).step("x")
    result = run_script(machine, missing.render(), "create", {})
    assert result.returncode != 0 and "run the borgmatic backup now" in result.stderr

    # the drill: the database is lost; a fresh one gets the latest archive's dump back, counts and all
    cluster.drop_database(database)
    cluster.create_database(database)
    with (machine.home / ".pgpass").open("a") as pgpass:  # the operator restores as a superuser
        pgpass.write(f"127.0.0.1:{cluster.port}:*:eblume:{pgpass_escape(EBLUME_PASSWORD)}\n")
    borgmatic(machine, args, "restore", "--archive", "latest", "--username", "eblume")
    assert cluster.row_counts(database) == ROWS


def pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def latest_archive(machine: Machine, args: BorgmaticArgs) -> str:
    result = subprocess.run([BORG, "list", "--short", "--last", "1", args.repository.path], capture_output=True,
                            text=True, check=True, timeout=60,
                            env=machine_env(machine, {"BORG_PASSCOMMAND": args.repository.encryption_passcommand}))
    return result.stdout.strip()


def test_the_precondition_refuses_an_archive_older_than_its_window(machine: Machine, tmp_path: Path) -> None:
    ensure_borg()
    (machine.home / ".borg").mkdir()
    (machine.home / ".borg/config.yaml").write_text(PASSPHRASE + "\n")
    repository = BorgRepository(f"{machine.root}/borg/", "sifaka-borg-backups",
                                f"/bin/cat {machine.home}/.borg/config.yaml")
    dump = tmp_path / "src/borgmatic/postgresql_databases/localhost:5432/miniflux"
    dump.parent.mkdir(parents=True)
    dump.write_text("-- a dump\n")
    env = machine_env(machine, {"BORG_PASSCOMMAND": repository.encryption_passcommand})
    subprocess.run([BORG, "init", "--encryption", "repokey", repository.path], env=env, check=True,
                   capture_output=True, timeout=60)
    three_hours_ago = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 3 * 3600))
    subprocess.run([BORG, "create", "--timestamp", three_hours_ago, f"{repository.path}::indri-old", "borgmatic"],
                   env=env, check=True, capture_output=True, timeout=60, cwd=tmp_path / "src")
    path = "borgmatic/postgresql_databases/localhost:5432/miniflux"
    too_old = RecentBorgmaticArchive(BORG, JQ, repository, path, max_age_hours=2).step("x")
    result = run_script(machine, too_old.render(), "create", {})
    assert result.returncode != 0 and f"newer than 2 hours contains {path}" in result.stderr
    result = run_script(machine, RecentBorgmaticArchive(BORG, JQ, repository, path, 4).step("x").render(), "create", {})
    assert result.returncode == 0 and "archive indri-old" in result.stderr, result.stderr


def test_metrics_say_down_when_the_repository_cannot_be_read(machine: Machine) -> None:
    ensure_borg()
    args = machine_args(machine)  # no repository at the machine's borg/
    result = run_script(machine, args.metrics_script(), "agent", {})
    assert result.returncode == 0 and "could not read" in result.stderr
    textfile = Path(args.metrics.textfile_dir) / "borgmatic.prom"
    assert "borgmatic_up 0" in textfile.read_text() and "last_archive" not in textfile.read_text()
    assert [p.name for p in textfile.parent.iterdir()] == ["borgmatic.prom"]


def test_rendered_scripts_pass_shellcheck(machine: Machine, tmp_path: Path) -> None:
    args = indri_args()
    import_step = LegacyDatabaseImportArgs(
        host=args.host, pg_dump=args.pg_dump, pg_restore=args.pg_restore, psql=args.psql,
        source=PostgresEndpoint("localhost", 5432, "eblume", "miniflux"),
        target=PostgresEndpoint("k8s-pg.tail8d86e.ts.net", 5432, "eblume", "miniflux"), owner="miniflux",
        dump_dir=f"{HOME}/backups/postgres", target_password=object(),  # type: ignore[arg-type]
    ).step("miniflux-import-restore")
    scripts = {
        "config": args.config_step("borgmatic-config").render({"PGPASS_LINES": args.pgpass_lines("pw")}),
        "metrics": args.metrics_script(),
        "check": args.recent_archive("borgmatic/postgresql_databases/localhost:5432/miniflux").step("c").render(),
        "import": import_step.render({"TARGET_PASSWORD": "pw"}),
    }
    paths = []
    for name, text in scripts.items():
        path = tmp_path / f"{name}.sh"
        path.write_text(text)
        paths.append(str(path))
    result = subprocess.run([str(Path(sys.executable).parent / "shellcheck"), "--severity=style", *paths],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_precondition_embeds_in_another_script() -> None:
    function = RecentBorgmaticArchive.shell_function()
    assert function.startswith("# ---- components/host/scripts/borgmatic-archive-check.sh")
    assert "require_recent_archive() {" in function and "run_action" not in function
    # the embedding step's stdin carries the lib.sh helpers the function calls (chosen by name)
    helpers = library_for(function)
    for helper in ("log", "die", "bounded", "blumeops_tmpdir"):
        assert f"\n{helper}() {{" in helpers, helper
    assert set(indri_args().recent_archive("borgmatic/x").variables()) == {
        "ARCHIVE_BORG", "ARCHIVE_JQ", "ARCHIVE_REPOSITORY", "ARCHIVE_PASSCOMMAND", "ARCHIVE_PATH",
        "ARCHIVE_MAX_AGE_HOURS"}


# ---- both phase-3 components under Pulumi's mock engine -------------------------------------------------

FAKE_PASSWORDS = ("borgmatic-fake-plan-pw-1e9f", "eblume-fake-plan-pw-8c0b")
MOCK_PROGRAM = f'''
import dataclasses

import pulumi

from components.host import Borgmatic, LegacyDatabaseImport, LegacyDatabaseImportArgs, PostgresEndpoint
from tests.host.test_borgmatic import HOME, indri_args

args = dataclasses.replace(indri_args(), borgmatic_password=pulumi.Output.secret("{FAKE_PASSWORDS[0]}"))
Borgmatic("borgmatic", args)
LegacyDatabaseImport("miniflux-import", LegacyDatabaseImportArgs(
    host=args.host, pg_dump=args.pg_dump, pg_restore=args.pg_restore, psql=args.psql,
    source=PostgresEndpoint("localhost", 5432, "eblume", "miniflux"),
    target=PostgresEndpoint("k8s-pg.tail8d86e.ts.net", 5432, "eblume", "miniflux"), owner="miniflux",
    dump_dir=HOME + "/backups/postgres", target_password=pulumi.Output.secret("{FAKE_PASSWORDS[1]}")))
'''


def test_components_register_secret_steps_and_leak_no_password(tmp_path: Path) -> None:
    from ops.engine import harness
    from ops.plan import SECRET, redact

    (tmp_path / "__main__.py").write_text(MOCK_PROGRAM)
    run = harness.run_program(tmp_path, "blumeops", "indri", {}, [])
    resources = {r.name: r for r in run.registrations if not r.type.startswith("pulumi:")}
    assert resources["borgmatic"].type == "blumeops:host:Borgmatic"
    assert resources["miniflux-import"].type == "blumeops:host:LegacyDatabaseImport"
    expected_steps = {"borgmatic-config", "borgmatic-agent-install", "borgmatic-metrics-script",
                      "borgmatic-metrics-agent-install", "miniflux-import-restore"}
    steps = {name: r for name, r in resources.items() if r.type == "command:remote:Command"}
    assert set(steps) == expected_steps
    for name in ("borgmatic-config", "miniflux-import-restore"):
        assert steps[name].wire_inputs["stdin"][harness.SIG_KEY] == harness.SECRET_SIG
        assert redact(steps[name].wire_inputs)["logging"] == "none"
    agent = resources["borgmatic-agent"]
    assert agent.depends_on and steps["borgmatic-config"].urn in agent.depends_on
    plan_form = json.dumps([redact(r.wire_inputs) for r in run.registrations])
    for password in FAKE_PASSWORDS:
        assert password not in plan_form
    for step in steps.values():
        assert step.wire_inputs["create"].endswith("-s -- create") and step.wire_inputs["delete"].endswith("-- delete")
    artifacts = {**redact(resources["borgmatic"].wire_inputs)["artifacts"],
                 **redact(resources["miniflux-import"].wire_inputs)["artifacts"]}
    # the steps' scripts are rendered by ops plan from their stdin; the components carry only their data files
    assert set(artifacts) == {"host/borgmatic/config.yaml", "host/postgres/miniflux-import-checks.txt"}
    assert "exact row counts" in artifacts["host/postgres/miniflux-import-checks.txt"]
    assert SECRET not in artifacts["host/borgmatic/config.yaml"]


def test_a_hung_borg_stops_the_metrics_run_and_keeps_the_last_gauges(machine: Machine) -> None:
    """borg never returns (a wrapper that sleeps): killed at its lock wait plus BLUMEOPS_CHANGE (1 + 2 s here);
    the run fails saying so, borgmatic.prom keeps its last content: a hang is never written as borgmatic_up 0."""
    ensure_borg()
    args = machine_args(machine, metrics_lock_wait_seconds=1)
    assert run_script(machine, args.metrics_script(), "agent", {}).returncode == 0
    textfile = Path(args.metrics.textfile_dir) / "borgmatic.prom"
    before = textfile.read_bytes()
    hanging = machine.bin / "hanging-borg"
    hanging.write_text("#!/bin/sh\nexec sleep 3600\n")
    hanging.chmod(0o755)
    hung = machine_args(machine, borg=str(hanging), metrics_lock_wait_seconds=1)
    started = time.monotonic()
    result = run_script(machine, quick(hung.metrics_script()), "agent", {})
    assert time.monotonic() - started < 15
    assert result.returncode != 0 and "did not finish within 3s: killed" in result.stderr, result.stderr
    assert textfile.read_bytes() == before
    assert [p.name for p in textfile.parent.iterdir()] == ["borgmatic.prom"]


def test_the_nightly_pg_dump_is_checked_against_each_server_that_answers(
        machine: Machine, postgres_servers: PostgresServers, postgres18_servers: PostgresServers) -> None:
    """Issue 19: pg_dump 15 cannot dump PostgreSQL 18 (the homelab's major on both sides): the config step
    fails naming blumeops:tools.pgDump, before the first nightly run would; the right tools pass; a server
    that does not answer (the brew PostgreSQL while a rollback restores it) is a warning, not a failure."""
    cluster = postgres18_servers.cluster
    database = "borgmatic_versions"
    cluster.drop_database(database)
    cluster.seed_miniflux(database)
    answering = BorgmaticDatabase(database, "127.0.0.1", cluster.port)
    silent = BorgmaticDatabase(database, "127.0.0.1", free_port())
    old_tools = machine_args(machine, postgres_servers, databases=(answering,))
    result = machine.run(old_tools.config_step("borgmatic-config"), secrets=secrets(old_tools), check=False)
    assert result.returncode != 0
    assert "is PostgreSQL 15, older than borgmatic_versions on 127.0.0.1" in result.stderr
    assert "(PostgreSQL 18)" in result.stderr and "blumeops:tools.pgDump" in result.stderr
    right = machine_args(machine, postgres18_servers, databases=(silent, answering))
    result = machine.run(right.config_step("borgmatic-config"), secrets=secrets(right))
    assert f"pg_dump 18 for {database} on 127.0.0.1:{cluster.port} (PostgreSQL 18)" in result.stderr
    assert f"WARNING: {database} on 127.0.0.1:{silent.port} does not answer" in result.stderr
