"""ForgejoMove: the brew forge's data, verified, copied from the host into the cluster forge's claim, and the
clone that proves the cluster forge presents the brew forge's SSH host keys (phase 7's "with data" middle).

Why the host copies into the node: the forge's data (~426 MB) is on the host's disk; the claim is a hostPath
volume of minikube's provisioner inside the node, which is a container of Docker Desktop on the same host. The
host snapshots the stopped forge, checks it with its own sqlite3 and git, and `docker cp`s it into the volume's
directory, then checks the copy inside the node by checksum and owner: no pod waits for data, no image or share
carries the database (its password hashes and encrypted secrets), nothing goes over the network. The clone
then goes through the cluster's Service (``kubectl port-forward``), the backend the LoadBalancer ``git`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.host.connection import Host
from components.host.minikube import kubeconfig_path
from components.host.script import HostStep, require_absolute

FORGEJO_MOVE_TYPE = "blumeops:host:ForgejoMove"
REIMPORT_CHOICES = ("refuse", "keep", "replace")
# Pulumi's bound: a snapshot, fsck of every repository, the copy and the checksums inside the node.
MOVE_TIMEOUT_MINUTES = 60



@dataclass(frozen=True, slots=True)
class ForgejoMoveArgs:
    host: Host
    legacy_data: str  # the brew forge's APP_DATA_PATH (forgejo.db, forgejo-repositories/, ssh/); only read
    profile: str  # the minikube profile: its node is the Docker container of that name
    namespace: str = "forgejo"
    claim: str = "forgejo-data"
    owner_uid: int = 1000  # the forge image's user
    legacy_url: str = "http://127.0.0.1:3001"  # where the brew forge answers HTTP while it runs
    db_file: str = "forgejo.db"  # relative to legacy_data, as in the cluster forge's APP_DATA_PATH
    repo_dir: str = "forgejo-repositories"
    reimport: str = "refuse"  # a claim that holds a forge already: refuse | keep | replace (see the script)
    shasum: str = "/usr/bin/shasum"  # macOS's own (the node checks with GNU sha256sum, in the same format)
    work_dir: str = ""  # default <home>/.local/state/blumeops/forgejo-move

    def __post_init__(self) -> None:
        if not self.work_dir:
            object.__setattr__(self, "work_dir", f"{self.host.home}/.local/state/blumeops/forgejo-move")
        for label in ("legacy_data", "work_dir"):
            require_absolute("ForgejoMove", label, getattr(self, label))
        if f"{self.work_dir}/".startswith(f"{self.legacy_data}/") or \
                f"{self.legacy_data}/".startswith(f"{self.work_dir}/"):
            raise ValueError("ForgejoMove: work_dir and legacy_data must not contain one another (the data is only "
                             "read)")
        if self.reimport not in REIMPORT_CHOICES:
            raise ValueError(f"ForgejoMove: reimport {self.reimport!r} is not one of {', '.join(REIMPORT_CHOICES)}")
        for label in ("db_file", "repo_dir"):
            value = getattr(self, label)
            if value.startswith("/") or ".." in value.split("/") or not value:
                raise ValueError(f"ForgejoMove: {label} {value!r} must be a path inside legacy_data")
        if not self.legacy_url.startswith(("http://127.0.0.1:", "http://localhost:")):
            raise ValueError(f"ForgejoMove: legacy_url {self.legacy_url!r} must be the brew forge's loopback HTTP")

    @property
    def keys_dir(self) -> str:
        """The brew forge's built-in SSH server keys, as the snapshot holds them."""
        return f"{self.work_dir}/snapshot/ssh"

    def step(self, name: str) -> HostStep:
        tools = self.host.tools
        return HostStep(
            name, "forgejo-move",
            {
                "LEGACY_DATA": self.legacy_data, "LEGACY_URL": self.legacy_url, "WORK_DIR": self.work_dir,
                "DB_FILE": self.db_file, "REPO_DIR": self.repo_dir, "PROFILE": self.profile,
                "NAMESPACE": self.namespace, "CLAIM": self.claim, "OWNER_UID": self.owner_uid,
                "REIMPORT": self.reimport, "DOCKER": tools.docker, "KUBECTL": tools.kubectl,
                "KUBECONFIG_PATH": kubeconfig_path(self.host), "CURL": tools.curl, "RSYNC": tools.rsync,
                "SQLITE3": tools.sqlite3, "GIT": tools.git, "SHASUM": self.shasum,
            },
            does=(f"snapshots {self.legacy_data} (refused while the brew forge answers), checks it (sqlite "
                  f"integrity, every repository of the database present and fsck-clean) and copies it into the "
                  f"claim {self.namespace}/{self.claim} inside the node, owned by uid {self.owner_uid}, verified by "
                  f"checksum; {self.legacy_data} is only read"),
            undoes=(f"removes the snapshot; the claim keeps its data and {self.legacy_data} was never written"),
        )


@dataclass(frozen=True, slots=True)
class ForgejoCloneCheckArgs:
    host: Host
    profile: str
    keys_dir: str  # the brew forge's host public keys (ForgejoMoveArgs.keys_dir)
    clone_key: pulumi.Output[str]  # an SSH key the forge authorizes (ArgoCD's): secret
    clone_path: str = "eblume/blumeops.git"
    namespace: str = "forgejo"
    service: str = "forgejo-ssh"
    service_port: int = 22
    ssh_user: str = "forgejo"

    def __post_init__(self) -> None:
        require_absolute("ForgejoCloneCheck", "keys_dir", self.keys_dir)
        parts = self.clone_path.split("/")
        if len(parts) != 2 or not parts[1].endswith(".git") or any(not p or p.startswith(".") for p in parts):
            raise ValueError(f"ForgejoCloneCheck: clone_path {self.clone_path!r} must be <owner>/<name>.git")

    def step(self, name: str) -> HostStep:
        tools = self.host.tools
        return HostStep(
            name, "forgejo-clone-check",
            {
                "PROFILE": self.profile, "KUBECTL": tools.kubectl, "KUBECONFIG_PATH": kubeconfig_path(self.host),
                "NAMESPACE": self.namespace, "SERVICE": self.service, "SERVICE_PORT": self.service_port,
                "SSH_USER": self.ssh_user, "CLONE_PATH": self.clone_path, "KEYS_DIR": self.keys_dir,
                "GIT": tools.git, "SSH": tools.ssh,
            },
            secrets=("CLONE_KEY",),
            does=(f"clones {self.clone_path} from {self.namespace}/{self.service} as {self.ssh_user}, trusting only "
                  f"the brew forge's host keys ({self.keys_dir}); changes nothing"),
            undoes="nothing (a check changes nothing)",
        )


class ForgejoMove(pulumi.ComponentResource):
    """Carries the brew forge into the cluster: the host step ``<name>-copy`` (after the brew forge's retirement).

    On the host it puts the snapshot and its manifest in ``work_dir``; in the claim, the forge's data owned by
    ``owner_uid`` and the marker ``.blumeops-import`` (the manifest's digest, so a second run copies nothing).

    Undo: the delete removes the snapshot only: the claim is kept by a rollback with the data the cluster forge
    wrote, and ``legacy_data`` was never written, so the restored brew forge serves what it had before.
    """

    def __init__(self, name: str, args: ForgejoMoveArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(FORGEJO_MOVE_TYPE, name, {
            "legacyData": args.legacy_data, "claim": f"{args.namespace}/{args.claim}", "reimport": args.reimport,
            "onRollback": "the claim keeps its data; the brew forge's directory was only read"}, opts)
        self.copy = args.step(f"{name}-copy").register(
            args.host, identity=(args.legacy_data, args.namespace, args.claim, args.work_dir),
            timeout_minutes=MOVE_TIMEOUT_MINUTES, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})
