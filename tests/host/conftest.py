"""Fixtures of the host tests: a fake machine (temp home + the stub toolbox in tests/host/toolbox) on which
the rendered host scripts run under bash, exactly as indri would receive them on stdin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

import phases
from components.host import Host, HostStep, HostTools, MetricsPaths, RegistryMirror
from components.host.minikube import MinikubeDockerClusterArgs
from components.host.zot import ZotRegistryArgs
from phases.p0_foundation import K8S_API_SERVE_AGENT, MINIKUBE_METRICS_AGENT, ZOT_AGENT, ZOT_METRICS_AGENT

TOOLBOX = Path(__file__).resolve().parent / "toolbox"
# seconds: a step that exports and pushes a real devpi server took over 30 s, and once over 90 s, in a full
# suite on this 2-core machine (it passes in 12 s alone); a step's own calls are bounded inside it
STEP_TIMEOUT = 180
# The bash the steps run under here; BLUMEOPS_TEST_BASH points the whole suite at another one (a bash 3.2
# built from source, as macOS's /bin/bash is 3.2).
BASH = os.environ.get("BLUMEOPS_TEST_BASH") or shutil.which("bash") or "/bin/bash"
FAKE_HOST_KEY = str(phases.setting_specs()["indri.hostKey"].stand_in)
# Calls that change the machine; a second run of a step must make none of them.
MUTATING = (
    ("launchctl", "bootstrap"), ("launchctl", "bootout"), ("launchctl", "kickstart"),
    ("minikube", "start"), ("minikube", "delete"), ("minikube", "stop"), ("minikube", "cp"), ("minikube", "ssh"),
    ("tailscale", "serve --service"), ("tailscale", "serve clear"),
)
UPSTREAMS = (
    RegistryMirror("docker.io", "https://registry-1.docker.io"),
    RegistryMirror("ghcr.io", "https://ghcr.io"),
    RegistryMirror("quay.io", "https://quay.io"),
)


@dataclass
class Machine:
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def host(self) -> Host:
        # every tool of HostTools is a stub in bin/ (bash is the real one)
        tools = {tool.name: BASH if tool.name == "bash" else str(self.bin / tool.name) for tool in fields(HostTools)}
        return Host(
            address="indri", port=22, user="tester", uid=501, home=str(self.home), host_key=FAKE_HOST_KEY,
            tools=HostTools(**tools),
        )

    def metrics(self) -> MetricsPaths:
        return MetricsPaths(
            textfile_dir=str(self.home / "textfile"), log_dir=str(self.home / "log"),
            script_dir=str(self.home / "bin"),
        )

    def zot_args(self, **changes: object) -> ZotRegistryArgs:
        values: dict[str, object] = {
            "host": self.host(), "binary": str(self.bin / "zot"),
            "config_path": str(self.home / ".config/zot/config.json"), "data_dir": str(self.home / "zot"),
            "log_dir": str(self.home / "Library/Logs"), "port": 5050, "upstreams": UPSTREAMS,
            "metrics": self.metrics(), "ready_attempts": 2, "ready_delay_seconds": 0,
            "agent_name": ZOT_AGENT, "metrics_agent_name": ZOT_METRICS_AGENT,
        }
        values.update(changes)
        return ZotRegistryArgs(**values)  # type: ignore[arg-type]

    def cluster_args(self, **changes: object) -> MinikubeDockerClusterArgs:
        values: dict[str, object] = {
            "host": self.host(), "profile": "minikube", "cpus": 6, "memory_mb": 11264, "disk_size": "200g",
            "apiserver_port": 6443, "api_hostname": "k8s.tail8d86e.ts.net",
            "apiserver_names": ("k8s.tail8d86e.ts.net", "indri"), "upstreams": UPSTREAMS, "zot_port": 5050,
            "private_registry": "registry.tail8d86e.ts.net", "metrics": self.metrics(),
            "api_serve_agent_name": K8S_API_SERVE_AGENT, "metrics_agent_name": MINIKUBE_METRICS_AGENT,
        }
        values.update(changes)
        return MinikubeDockerClusterArgs(**values)  # type: ignore[arg-type]

    # ---- running -----------------------------------------------------------------------------------

    def run(self, step: HostStep, action: str = "create", secrets: Mapping[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the step as indri would: its rendering on stdin of `bash -euo pipefail -s -- <action>`."""
        return self.run_text(step.render(secrets or {}), action, check=check)

    def run_text(self, text: str, action: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STUB_STATE": str(self.state),
            "TMPDIR": str(self.root / "tmp"), "HOME": str(self.home), "LANG": "C",
        }
        result = subprocess.run(
            [BASH, "-euo", "pipefail", "-s", "--", action], input=text, text=True, capture_output=True,
            # a bound for a step that hangs despite its own bounds (STEP_TIMEOUT says why it is generous)
            env=env, timeout=STEP_TIMEOUT, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{action} failed ({result.returncode}):\n{result.stderr}")
        return result

    # ---- observing ---------------------------------------------------------------------------------

    def calls(self) -> list[str]:
        log = self.state / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def mutating_calls(self, since: int = 0) -> list[str]:
        return [call for call in self.calls()[since:]
                if any(call.startswith(f"{tool} ") and f" {verb}" in f" {call}" for tool, verb in MUTATING)]

    def restarts(self) -> list[str]:
        log = self.state / "restarts.log"
        return log.read_text().splitlines() if log.exists() else []

    def files(self) -> dict[str, tuple[bytes, int, int]]:
        """Every file under home and the stub state (but the call log): content, mode, mtime."""
        snapshot: dict[str, tuple[bytes, int, int]] = {}
        for base in (self.home, self.state):
            for path in sorted(base.rglob("*")):
                if path.is_file() and path.name not in ("calls.log",):
                    stat = path.stat()
                    snapshot[str(path)] = (path.read_bytes(), stat.st_mode, stat.st_mtime_ns)
        return snapshot

    def tree(self) -> set[str]:
        """Every file under home and the machine state (but the stubs' own logs); empty directories
        (shared parents such as ~/.config, ~/bin) do not count."""
        paths = set()
        for base in (self.home, self.state):
            for path in base.rglob("*"):
                if path.is_file() and path.name not in ("calls.log", "restarts.log", "next-port"):
                    paths.add(str(path.relative_to(self.root)))
        return paths

    def fail(self, key: str, how: str = "fail") -> None:
        """Inject a fault into the stub call ``key`` (tool or tool-subcommand): ``fail`` every time,
        ``once`` (the next call only) or ``hang`` (never returns)."""
        (self.state / how).mkdir(exist_ok=True)
        (self.state / how / key).touch()

    def heal(self, key: str, how: str = "fail") -> None:
        (self.state / how / key).unlink()


# The stubs that fit in a few lines, as one table (tool -> what it does after recording the call and
# honouring the injected faults of _common.sh: fail/, once/, hang/). Every other tool of HostTools that
# has no stub of its own in toolbox/ gets the empty behaviour (succeed): adding a tool to HostTools is then
# enough for the steps that call it to run here.
SIMPLE_STUBS: dict[str, str] = {
    # every file is an arm64 Mach-O binary unless $STUB_STATE/zot-arch says otherwise
    "file": 'echo "Mach-O 64-bit executable $(cat "$S/zot-arch" 2>/dev/null || echo arm64)"',
    # zot answers on localhost:5050 while its agent is loaded
    "curl": """url=${!#}
if [[ "$url" == http://localhost:5050/* && -f "$S/launchd/mcquack.eblume.zot" ]]; then echo '{}'; exit 0; fi
echo "curl: (7) Failed to connect to $url" >&2
exit 7""",
    # macOS's mount(8) with no arguments: one line per mount, "<device> on <dir> (<type>, <options>)"; the
    # test writes the table to $STUB_STATE/mounts
    "mount": 'cat "$S/mounts" 2>/dev/null || true',
    # the zot binary: `verify <file>` accepts a JSON config with a distSpecVersion
    "zot": """case "$1" in
verify)
  if grep -q '"distSpecVersion"' "$2"; then echo '{"level":"info","message":"config file is valid"}'; exit 0; fi
  echo "Error: invalid config file" >&2
  exit 1
  ;;
*) echo "stub zot: unsupported $*" >&2; exit 64 ;;
esac""",
}


def stub_text(tool: str, body: str) -> str:
    return (f"#!/bin/bash\n# Stub {tool} (tests/host/conftest.py SIMPLE_STUBS)\nset -u\n"
            f'source "$(dirname "$0")/_common.sh"\nstub_fail "${{1:-}}"\n{body}\n')


def install_toolbox(bin_dir: Path) -> None:
    for tool in TOOLBOX.iterdir():
        if tool.name == "plutil.py":
            # -S: no site import, so the fake starts fast
            (bin_dir / "plutil").write_text(f"#!{sys.executable} -S\n" + tool.read_text())
            (bin_dir / "plutil").chmod(0o755)
        elif tool.is_file():
            shutil.copy2(tool, bin_dir / tool.name)
    wanted = {field.name: "" for field in fields(HostTools) if field.name != "bash"} | SIMPLE_STUBS
    for name, body in wanted.items():
        stub = bin_dir / name
        if not stub.exists():
            stub.write_text(stub_text(name, body))
            stub.chmod(0o755)


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    m = Machine(tmp_path)
    for directory in (m.home, m.bin, m.state, tmp_path / "tmp"):
        directory.mkdir()
    install_toolbox(m.bin)
    yield m
