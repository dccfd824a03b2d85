"""MinikubeDockerCluster's steps and agent scripts, rendered exactly as the program renders them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from components.host.borgmatic import BorgRepository
from components.host.minikube import (
    ALLOW_REPLACE_KEY,
    CONFIRM_ARCHIVE_KEY,
    MANAGED_MARK,
    ClusterBackup,
    MinikubeDockerClusterArgs,
)
from tests.host.conftest import UPSTREAMS, Machine

# Tests that make real borg repositories (borg init, create: a second or more each) run in `make test`, not in the
# edit loop (`make test-fast`: in-process and stub-toolbox tests only).
REAL_BORG = pytest.mark.slow


def write_profile(machine: Machine, driver: str = "docker", runtime: str = "containerd", status: str = "Running",
                  cpus: int = 6, memory: int = 11264, disk: int = 204800) -> None:
    config = machine.home / ".minikube/profiles/minikube/config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"Name": "minikube", "Driver": driver, "CPUs": cpus, "Memory": memory,
                                  "DiskSize": disk, "KubernetesConfig": {"ContainerRuntime": runtime}}))
    (machine.state / "minikube").mkdir(exist_ok=True)
    (machine.state / "minikube/minikube.status").write_text(status + "\n")
    (machine.state / "minikube/minikube.port").write_text("39535\n")


def serve_target(machine: Machine) -> list[str]:
    return (machine.state / "serve" / "svc:k8s").read_text().split()


def create_cluster(machine: Machine, **changes: object) -> None:
    args = machine.cluster_args(**changes)
    machine.run(args.cluster_step("minikube-cluster"))
    machine.run(args.api_serve_script("minikube-api-serve"))
    machine.run(args.install_step("minikube-api-serve-script", args.api_serve_script_path,
                                  args.api_serve_script().render()))
    machine.run(args.api_serve_agent().step("minikube-api-serve-agent-install"))
    machine.run(args.install_step("minikube-metrics-script", args.metrics_script_path, args.metrics_script()))
    machine.run(args.metrics_agent().step("minikube-metrics-agent-install"))


def test_first_run_starts_the_cluster_with_the_mirrors(machine: Machine) -> None:
    create_cluster(machine)
    args = machine.cluster_args()
    starts = [call for call in machine.calls() if call.startswith("minikube start")]
    assert starts == ["minikube start --profile=minikube " + " ".join(args.start_flags())]
    assert "--container-runtime=containerd" in starts[0] and "--driver=docker" in starts[0]
    for registry, toml in args.mirrors().items():
        assert Path(args.mirror_path(registry)).read_text() == toml
        # file sync copied it into the node before containerd started
        assert (machine.state / f"node/etc/containerd/certs.d/{registry}/hosts.toml").read_text() == toml
    assert serve_target(machine) == ["tcp", "443", "tcp://localhost:40001"]
    assert (machine.state / "launchd/mcquack.eblume.k8s-api-serve").exists()
    assert (machine.state / "launchd/mcquack.eblume.minikube-metrics").exists()


def test_second_run_changes_nothing(machine: Machine) -> None:
    create_cluster(machine)
    before, calls = machine.files(), len(machine.calls())
    create_cluster(machine)
    assert machine.mutating_calls(since=calls) == []
    assert machine.files() == before


def test_running_profile_is_not_restarted(machine: Machine) -> None:
    write_profile(machine, status="Running")
    machine.run(machine.cluster_args().cluster_step("minikube-cluster"))
    assert [c for c in machine.calls() if c.startswith("minikube start")] == []
    # mirrors changed under a running node: copied in with `minikube cp` (no containerd restart needed)
    cps = [c for c in machine.calls() if " cp " in c]
    assert len(cps) == len(machine.cluster_args().mirrors())


def test_stopped_profile_is_started(machine: Machine) -> None:
    write_profile(machine, status="Stopped")
    machine.run(machine.cluster_args().cluster_step("minikube-cluster"))
    assert len([c for c in machine.calls() if c.startswith("minikube start")]) == 1
    assert (machine.state / "minikube/minikube.status").read_text().strip() == "Running"


def test_wrong_driver_is_refused_with_instructions(machine: Machine) -> None:
    write_profile(machine, driver="podman", runtime="cri-o")
    result = machine.run(machine.cluster_args().cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0
    assert "'podman' driver" in result.stderr and "allowReplace" in result.stderr and "back up" in result.stderr
    assert machine.mutating_calls() == []


def test_resource_mismatch_is_a_clear_refusal(machine: Machine) -> None:
    write_profile(machine, cpus=4, memory=7800)
    result = machine.run(machine.cluster_args().cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0
    assert "cpus=4 memory=7800MB" in result.stderr and "cannot resize" in result.stderr
    assert "minikube delete -p minikube" in result.stderr
    assert machine.mutating_calls() == []


def test_docker_desktop_down_is_a_clear_error(machine: Machine) -> None:
    (machine.state / "docker-down").touch()
    result = machine.run(machine.cluster_args().cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0 and "Docker Desktop is not running" in result.stderr and "GUI" in result.stderr
    assert not (machine.home / ".minikube/files").exists()


def test_failed_start_is_reported(machine: Machine) -> None:
    machine.fail("minikube-start")
    result = machine.run(machine.cluster_args().cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0 and "minikube start -p minikube` failed" in result.stderr


def test_api_port_change_repoints_svc_k8s(machine: Machine) -> None:
    create_cluster(machine)
    args = machine.cluster_args()
    assert serve_target(machine)[2] == "tcp://localhost:40001"
    # a restart: Docker publishes the API server on a new host port
    (machine.state / "minikube/minikube.status").write_text("Stopped\n")
    machine.run(args.cluster_step("minikube-cluster"))
    calls = len(machine.calls())
    machine.run_text(Path(args.api_serve_script_path).read_text(), "agent")  # the agent's next run
    assert serve_target(machine) == ["tcp", "443", "tcp://localhost:40002"]
    assert machine.mutating_calls(since=calls) == ["tailscale serve --service=svc:k8s --tcp=443 tcp://localhost:40002"]
    # and the step itself, run again, finds it pointed right
    calls = len(machine.calls())
    machine.run(args.api_serve_script("minikube-api-serve"))
    assert machine.mutating_calls(since=calls) == []


def test_api_serve_agent_tolerates_a_stopped_cluster_but_the_step_does_not(machine: Machine) -> None:
    write_profile(machine, status="Stopped")
    args = machine.cluster_args()
    machine.run_text(args.api_serve_script().render(), "agent")
    result = machine.run(args.api_serve_script("minikube-api-serve"), check=False)
    assert result.returncode != 0 and "is the minikube profile minikube running" in result.stderr


def test_kubeconfig_step_prints_only_the_rewritten_kubeconfig(machine: Machine) -> None:
    create_cluster(machine)
    result = machine.run(machine.cluster_args().kubeconfig_step("minikube-kubeconfig"))
    assert "server: https://k8s.tail8d86e.ts.net\n" in result.stdout
    assert "127.0.0.1" not in result.stdout
    assert "client-key-data:" in result.stdout and "certificate-authority-data:" in result.stdout
    assert result.stdout.startswith("apiVersion: v1")


def test_metrics_agent_script(machine: Machine) -> None:
    args = machine.cluster_args()
    textfile = machine.home / "textfile/minikube.prom"
    machine.run_text(args.metrics_script(), "agent")
    assert "minikube_up 0" in textfile.read_text() and "minikube_pod_count 0" in textfile.read_text()
    create_cluster(machine)
    machine.run_text(args.metrics_script(), "agent")
    text = textfile.read_text()
    for line in ("minikube_up 1", "minikube_apiserver_up 1", "minikube_node_count 1", "minikube_pod_count 3",
                 "minikube_namespace_count 4"):
        assert line in text.splitlines()


def test_delete_after_create_restores_the_machine(machine: Machine) -> None:
    before = machine.tree()
    create_cluster(machine)
    args = machine.cluster_args()
    machine.run(args.metrics_agent().step("minikube-metrics-agent-install"), "delete")
    machine.run(args.install_step("minikube-metrics-script", args.metrics_script_path, args.metrics_script()), "delete")
    machine.run(args.api_serve_agent().step("minikube-api-serve-agent-install"), "delete")
    machine.run(args.install_step("minikube-api-serve-script", args.api_serve_script_path,
                                  args.api_serve_script().render()), "delete")
    machine.run(args.api_serve_script("minikube-api-serve"), "delete")
    machine.run(args.cluster_step("minikube-cluster"), "delete")
    assert {p for p in machine.tree() if not p.startswith("home/log")} == before
    assert not (machine.home / ".minikube/files").exists()


def test_hosts_toml_map_to_zots_namespaces(machine: Machine) -> None:
    args = machine.cluster_args()
    mirrors = args.mirrors()
    assert set(mirrors) == {"docker.io", "ghcr.io", "quay.io", "registry.tail8d86e.ts.net"}
    assert all(toml.startswith(f"{MANAGED_MARK}\n") for toml in mirrors.values())
    for upstream in args.upstreams:
        parsed = tomllib.loads(mirrors[upstream.registry])
        assert parsed["server"] == upstream.url
        host = parsed["host"][f"http://host.minikube.internal:5050/v2/{upstream.registry}"]
        assert host == {"capabilities": ["pull", "resolve"], "override_path": True}
    private = tomllib.loads(mirrors["registry.tail8d86e.ts.net"])
    assert private["server"] == "http://host.minikube.internal:5050"
    assert private["host"]["http://host.minikube.internal:5050"]["capabilities"] == ["pull", "resolve", "push"]


# ---- the driver guard reads the profile or stops -------------------------------------------------------


@pytest.mark.parametrize("fault", ["plutil-extract", "empty-driver", "empty-runtime", "not-json"])
def test_unreadable_profile_stops_the_step_and_deletes_nothing(machine: Machine, fault: str) -> None:
    write_profile(machine, driver="" if fault == "empty-driver" else "docker",
                  runtime="" if fault == "empty-runtime" else "containerd")
    config = machine.home / ".minikube/profiles/minikube/config.json"
    if fault == "plutil-extract":
        machine.fail("plutil-extract")
    elif fault == "not-json":
        config.write_text('{"Name": "minikube", "Driver": "dock')
    before = config.read_bytes()
    result = machine.run(machine.cluster_args(allow_replace=True).cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0
    assert str(config) in result.stderr and "without changing the profile" in result.stderr
    assert "cannot read" in result.stderr and "(missing, null, empty or not JSON)" in result.stderr
    assert machine.mutating_calls() == []
    assert config.read_bytes() == before


def test_docker_profile_with_another_runtime_is_never_deleted(machine: Machine) -> None:
    write_profile(machine, driver="docker", runtime="docker", status="Running")
    result = machine.run(machine.cluster_args(allow_replace=True).cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0
    assert "'docker' runtime" in result.stderr and "never deletes a docker profile" in result.stderr
    assert machine.mutating_calls() == []


def test_only_known_legacy_drivers_are_replaced(machine: Machine) -> None:
    write_profile(machine, driver="krunkit")
    result = machine.run(machine.cluster_args(allow_replace=True).cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0 and "'krunkit' driver, which this step does not replace" in result.stderr
    assert "podman qemu2" in result.stderr
    assert machine.mutating_calls() == []


# ---- mirrors: the program removes what it drops, and only what it wrote --------------------------------


def node_mirror(machine: Machine, registry: str) -> Path:
    return machine.state / f"node/etc/containerd/certs.d/{registry}/hosts.toml"


def operator_mirror(machine: Machine) -> Path:
    path = machine.home / ".minikube/files/etc/containerd/certs.d/mirror.example.org/hosts.toml"
    path.parent.mkdir(parents=True)
    path.write_text('server = "https://mirror.example.org"\n')
    return path


def test_dropped_upstream_is_removed_from_the_file_sync_and_the_node(machine: Machine) -> None:
    machine.run(machine.cluster_args().cluster_step("minikube-cluster"))  # the cluster step only
    args = machine.cluster_args(upstreams=UPSTREAMS[:2])
    dropped = Path(args.mirror_path("quay.io"))
    assert dropped.exists() and node_mirror(machine, "quay.io").exists()
    calls = len(machine.calls())
    machine.run(args.cluster_step("minikube-cluster"))
    assert not dropped.exists() and not dropped.parent.exists()
    assert not node_mirror(machine, "quay.io").exists() and not node_mirror(machine, "quay.io").parent.exists()
    for registry in args.mirrors():
        assert Path(args.mirror_path(registry)).exists() and node_mirror(machine, registry).exists()
    assert machine.mutating_calls(since=calls) == [
        "minikube -p minikube ssh -- sudo rm -f /etc/containerd/certs.d/quay.io/hosts.toml",
        "minikube -p minikube ssh -- sudo rmdir --ignore-fail-on-non-empty /etc/containerd/certs.d/quay.io",
    ]
    calls = len(machine.calls())
    machine.run(args.cluster_step("minikube-cluster"))
    assert machine.mutating_calls(since=calls) == []


def test_dropped_upstream_of_a_stopped_cluster_leaves_the_node_after_the_start(machine: Machine) -> None:
    machine.run(machine.cluster_args().cluster_step("minikube-cluster"))  # the cluster step only
    (machine.state / "minikube/minikube.status").write_text("Stopped\n")
    args = machine.cluster_args(upstreams=UPSTREAMS[:2])
    machine.run(args.cluster_step("minikube-cluster"))
    # the file sync never deletes: the start kept the old file in the node until the step removed it
    assert not node_mirror(machine, "quay.io").exists()
    assert not Path(args.mirror_path("quay.io")).exists()


def test_failed_node_removal_is_retried_by_the_next_run(machine: Machine) -> None:
    machine.run(machine.cluster_args().cluster_step("minikube-cluster"))  # the cluster step only
    args = machine.cluster_args(upstreams=UPSTREAMS[:2])
    machine.fail("minikube-ssh")
    result = machine.run(args.cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0 and "next run retries" in result.stderr
    assert Path(args.mirror_path("quay.io")).exists()  # still known as stale
    machine.heal("minikube-ssh")
    machine.run(args.cluster_step("minikube-cluster"))
    assert not node_mirror(machine, "quay.io").exists() and not Path(args.mirror_path("quay.io")).exists()


def test_operators_own_hosts_toml_survives_create_update_and_delete(machine: Machine) -> None:
    mine = operator_mirror(machine)
    machine.run(machine.cluster_args().cluster_step("minikube-cluster"))  # the cluster step only
    args = machine.cluster_args(upstreams=UPSTREAMS[:2])
    machine.run(args.cluster_step("minikube-cluster"))
    assert mine.read_text() == 'server = "https://mirror.example.org"\n'
    # delete runs with the newest stdin: it removes every managed file, even of registries it no longer lists
    (machine.home / ".minikube/files/etc/containerd/certs.d/quay.io").mkdir()
    Path(args.mirror_path("quay.io")).write_text(machine.cluster_args().mirrors()["quay.io"])
    machine.run(args.cluster_step("minikube-cluster"), "delete")
    assert mine.read_text() == 'server = "https://mirror.example.org"\n'
    certs_d = machine.home / ".minikube/files/etc/containerd/certs.d"
    assert sorted(p.relative_to(certs_d).as_posix() for p in certs_d.rglob("*")) == [
        "mirror.example.org", "mirror.example.org/hosts.toml"]


@REAL_BORG
def test_agents_path_comes_from_the_tool_paths(machine: Machine) -> None:
    args = machine.cluster_args()
    for agent in (args.api_serve_agent(), args.metrics_agent()):
        path = agent.environment_variables["PATH"]
        assert path.startswith(f"{machine.bin}:") and path.endswith(":/usr/bin:/bin:/usr/sbin:/sbin")


# ---- replacing a legacy profile: confirmed by an archive that holds the database's dump ----------------

BORG, JQ = "/usr/bin/borg", "/usr/bin/jq"
PASSPHRASE = "borg-test-passphrase-5a1"
DUMP = "borgmatic/postgresql_databases/pg.tail8d86e.ts.net:5432/miniflux"
DUMPS = ("borgmatic/postgresql_databases/k8s-pg.tail8d86e.ts.net:5432/miniflux", DUMP)
RESTORE = "restore it by hand: RESTORE-STEPS"


def quick(text: str) -> str:
    """The rendering with call bounds of 2 s (tests/host/test_hardening.py's quick(), which imports this module)."""
    bounds = re.compile(r"^readonly BLUMEOPS_QUICK=\d+ BLUMEOPS_CHANGE=\d+ BLUMEOPS_LONG=\d+$", re.MULTILINE)
    assert bounds.search(text), "the bounds moved: update quick()"
    return bounds.sub("readonly BLUMEOPS_QUICK=2 BLUMEOPS_CHANGE=2 BLUMEOPS_LONG=2", text)


def borg_env(machine: Machine, passcommand: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(machine.home), "TMPDIR": str(machine.root / "tmp"), "LANG": "C",
            "BORG_PASSCOMMAND": passcommand}


def backup(machine: Machine, archives: dict[str, tuple[str, ...]] | None = None, **changes: object) -> ClusterBackup:
    """A real borg repository (Debian's borg) under the machine, with ``archives`` (name -> files it holds)."""
    if not (Path(BORG).exists() and Path(JQ).exists()):
        reason = "borg or jq is missing: `make test` installs Debian's borgbackup and jq"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    (machine.home / ".borg").mkdir(exist_ok=True)
    (machine.home / ".borg/pass").write_text(PASSPHRASE + "\n")
    repository = BorgRepository(f"{machine.root}/borg/", "sifaka-borg-backups", f"/bin/cat {machine.home}/.borg/pass")
    env = borg_env(machine, repository.encryption_passcommand)
    if archives is not None:
        subprocess.run([BORG, "init", "--encryption", "repokey", repository.path], env=env, check=True,
                       capture_output=True, timeout=60)
        for name, files in archives.items():
            source = machine.root / f"src-{name}"
            for file in files:
                (source / file).parent.mkdir(parents=True, exist_ok=True)
                (source / file).write_text("-- a dump\n")
            subprocess.run([BORG, "create", f"{repository.path}::{name}", "."], env=env, check=True,
                           capture_output=True, timeout=60, cwd=source)
    values: dict[str, object] = {"borg": BORG, "jq": JQ, "repository": repository, "dump_paths": DUMPS,
                                 "restore": RESTORE}
    values.update(changes)
    return ClusterBackup(**values)  # type: ignore[arg-type]


def replace_args(machine: Machine, archive: str | None, cluster_backup: ClusterBackup | None,
                 **changes: object) -> MinikubeDockerClusterArgs:
    return machine.cluster_args(allow_replace=True, replace_archive=archive, backup=cluster_backup, **changes)


def profile_config(machine: Machine) -> dict[str, object]:
    return json.loads((machine.home / ".minikube/profiles/minikube/config.json").read_text())  # type: ignore[no-any-return]


@REAL_BORG
@pytest.mark.parametrize("driver", ["podman", "qemu2"])
def test_legacy_profile_is_refused_by_default_with_the_exact_steps(machine: Machine, driver: str) -> None:
    write_profile(machine, driver=driver, runtime="cri-o")
    args = machine.cluster_args(backup=backup(machine))
    result = machine.run(args.cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0 and f"'{driver}' driver" in result.stderr
    assert "deletes nothing" in result.stderr and "every object of its cluster" in result.stderr
    assert f"pulumi config set {ALLOW_REPLACE_KEY} true" in result.stderr
    assert f"pulumi config set {CONFIRM_ARCHIVE_KEY} <archive>" in result.stderr
    # the commands that find the archive, with this repository and its passcommand
    assert f"BORG_PASSCOMMAND='/bin/cat {machine.home}/.borg/pass' {BORG} list {machine.root}/borg/`" in result.stderr
    assert f"'sh:**/<path>'` for {DUMPS[0]} or {DUMP}" in result.stderr
    assert RESTORE in result.stderr
    assert machine.mutating_calls() == [] and profile_config(machine)["Driver"] == driver


@REAL_BORG
def test_allow_replace_without_the_confirming_archive_is_refused_naming_it(machine: Machine) -> None:
    write_profile(machine, driver="podman", runtime="cri-o")
    result = machine.run(replace_args(machine, None, backup(machine)).cluster_step("minikube-cluster"), check=False)
    assert result.returncode != 0
    assert f"{CONFIRM_ARCHIVE_KEY} is not set" in result.stderr and "nothing was deleted" in result.stderr
    assert f"pulumi config set {CONFIRM_ARCHIVE_KEY} <archive>" in result.stderr
    assert machine.mutating_calls() == [] and profile_config(machine)["Driver"] == "podman"


@REAL_BORG
def test_confirmed_replacement_says_what_is_lost_then_deletes_and_recreates(machine: Machine) -> None:
    write_profile(machine, driver="qemu2")
    cluster_backup = backup(machine, {"indri-old": ("Documents/a",), "indri-2026-01-21T02:00:03.512006": (DUMP,)})
    args = replace_args(machine, "indri-2026-01-21T02:00:03.512006", cluster_backup)
    result = machine.run(args.cluster_step("minikube-cluster"))
    mutations = machine.mutating_calls()
    assert mutations[0] == "minikube delete -p minikube" and mutations[1].startswith("minikube start")
    assert profile_config(machine)["Driver"] == "docker"
    stderr = result.stderr
    checked = stderr.index("the archive indri-2026-01-21T02:00:03.512006 (")
    assert f"of {machine.root}/borg/ holds {DUMP}" in stderr
    lost = stderr.index("REPLACING the minikube profile minikube (legacy driver 'qemu2'")
    deleting = stderr.index("deleting the profile minikube now")
    assert checked < lost < deleting
    told = stderr[lost:deleting]
    assert "every object of its cluster" in told and "every PersistentVolumeClaim with its volume" in told
    assert "The PostgreSQL data of the cluster goes with its volume: " + RESTORE in told
    # the profile is docker now: the next run deletes nothing and reads no archive
    calls = len(machine.calls())
    again = machine.run(args.cluster_step("minikube-cluster"))
    assert machine.mutating_calls(since=calls) == [] and "REPLACING" not in again.stderr


@REAL_BORG
def test_the_dump_below_a_prefix_counts(machine: Machine) -> None:
    """borg < 1.4 keeps borgmatic's runtime directory before its dumps (as require_recent_archive matches)."""
    write_profile(machine, driver="podman")
    cluster_backup = backup(machine, {"indri-1": (f"root/.cache/{DUMPS[0]}",)})
    machine.run(replace_args(machine, "indri-1", cluster_backup).cluster_step("minikube-cluster"))
    assert machine.mutating_calls()[0] == "minikube delete -p minikube"


@REAL_BORG
def test_an_archive_that_is_not_in_the_repository_is_refused_before_anything_is_deleted(machine: Machine) -> None:
    write_profile(machine, driver="podman")
    cluster_backup = backup(machine, {"indri-1": (DUMP,), "indri-2": (DUMP,)})
    result = machine.run(replace_args(machine, "indri-3", cluster_backup).cluster_step("minikube-cluster"),
                         check=False)
    assert result.returncode != 0
    assert f"{CONFIRM_ARCHIVE_KEY} is 'indri-3', but {machine.root}/borg/ has no archive of that name" in result.stderr
    assert "(its newest: indri-1, indri-2)" in result.stderr and "nothing was deleted" in result.stderr
    assert f"pulumi config set {CONFIRM_ARCHIVE_KEY} <archive>" in result.stderr
    assert machine.mutating_calls() == [] and profile_config(machine)["Driver"] == "podman"


@REAL_BORG
def test_an_archive_without_the_database_dump_is_refused(machine: Machine) -> None:
    write_profile(machine, driver="podman")
    # another database's dump, and a path that only ends like the dump's name
    cluster_backup = backup(machine, {"indri-1": ("borgmatic/postgresql_databases/localhost:5432/miniflux",
                                                  f"{DUMP}-old")})
    result = machine.run(replace_args(machine, "indri-1", cluster_backup).cluster_step("minikube-cluster"),
                         check=False)
    assert result.returncode != 0
    assert f"{CONFIRM_ARCHIVE_KEY} is 'indri-1', an archive of {machine.root}/borg/" in result.stderr
    assert f"holds no dump of the cluster database ({DUMPS[0]} or {DUMP})" in result.stderr
    assert "nothing was deleted" in result.stderr
    assert machine.mutating_calls() == [] and profile_config(machine)["Driver"] == "podman"


@REAL_BORG
def test_an_unreadable_repository_stops_the_step_and_deletes_nothing(machine: Machine) -> None:
    write_profile(machine, driver="podman")
    result = machine.run(replace_args(machine, "indri-1", backup(machine)).cluster_step("minikube-cluster"),
                         check=False)  # no repository at the machine's borg/
    assert result.returncode != 0 and f"borg could not list {machine.root}/borg/" in result.stderr
    assert "unchecked and nothing was deleted" in result.stderr and "backup volume mounted" in result.stderr
    assert machine.mutating_calls() == [] and profile_config(machine)["Driver"] == "podman"


@REAL_BORG
def test_a_hung_borg_stops_the_step_and_deletes_nothing(machine: Machine) -> None:
    write_profile(machine, driver="podman")
    # the toolbox's borg never answers; its lock wait of 1 s makes the bound 1 s + BLUMEOPS_CHANGE (2 s here)
    cluster_backup = backup(machine, borg=str(machine.bin / "borg"), lock_wait_seconds=1)
    machine.fail("borg", how="hang")
    text = quick(replace_args(machine, "indri-1", cluster_backup).cluster_step("minikube-cluster").render())
    result = machine.run_text(text, "create", check=False)
    assert result.returncode != 0 and "did not finish within 3s: killed" in result.stderr
    assert machine.mutating_calls() == [] and profile_config(machine)["Driver"] == "podman"


@REAL_BORG
def test_a_docker_profile_is_never_replaced_even_when_confirmed(machine: Machine) -> None:
    write_profile(machine, driver="docker", runtime="docker")
    cluster_backup = backup(machine, {"indri-1": (DUMP,)})
    result = machine.run(replace_args(machine, "indri-1", cluster_backup).cluster_step("minikube-cluster"),
                         check=False)
    assert result.returncode != 0 and "never deletes a docker profile" in result.stderr
    assert machine.mutating_calls() == []


@pytest.mark.parametrize(("changes", "why"), [
    ({"replace_archive": "indri-1"}, "replace_archive needs allow_replace and the backup"),
    ({"allow_replace": True, "replace_archive": "indri-1"}, "replace_archive needs allow_replace and the backup"),
    ({"allow_replace": True, "replace_archive": "latest", "backup": "yes"}, "is a moving target"),
    ({"allow_replace": True, "replace_archive": "a/b", "backup": "yes"}, "no '/' and no '::'"),
    ({"allow_replace": True, "replace_archive": "repo::a", "backup": "yes"}, "no '/' and no '::'"),
])
def test_the_confirming_archive_is_checked_when_the_args_are_built(machine: Machine, changes: dict[str, object],
                                                                   why: str) -> None:
    if changes.get("backup") == "yes":
        changes = {**changes, "backup": ClusterBackup(BORG, JQ, BorgRepository("/b/", "l", "/bin/cat /p"), DUMPS,
                                                      RESTORE)}
    with pytest.raises(ValueError, match=re.escape(why)):
        machine.cluster_args(**changes)


def test_a_backup_with_relative_paths_is_refused_naming_each() -> None:
    with pytest.raises(ValueError) as caught:
        ClusterBackup("borg", JQ, BorgRepository("/b/", "l", "cat /p"), ("/abs/dump",), " ")
    for expected in ("borg 'borg' is relative", "its program is relative", "dump path '/abs/dump'", "restore is empty"):
        assert expected in str(caught.value)
