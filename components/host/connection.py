"""How the program reaches a macOS host: the SSH connection (pinned host key, explicit user) and the host's facts
(home, uid, absolute tool paths) every host step renders into its preamble."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

# launchd's PATH for a job, and a non-interactive SSH shell's
SYSTEM_PATH = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")


@dataclass(frozen=True, slots=True)
class HostTools:
    """Absolute paths of the tools the host steps and agents run: a non-interactive SSH shell and launchd
    both have PATH=/usr/bin:/bin:/usr/sbin:/sbin, without Homebrew or Docker Desktop."""

    bash: str
    brew: str
    curl: str
    docker: str
    file: str
    kubectl: str
    launchctl: str
    minikube: str
    plutil: str
    tailscale: str
    # the legacy PostgreSQL's client tools, and the backup tools (phase 3)
    pg_dump: str
    pg_restore: str
    psql: str
    borgmatic: str
    borg: str
    jq: str
    # the Transmission downloads move (phase 6): rsync 3 (Homebrew's), and mount(8), which lists the NFS mounts
    rsync: str
    mount: str
    # the forge's move (phase 7): checks of the copied database and repositories, and the clone through ssh
    sqlite3: str
    git: str
    ssh: str

    def search_path(self) -> str:
        """A PATH for the agents that run these tools (minikube runs ``docker`` by name): the tools'
        directories, then launchd's default ``/usr/bin:/bin:/usr/sbin:/sbin``."""
        directories: list[str] = []
        for tool in (self.minikube, self.docker, self.kubectl, self.tailscale, self.curl, self.plutil, self.file,
                     self.launchctl, self.bash):
            directory = tool.rsplit("/", 1)[0] or "/"
            if directory not in directories and directory not in SYSTEM_PATH:
                directories.append(directory)
        return ":".join((*directories, *SYSTEM_PATH))


@dataclass(frozen=True, slots=True)
class Host:
    """A macOS host reached over SSH as ``user``, whose key is pinned to ``host_key``.

    Authentication is the SSH agent unless ``private_key`` (a secret Output) is given.
    """

    address: str
    port: int
    user: str
    uid: int
    home: str
    host_key: str
    tools: HostTools
    private_key: pulumi.Output[str] | None = None

    @property
    def gui_domain(self) -> str:
        """The launchd domain of the user's LaunchAgents (exists while the user is logged in at the GUI)."""
        return f"gui/{self.uid}"

    @property
    def launch_agents_dir(self) -> str:
        return f"{self.home}/Library/LaunchAgents"

    @property
    def minikube_home(self) -> str:
        return f"{self.home}/.minikube"

    def connection(self) -> command.remote.ConnectionArgs:
        return command.remote.ConnectionArgs(
            host=self.address,
            port=self.port,
            user=self.user,
            host_key=self.host_key,
            private_key=self.private_key,
        )
