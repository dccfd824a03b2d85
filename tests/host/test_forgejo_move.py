"""The forge's move on the fake machine, with the real sqlite3, git and rsync 3: a forge data directory made here (a
``forgejo.db`` with a ``repository`` table and matching bare repositories with commits, the built-in SSH server's
host keys) snapshotted, checked and copied into a claim (a hostPath directory the stub kubectl names; the stub
docker runs ``cp``/``exec`` on this machine, as in minikube's Ubuntu node); a missing repository, a corrupted
object, a truncated database and an ownership mistake each refused, naming what is wrong; a second run copying
nothing. Then the clone check through a real sshd that serves the repositories as the forge lays them out."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pulumi
import pytest

from components.host.forgejo_move import ForgejoCloneCheckArgs, ForgejoMoveArgs
from tests.host.conftest import Machine
from tests.servers.sshd import SSH_KEYGEN, SSHD, LoopbackSshd, start_sshd

GIT, SQLITE3, RSYNC = shutil.which("git"), shutil.which("sqlite3"), shutil.which("rsync")
pytestmark = [
    pytest.mark.skipif(None in (GIT, SQLITE3, RSYNC), reason="git, sqlite3 or rsync missing (install-test-servers)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the copy is chowned to uid 1000, as root does in the node"),
]
REPOSITORIES = ("eblume/blumeops", "eblume/dotfiles", "eblume/zot")


def run(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "GIT_CONFIG_GLOBAL": "/dev/null"}
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def forge_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A brew forge's APP_DATA_PATH: the database, three bare repositories with a commit each, host keys."""
    root = tmp_path_factory.mktemp("forge") / "data"
    (root / "ssh").mkdir(parents=True)
    (root / "avatars").mkdir()
    (root / "avatars" / "1.png").write_bytes(b"\x89PNG avatar")
    (root / "tmp").mkdir()
    (root / "tmp" / "scratch").write_text("left out")
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(root / "ssh" / "gitea.ed25519")],
                   check=True)
    database = sqlite3.connect(root / "forgejo.db")
    database.executescript('CREATE TABLE "user" (id INTEGER PRIMARY KEY, lower_name TEXT);'
                           "CREATE TABLE repository (id INTEGER PRIMARY KEY, owner_id INTEGER, lower_name TEXT);"
                           "INSERT INTO \"user\" VALUES (1, 'eblume');")
    work = root.parent / "work"
    for number, repo in enumerate(REPOSITORIES, start=1):
        database.execute("INSERT INTO repository VALUES (?, 1, ?)", (number, repo.split("/")[1]))
        checkout = work / repo
        checkout.mkdir(parents=True)
        run(str(GIT), "init", "-q", "-b", "main", cwd=checkout)
        (checkout / "README.md").write_text(f"# {repo}\n")
        run(str(GIT), "add", ".", cwd=checkout)
        run(str(GIT), "commit", "-q", "-m", "first", cwd=checkout)
        run(str(GIT), "clone", "-q", "--bare", str(checkout), str(root / "forgejo-repositories" / f"{repo}.git"))
    database.commit()
    database.close()
    return root


@dataclasses.dataclass
class Forge:
    machine: Machine
    data: Path
    claim: Path

    def args(self, **changes: object) -> ForgejoMoveArgs:
        host = self.machine.host()
        tools = dataclasses.replace(host.tools, git=str(GIT), sqlite3=str(SQLITE3), rsync=str(RSYNC),
                                    curl=shutil.which("curl") or "curl")
        values: dict[str, object] = {"host": dataclasses.replace(host, tools=tools), "legacy_data": str(self.data),
                                     "profile": "minikube", "legacy_url": "http://127.0.0.1:9",
                                     "shasum": shutil.which("shasum") or "shasum"}
        values.update(changes)
        return ForgejoMoveArgs(**values)  # type: ignore[arg-type]

    def run(self, action: str = "create", check: bool = True, **changes: object) -> subprocess.CompletedProcess[str]:
        return self.machine.run(self.args(**changes).step("forgejo-move-copy"), action, check=check)

    def claimed(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.claim)): p.read_bytes() for p in sorted(self.claim.rglob("*"))
                if p.is_file() and not str(p.relative_to(self.claim)).startswith(".blumeops")}


@pytest.fixture
def forge(machine: Machine, forge_template: Path) -> Forge:
    data = machine.root / "var-forgejo" / "data"
    shutil.copytree(forge_template, data, symlinks=True)
    claim = machine.root / "node" / "tmp" / "hostpath-provisioner" / "forgejo" / "forgejo-data"
    claim.mkdir(parents=True)
    state = machine.state
    (state / "minikube").mkdir(exist_ok=True)
    (state / "minikube" / "minikube.status").write_text("Running")
    (state / "minikube" / "minikube.port").write_text("8443")
    (state / "k8s" / "pvc" / "forgejo").mkdir(parents=True)
    (state / "k8s" / "pv").mkdir(parents=True)
    (state / "k8s" / "pvc" / "forgejo" / "forgejo-data").write_text("pvc-1234")
    (state / "k8s" / "pv" / "pvc-1234").write_text(str(claim))
    return Forge(machine, data, claim)


def source_files(data: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data)): p.read_bytes() for p in sorted(data.rglob("*"))
            if p.is_file() and not str(p.relative_to(data)).startswith("tmp/")}


def test_the_forge_moves_whole_owned_by_1000_and_the_source_is_only_read(forge: Forge) -> None:
    before = {str(p): p.read_bytes() for p in forge.data.rglob("*") if p.is_file()}
    result = forge.run()
    assert "3 repositories, fsck clean" in result.stderr and "verified by checksum inside the node" in result.stderr
    assert {str(p): p.read_bytes() for p in forge.data.rglob("*") if p.is_file()} == before
    assert forge.claimed() == source_files(forge.data)  # ssh/ host keys, database, repositories, avatars
    assert not (forge.claim / "tmp").exists()
    assert {(p.stat().st_uid, p.stat().st_gid) for p in forge.claim.rglob("*")} == {(1000, 1000)}
    assert (forge.claim / ".blumeops-import").read_text().strip()


def test_a_second_run_copies_nothing(forge: Forge) -> None:
    forge.run()
    calls = len(forge.machine.calls())
    result = forge.run()
    assert "already holds this snapshot" in result.stderr
    assert not [c for c in forge.machine.calls()[calls:] if c.startswith("docker cp")]


def test_a_repository_missing_from_disk_is_refused(forge: Forge) -> None:
    shutil.rmtree(forge.data / "forgejo-repositories" / "eblume" / "zot.git")
    result = forge.run(check=False)
    assert result.returncode != 0
    assert "1 repositories of the database are not in forgejo-repositories: eblume/zot" in result.stderr
    assert forge.claimed() == {}


def test_a_corrupted_object_fails_fsck_naming_the_repository(forge: Forge) -> None:
    objects = forge.data / "forgejo-repositories" / "eblume" / "dotfiles.git" / "objects"
    loose = next(p for p in objects.rglob("*") if p.is_file() and len(p.parent.name) == 2)
    loose.chmod(0o644)
    loose.write_bytes(b"not a zlib stream")
    result = forge.run(check=False)
    assert result.returncode != 0 and "git fsck of eblume/dotfiles fails" in result.stderr
    assert forge.claimed() == {}


def test_a_truncated_database_is_refused(forge: Forge) -> None:
    database = forge.data / "forgejo.db"
    database.write_bytes(database.read_bytes()[:1500])
    result = forge.run(check=False)
    assert result.returncode != 0 and "forgejo.db" in result.stderr and "damaged" in result.stderr
    assert forge.claimed() == {}


def test_an_ownership_mistake_in_the_node_is_refused(forge: Forge) -> None:
    broken = forge.machine.root / "broken-node-bin"
    broken.mkdir()
    (broken / "chown").write_text("#!/bin/sh\nexit 0\n")  # a node whose chown changes nothing
    (broken / "chown").chmod(0o755)
    (forge.machine.state / "node-path").write_text(str(broken))
    result = forge.run(check=False)
    assert result.returncode != 0 and "are not owned by 1000:1000" in result.stderr
    assert forge.claimed() == {}  # nothing put in place: the staging stays out of the claim's root
    (forge.machine.state / "node-path").unlink()
    forge.run()
    assert forge.claimed() == source_files(forge.data)


def test_a_claim_holding_a_forge_is_never_overwritten_unless_told(forge: Forge) -> None:
    forge.run()
    (forge.claim / "forgejo.db").write_bytes(b"the cluster forge's writes")
    (forge.data / "avatars" / "2.png").write_bytes(b"a new avatar on the brew forge after a rollback")
    refused = forge.run(check=False)
    assert refused.returncode != 0 and "set blumeops:forgejo.reimport" in refused.stderr
    assert (forge.claim / "forgejo.db").read_bytes() == b"the cluster forge's writes"
    kept = forge.run(reimport="keep")
    assert "is NOT carried" in kept.stderr and (forge.claim / "forgejo.db").read_bytes().startswith(b"the cluster")
    forge.run(reimport="replace")
    aside = next(forge.claim.glob(".blumeops-previous-*"))
    assert (aside / "forgejo.db").read_bytes() == b"the cluster forge's writes"  # moved aside, never deleted
    assert (forge.claim / "avatars" / "2.png").exists()


def test_nothing_moves_while_the_brew_forge_answers(forge: Forge) -> None:
    import http.server
    import threading
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = forge.run(check=False, legacy_url=f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert result.returncode != 0 and "the brew forgejo" in result.stderr and "still runs" in result.stderr
    assert not (forge.machine.home / ".local/state/blumeops/forgejo-move/snapshot").exists()


def test_the_delete_keeps_the_claim_and_the_source(forge: Forge) -> None:
    forge.run()
    claimed = forge.claimed()
    forge.run("delete")
    assert forge.claimed() == claimed
    assert not (forge.machine.home / ".local/state/blumeops/forgejo-move/snapshot").exists()


# -- the clone check: a real sshd that serves the repositories as the forge does -----------------------------

FORGE_COMMAND = """#!/bin/bash
# what the forge's built-in SSH server does with a clone: /owner/name.git resolved under its repository root
case "$SSH_ORIGINAL_COMMAND" in
"git-upload-pack '/"*"'")
  path=${{SSH_ORIGINAL_COMMAND#"git-upload-pack '/"}}
  exec git-upload-pack "{root}/${{path%"'"}}" ;;
*) echo "forge: only clones here" >&2; exit 1 ;;
esac
"""


@pytest.fixture(scope="module")
def forge_sshd(forge_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSshd]:
    if not SSHD.is_file():
        pytest.skip(f"{SSHD} is missing (Debian's openssh-server)")
    directory = tmp_path_factory.mktemp("forge-sshd")
    command = directory / "forge-command"
    command.write_text(FORGE_COMMAND.format(root=forge_template / "forgejo-repositories"))
    command.chmod(0o755)
    server = start_sshd(directory, (f"ForceCommand {command}",))
    yield server
    server.stop()


def clone_check(machine: Machine, sshd: LoopbackSshd, keys_dir: Path) -> subprocess.CompletedProcess[str]:
    host = machine.host()
    host = dataclasses.replace(host, tools=dataclasses.replace(host.tools, git=str(GIT),
                                                              ssh=shutil.which("ssh") or "ssh"))
    args = ForgejoCloneCheckArgs(host=host, profile="minikube", keys_dir=str(keys_dir),
                                 clone_key=pulumi.Output.secret("unused"), ssh_user=sshd.user)
    (machine.state / "minikube").mkdir(exist_ok=True)
    (machine.state / "minikube" / "minikube.status").write_text("Running")
    (machine.state / "minikube" / "minikube.port").write_text("8443")
    (machine.state / "k8s" / "forward" / "forgejo").mkdir(parents=True, exist_ok=True)
    (machine.state / "k8s" / "forward" / "forgejo" / "forgejo-ssh").write_text(str(sshd.port))
    return machine.run(args.step("forgejo-clone-check"), secrets={"CLONE_KEY": sshd.identity.read_text()},
                       check=False)


def test_the_clone_trusts_the_carried_host_key_and_nothing_else(machine: Machine, forge_sshd: LoopbackSshd) -> None:
    carried = machine.root / "snapshot-ssh"
    carried.mkdir()
    # the key the sshd presents is the one the brew forge had (carried in ssh/ with the data)
    (carried / "gitea.ed25519.pub").write_text((forge_sshd.directory / "host_key.pub").read_text())
    result = clone_check(machine, forge_sshd, carried)
    assert result.returncode == 0, result.stderr
    assert "cloned eblume/blumeops.git" in result.stderr and "1 host key(s)" in result.stderr
    assert "PRIVATE KEY" not in result.stderr + result.stdout

    other = machine.root / "another-forge-ssh"
    other.mkdir()
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(other / "gitea.ed25519")], check=True)
    (other / "gitea.ed25519").unlink()
    refused = clone_check(machine, forge_sshd, other)
    assert refused.returncode != 0 and "presents a host key the brew forge never had" in refused.stderr


def test_a_clone_check_without_carried_keys_is_refused(machine: Machine, forge_sshd: LoopbackSshd) -> None:
    empty = machine.root / "no-keys"
    empty.mkdir()
    result = clone_check(machine, forge_sshd, empty)
    assert result.returncode != 0 and "no host key of the brew forge" in result.stderr
