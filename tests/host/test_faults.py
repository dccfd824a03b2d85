"""Every host step that writes, against real file-system faults: a tmpfs filled to the brim and a read-only
bind mount over the directory it writes. Each must exit non-zero with a message that says what happened,
leave the old file exactly as it was, and complete the work on the next run once the fault is gone.

The faults are real mounts, so these tests need root (CI and the test machine run as root); elsewhere they
are skipped with that reason."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components import health
from components.host import BorgRepository, HostStep, MinikubeDockerClusterArgs, RegistryMirror, ZotRegistryArgs
from components.host.check_agent import host_probe_step
from components.host.script import SCRIPTS_DIR
from tests.host.conftest import UPSTREAMS, Machine
from tests.host.test_borgmatic import ensure_borg, machine_args, secrets
from tests.host.test_minikube_scripts import write_profile
from tests.host.test_pg_import import databases, import_args, run_import  # noqa: F401 (databases: a fixture)
from tests.host.test_retire import LABEL, agent_args, load_agent, serve, stub_records
from tests.servers.postgres import ROWS, PostgresServers
from tests.tailnet.test_release import ALLOCATED_IPV6, GRAFANA, FakeTailscaleApi, api, curl_machine, release_args  # noqa: F401
from tests.tailnet.test_release import run as release_run


class Mounts:
    def __init__(self) -> None:
        self.targets: list[Path] = []

    def _mount(self, *args: str) -> None:
        result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot mount here ({result.stderr.strip()}): the fault tests need CAP_SYS_ADMIN")

    def full_tmpfs(self, target: Path) -> None:
        """A 256 KiB tmpfs at ``target`` (empty: call before the first write)."""
        target.mkdir(parents=True, exist_ok=True)
        self._mount("-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(target))
        self.targets.append(target)

    @staticmethod
    def fill(target: Path) -> Path:
        """Fill the tmpfs at ``target`` to the brim; returns the filler (remove it to heal)."""
        filler = target / ".filler"
        descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(descriptor, b"\0" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(descriptor)
        return filler

    def read_only(self, target: Path) -> None:
        self._mount("--bind", str(target), str(target))
        self.targets.append(target)
        self._mount("-o", "remount,bind,ro", str(target))

    def release(self, target: Path) -> None:
        subprocess.run(["umount", str(target)], check=True)
        self.targets.remove(target)


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    if os.geteuid() != 0:
        pytest.skip("the fault tests mount a tmpfs and read-only binds: they need root (CI runs them as root)")
    found = Mounts()
    yield found
    for target in reversed(found.targets):
        subprocess.run(["umount", "-l", str(target)], check=False)


@dataclass(frozen=True)
class Case:
    """A step run twice: ``old`` writes ``path`` (inside ``directory``), ``new`` must change it."""

    old: Callable[[Machine], str]  # runs the old step; returns the action the step is run with
    new: Callable[[Machine], HostStep | str]  # a step, or a script text run with ``agent``
    path: Callable[[Machine], Path]
    directory: Callable[[Machine], Path]
    prepare: Callable[[Machine], None] = lambda machine: None
    secrets: Callable[[Machine], dict[str, str]] = lambda machine: {}


def _run(machine: Machine, what: HostStep | str, check: bool = True,
         step_secrets: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if isinstance(what, str):
        return machine.run_text(what, "agent", check=check)
    return machine.run(what, secrets=step_secrets, check=check)


def _zot_config(machine: Machine) -> str:
    machine.run(machine.zot_args().config_step("zot-config"))
    return "create"


def _agent(machine: Machine) -> str:
    machine.run(machine.zot_args().agent().step("zot-agent-install"))
    return "create"


def _install(machine: Machine) -> str:
    machine.run(machine.zot_args().metrics_script_step("zot-metrics-script"))
    return "create"


def _zot_metrics(machine: Machine) -> str:
    machine.run_text(machine.zot_args().metrics_script(), "agent")
    return "agent"


def _minikube_metrics(machine: Machine) -> str:
    machine.run_text(machine.cluster_args().metrics_script(), "agent")
    return "agent"


def _cluster(machine: Machine) -> str:
    machine.run(machine.cluster_args().cluster_step("minikube-cluster"))
    return "create"


def _borgmatic_config(machine: Machine) -> str:
    args = machine_args(machine)
    machine.run(args.config_step("borgmatic-config"), secrets=secrets(args))
    return "create"


def _borgmatic_metrics(machine: Machine) -> str:
    """The real borg, which finds no repository at the machine's borg/: borgmatic_up 0."""
    ensure_borg()
    machine.run_text(machine_args(machine).metrics_script(), "agent")
    return "agent"


def _other_repository(machine: Machine) -> str:
    """The metrics script of another repository (its path is in borgmatic_up's HELP line)."""
    repository = BorgRepository(f"{machine.root}/borg2/", "sifaka-borg-backups",
                                f"/bin/cat {machine.home}/.borg/config.yaml")
    return machine_args(machine, repository=repository).metrics_script()


def _zot_running(machine: Machine) -> ZotRegistryArgs:
    """zot answers from now on (the stub curl answers while its agent is loaded): zot_up changes to 1."""
    (machine.state / "launchd").mkdir(exist_ok=True)
    (machine.state / "launchd/mcquack.eblume.zot").touch()
    return machine.zot_args()


def _cluster_running(machine: Machine) -> MinikubeDockerClusterArgs:
    """The cluster runs from now on: minikube_up changes to 1."""
    write_profile(machine, status="Running")
    return machine.cluster_args()


def _probes(machine: Machine, *paths: str) -> str:
    """The check agent's script with textfile checks of ``paths``; it writes blumeops-check.prom."""
    target = health.SshTarget.of(machine.host())
    checks = [health.Textfile(target, str(machine.home / path), 180, "writer") for path in paths]
    return host_probe_step("blumeops-check", checks, str(machine.home / "textfile/blumeops-check.prom")).render()


def _check_agent(machine: Machine) -> str:
    machine.run_text(_probes(machine, "a.prom"), "agent")
    return "agent"


MOVED_DOCKER_HUB = (RegistryMirror("docker.io", "https://mirror.gcr.io"), *UPSTREAMS[1:])


CASES = {
    "zot-config": Case(
        old=_zot_config,
        new=lambda m: m.zot_args(log_level="debug").config_step("zot-config"),
        path=lambda m: Path(m.zot_args().config_path),
        directory=lambda m: Path(m.zot_args().config_dir),
    ),
    "launch-agent": Case(
        old=_agent,
        new=lambda m: dataclasses.replace(m.zot_args(log_dir=str(m.home / "zot-logs")).agent(),
                                          retry_delay_seconds=0).step("zot-agent-install"),
        path=lambda m: Path(m.zot_args().agent().plist_path),
        directory=lambda m: Path(m.zot_args().agent().plist_path).parent,
    ),
    "install-file": Case(
        old=_install,
        new=lambda m: m.zot_args(port=5051).metrics_script_step("zot-metrics-script"),
        path=lambda m: Path(m.zot_args().metrics_script_path),
        directory=lambda m: Path(m.zot_args().metrics_script_path).parent,
    ),
    "zot-metrics agent": Case(
        old=_zot_metrics,
        new=lambda m: _zot_running(m).metrics_script(),
        path=lambda m: m.home / "textfile/zot.prom",
        directory=lambda m: m.home / "textfile",
    ),
    "minikube-metrics agent": Case(
        old=_minikube_metrics,
        new=lambda m: _cluster_running(m).metrics_script(),
        path=lambda m: m.home / "textfile/minikube.prom",
        directory=lambda m: m.home / "textfile",
    ),
    "borgmatic-config": Case(
        old=_borgmatic_config,
        new=lambda m: machine_args(m, source_directories=(str(m.home / "Pictures"),)).config_step("borgmatic-config"),
        path=lambda m: Path(machine_args(m).config_path),
        directory=lambda m: Path(machine_args(m).config_dir),
        secrets=lambda m: secrets(machine_args(m)),
    ),
    "borgmatic-metrics agent": Case(
        old=_borgmatic_metrics,
        new=_other_repository,
        path=lambda m: m.home / "textfile/borgmatic.prom",
        directory=lambda m: m.home / "textfile",
    ),
    "health-probes agent": Case(
        old=_check_agent,
        new=lambda m: _probes(m, "a.prom", "b.prom"),
        path=lambda m: m.home / "textfile/blumeops-check.prom",
        directory=lambda m: m.home / "textfile",
    ),
    "minikube-cluster": Case(
        old=_cluster,
        new=lambda m: m.cluster_args(upstreams=MOVED_DOCKER_HUB).cluster_step("minikube-cluster"),
        path=lambda m: Path(m.cluster_args().mirror_path("docker.io")),
        directory=lambda m: Path(m.cluster_args().mirror_path("docker.io")).parent,
        prepare=lambda m: write_profile(m, status="Running"),
    ),
}


# Every script of components/host/scripts that writes a file (through lib.sh's checked writes) -> the fault
# test that runs it with a full and a read-only target: a new file-writing script must join (the test below
# names it).
FAULT_TESTED = {
    "zot-config": "CASES", "launch-agent": "CASES", "install-file": "CASES", "zot-metrics": "CASES",
    "minikube-metrics": "CASES", "borgmatic-config": "CASES", "borgmatic-metrics": "CASES",
    "minikube-cluster": "CASES", "health-probes": "CASES",
    "retire": "test_retire_stops_nothing_when_its_record_cannot_be_written",
    "retire-tailscale-service": "test_release_deletes_nothing_when_the_definition_cannot_be_kept",
    "pg-import": "test_pg_import_restores_nothing_when_the_dump_cannot_be_written",
    # beside the step's own tests, which share its registry and devpi fixtures
    "devpi-export": "test_devpi_export.py::test_a_full_or_read_only_work_dir_exports_nothing",
}
WRITES = re.compile(r"\b(stage_file|commit_file|replace_if_changed|stage_copy)\b")


def test_every_script_that_writes_files_has_a_fault_test() -> None:
    scripts = sorted(path for path in SCRIPTS_DIR.glob("*.sh")
                     if path.stem != "lib" and WRITES.search(path.read_text()))
    missing = [path.stem for path in scripts if path.stem not in FAULT_TESTED]
    assert missing == [], (
        f"{', '.join(f'components/host/scripts/{name}.sh' for name in missing)} write files but have no fault "
        "test: add a Case to CASES in tests/host/test_faults.py (or a test of its own) and the script to FAULT_TESTED")
    for name, test in FAULT_TESTED.items():
        where, _, function = test.rpartition("::")
        source = (Path(__file__).parent / where if where else Path(__file__)).read_text()
        assert test == "CASES" or f"def {function}(" in source, f"{name}: no test {test}"
    assert set(FAULT_TESTED) <= {path.stem for path in scripts}, "a listed script no longer writes files"


def _check_failed_and_intact(machine: Machine, result: subprocess.CompletedProcess[str], path: Path,
                             before: bytes) -> None:
    assert result.returncode != 0, result.stderr
    assert "ERROR:" in result.stderr and ("full" in result.stderr or "read-only" in result.stderr), result.stderr
    assert str(path.parent) in result.stderr
    assert path.read_bytes() == before  # the old file, exactly
    assert "wrote " + str(path) not in result.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_full_file_system_fails_the_step_and_the_next_run_completes(machine: Machine, mounts: Mounts,
                                                                    name: str) -> None:
    case = CASES[name]
    case.prepare(machine)
    directory = case.directory(machine)
    mounts.full_tmpfs(directory)
    case.old(machine)
    path = case.path(machine)
    before = path.read_bytes()
    new, step_secrets = case.new(machine), case.secrets(machine)
    filler = mounts.fill(directory)
    result = _run(machine, new, check=False, step_secrets=step_secrets)
    _check_failed_and_intact(machine, result, path, before)
    assert sorted(p.name for p in directory.iterdir() if p.name.startswith(".blumeops-new")) == []
    filler.unlink()
    _run(machine, new, step_secrets=step_secrets)
    assert path.read_bytes() != before
    calls = len(machine.calls())
    _run(machine, new, step_secrets=step_secrets)  # and then it is settled
    assert machine.mutating_calls(since=calls) == []


@pytest.mark.parametrize("name", sorted(CASES))
def test_read_only_directory_fails_the_step_and_the_next_run_completes(machine: Machine, mounts: Mounts,
                                                                       name: str) -> None:
    case = CASES[name]
    case.prepare(machine)
    case.old(machine)
    path, directory = case.path(machine), case.directory(machine)
    before = path.read_bytes()
    new, step_secrets = case.new(machine), case.secrets(machine)
    mounts.read_only(directory)
    result = _run(machine, new, check=False, step_secrets=step_secrets)
    _check_failed_and_intact(machine, result, path, before)
    mounts.release(directory)
    _run(machine, new, step_secrets=step_secrets)
    assert path.read_bytes() != before


def test_a_full_disk_under_the_mirrors_leaves_the_node_copy_pending(machine: Machine, mounts: Mounts) -> None:
    """The mirror file could not be written: nothing was copied into the node, and once there is room the
    next run writes it and copies it in."""
    write_profile(machine, status="Running")
    args = machine.cluster_args()
    directory = Path(args.mirror_path("docker.io")).parent
    mounts.full_tmpfs(directory)
    machine.run(args.cluster_step("minikube-cluster"))
    filler = mounts.fill(directory)
    moved = machine.cluster_args(upstreams=MOVED_DOCKER_HUB)
    assert machine.run(moved.cluster_step("minikube-cluster"), check=False).returncode != 0
    node = machine.state / "node/etc/containerd/certs.d/docker.io/hosts.toml"
    assert "registry-1.docker.io" in node.read_text()
    filler.unlink()
    machine.run(moved.cluster_step("minikube-cluster"))
    assert "mirror.gcr.io" in node.read_text()


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_no_backup_no_write_a_file_the_program_did_not_write_stays(machine: Machine, mounts: Mounts,
                                                                   fault: str) -> None:
    """The backup of a pre-existing file (~/.blumeops/adopted) cannot be written: the step stops before it
    touches that file; once there is room the next run backs it up, writes, and delete puts it back."""
    agent = machine.zot_args().agent()
    plist = Path(agent.plist_path)
    plist.parent.mkdir(parents=True)
    theirs = "<?xml version='1.0'?><plist><dict><key>Label</key><string>theirs</string></dict></plist>\n"
    plist.write_text(theirs)
    records = machine.home / ".blumeops/adopted"
    records.mkdir(parents=True)
    if fault == "full":
        mounts.full_tmpfs(records)
        filler = mounts.fill(records)
    else:
        mounts.read_only(records)
    result = machine.run(agent.step("zot-agent-install"), check=False)
    assert result.returncode != 0, result.stderr
    assert "ERROR: cannot back up" in result.stderr and "nothing changed" in result.stderr, result.stderr
    assert plist.read_text() == theirs
    assert machine.mutating_calls() == []
    if fault == "full":
        filler.unlink()
    else:
        mounts.release(records)
    machine.run(agent.step("zot-agent-install"))
    assert plist.read_text() == agent.plist() + "\n"
    machine.run(agent.step("zot-agent-install"), "delete")
    assert plist.read_text() == theirs


# ---- the steps of phases 2 and 3: their records and dumps under faults ------------------------------------


def _fault(mounts: Mounts, target: Path, fault: str) -> Callable[[], None]:
    """Put ``fault`` (full: a brimming tmpfs; read-only: a read-only bind) on the directory ``target``;
    returns what heals it."""
    if fault == "full":
        mounts.full_tmpfs(target)
        filler = mounts.fill(target)
        return filler.unlink
    target.mkdir(parents=True, exist_ok=True)
    mounts.read_only(target)
    return lambda: mounts.release(target)


def _failed_clearly(result: subprocess.CompletedProcess[str], directory: Path) -> None:
    assert result.returncode != 0, result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR:" in line]
    assert len(errors) == 1, result.stderr
    assert ("full" in errors[0] or "read-only" in errors[0]) and str(directory) in errors[0], result.stderr


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_retire_stops_nothing_when_its_record_cannot_be_written(machine: Machine, mounts: Mounts,
                                                                fault: str) -> None:
    """The record under ~/.local/state/blumeops cannot be written: the agent stays loaded, its plist and serve
    entry stay; healed, the next run retires it and the delete restores everything."""
    load_agent(machine)
    serve(machine, "svc:pypi", "https 443 http://127.0.0.1:3141")
    before = stub_records(machine)
    args = agent_args(machine)
    records = Path(args.record_dir).parent  # the step removes record_dir itself on delete: not a mount point
    heal = _fault(mounts, records, fault)
    result = machine.run(args.step("devpi-retire"), check=False)
    _failed_clearly(result, records)
    assert stub_records(machine) == before and machine.mutating_calls() == []
    heal()
    machine.run(args.step("devpi-retire"))
    assert not (machine.state / "launchd" / LABEL).exists()
    machine.run(args.step("devpi-retire"), "delete")
    assert stub_records(machine) == before


def test_retire_with_read_only_launch_agents_keeps_the_plist_and_the_next_run_completes(
        machine: Machine, mounts: Mounts) -> None:
    """The plist cannot be removed (~/Library/LaunchAgents read-only): the step fails saying so, the plist is
    intact and a copy is kept in the record; healed, the next run finishes the retirement."""
    plist = load_agent(machine)
    before_plist = plist.read_bytes()
    args = agent_args(machine)
    mounts.read_only(plist.parent)
    result = machine.run(args.step("devpi-retire"), check=False)
    _failed_clearly(result, plist.parent)
    assert plist.read_bytes() == before_plist
    assert Path(args.record_dir, "agent.plist").read_bytes() == before_plist
    mounts.release(plist.parent)
    machine.run(args.step("devpi-retire"))
    assert not plist.exists()
    machine.run(args.step("devpi-retire"), "delete")
    assert plist.read_bytes() == before_plist


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_release_deletes_nothing_when_the_definition_cannot_be_kept(
        curl_machine: Machine, api: FakeTailscaleApi, mounts: Mounts, fault: str) -> None:  # noqa: F811 (fixtures)
    api.services["svc:grafana"] = json.dumps(GRAFANA).encode()
    args = release_args(curl_machine, api)
    released = Path(args.state_dir).parent
    heal = _fault(mounts, released, fault)
    result = release_run(curl_machine, args, check=False)
    _failed_clearly(result, released)
    assert "svc:grafana" in api.services and api.service_calls() == ["GET"], "no DELETE without a kept copy"
    heal()
    release_run(curl_machine, args)
    assert "svc:grafana" not in api.services
    release_run(curl_machine, args, "delete")
    assert json.loads(api.services["svc:grafana"]) == {**GRAFANA, "addrs": ["100.100.1.7", ALLOCATED_IPV6]}


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_pg_import_restores_nothing_when_the_dump_cannot_be_written(
        machine: Machine, mounts: Mounts, postgres_servers: PostgresServers,
        databases: str, fault: str) -> None:  # noqa: F811
    """The dump directory is full or read-only: pg_dump fails, nothing is restored (the target stays empty),
    an earlier dump stays as it was; healed, the next run imports and verifies."""
    args = import_args(machine, postgres_servers, databases)
    backups = Path(args.dump_dir).parent
    if fault == "read-only":  # (a full tmpfs starts empty)
        Path(args.dump_dir).mkdir(parents=True, mode=0o700)
        Path(args.dump_dir, "earlier.dump").write_bytes(b"PGDMP earlier")
    heal = _fault(mounts, backups, fault)
    result = run_import(machine, args, check=False)
    _failed_clearly(result, Path(args.dump_dir))
    assert postgres_servers.cluster.row_counts(databases) == {}
    if fault == "read-only":
        assert Path(args.dump_dir, "earlier.dump").read_bytes() == b"PGDMP earlier"
    heal()
    result = run_import(machine, args)
    assert f"imported and verified: {databases}" in result.stdout
    assert postgres_servers.cluster.row_counts(databases) == ROWS
    assert Path(args.imported_marker).exists()


def test_a_full_scratch_disk_is_not_written_as_an_unreadable_repository(machine: Machine, mounts: Mounts) -> None:
    """borg's answer cannot be kept (TMPDIR full): the metrics run fails saying so and borgmatic.prom keeps its
    last content, rather than claiming borgmatic_up 0; with room again the run writes the gauges."""
    scratch = machine.root / "tmp"
    mounts.full_tmpfs(scratch)
    _borgmatic_metrics(machine)
    textfile = machine.home / "textfile/borgmatic.prom"
    before = textfile.read_bytes()
    filler = mounts.fill(scratch)
    result = machine.run_text(_other_repository(machine), "agent", check=False)
    _failed_clearly(result, scratch)
    assert "cannot write scratch files" in result.stderr and "borgmatic_up" not in result.stderr
    assert textfile.read_bytes() == before
    filler.unlink()
    machine.run_text(_other_repository(machine), "agent")
    assert textfile.read_bytes() != before and b"borgmatic_up 0" in textfile.read_bytes()
