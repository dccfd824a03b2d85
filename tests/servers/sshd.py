"""A real sshd on loopback for the host-side probes: Debian's openssh-server (``/usr/sbin/sshd``).

``LoopbackSshd`` runs ``sshd -D`` on 127.0.0.1:<free port> with its own throw-away host key, config and
authorized key (a fresh client key), as the user running the tests. Its sessions get ``PATH`` with a stub
``launchctl`` first (``SetEnv``): macOS's launchd cannot run here, so the stub answers ``launchctl print
<domain>/<label>`` from files in ``launchd_dir`` (``set_job``), in the format macOS prints (``state``,
``last exit code``), or hangs for a job marked so. Everything else the probes run (bash, curl, stat,
date) is the machine's real tool.

The session fixture ``sshd`` starts it once per pytest session; a test module imports it.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.health import SshTarget

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-test-servers.sh"

STUB_LAUNCHCTL = """#!/bin/bash
# stub launchctl (tests/servers/sshd.py): `print <domain>/<label>` answers from {jobs}/<label>
[[ "$1" == print ]] || {{ echo "stub launchctl: only print is supported" >&2; exit 64; }}
label=${{2##*/}}
domain=${{2%/*}}
job={jobs}/$label
if [[ ! -f "$job" ]]; then
  echo "Could not find service \\"$label\\" in domain for port" >&2
  exit 113
fi
if [[ "$(head -n 1 "$job")" == HANG ]]; then
  sleep 61.7  # a duration of its own: tests look for what is left of it
fi
printf '%s/%s = {{\\n\\tactive count = 1\\n\\tpath = /Users/test/Library/LaunchAgents/%s.plist\\n' \\
  "$domain" "$label" "$label"
cat "$job"
printf '}}\\n'
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class LoopbackSshd:
    directory: Path
    port: int
    user: str
    host_key: str  # "ssh-ed25519 AAAA..." as the stack pins it
    identity: Path
    launchctl: Path
    launchd_dir: Path
    process: subprocess.Popen[bytes] | None = None

    def target(self) -> SshTarget:
        return SshTarget("127.0.0.1", self.port, self.user, self.host_key, "/bin/bash")

    def set_job(self, label: str, *, state: str = "running", last_exit: str | None = None,
                hang: bool = False) -> None:
        """launchd knows ``label`` (``last_exit`` None: never exited); ``hang``: the print never answers."""
        lines = ["HANG"] if hang else []
        lines += [f"\tstate = {state}", "\tprogram = /bin/true"]
        lines.append(f"\tlast exit code = {last_exit if last_exit is not None else '(never exited)'}")
        (self.launchd_dir / label).write_text("\n".join(lines) + "\n")

    def remove_job(self, label: str) -> None:
        (self.launchd_dir / label).unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def start_sshd(directory: Path, extra_config: tuple[str, ...] = ()) -> LoopbackSshd:
    host_key = directory / "host_key"
    identity = directory / "client_key"
    for key in (host_key, identity):
        subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    stubs = directory / "bin"
    jobs = directory / "launchd"
    stubs.mkdir()
    jobs.mkdir()
    launchctl = stubs / "launchctl"
    launchctl.write_text(STUB_LAUNCHCTL.format(jobs=jobs))
    launchctl.chmod(0o755)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {directory / 'sshd.pid'}",
        f"AuthorizedKeysFile {directory / 'authorized_keys'}", "StrictModes no", "UsePAM no",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password", f"SetEnv PATH={stubs}:/usr/bin:/bin", "LogLevel ERROR",
        *extra_config, "",
    ]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    server = LoopbackSshd(directory, port, getpass.getuser(),
                          " ".join((directory / "host_key.pub").read_text().split()[:2]), identity,
                          launchctl, jobs, process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("sshd did not listen within 10s")


@pytest.fixture(scope="session")
def sshd() -> Iterator[LoopbackSshd]:
    if not SSHD.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SSHD} is missing: `bash {INSTALL_SCRIPT}` installs Debian's openssh-server")
        pytest.skip(f"{SSHD} is missing (Debian's openssh-server; `make test-servers` installs it)")
    with tempfile.TemporaryDirectory(prefix="blumeops-sshd-") as directory:
        server = start_sshd(Path(directory))
        try:
            yield server
        finally:
            server.stop()
