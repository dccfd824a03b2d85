"""The Transmission move on the fake machine, with Debian's real rsync 3, jq and curl: a nested tree and the brew
daemon's config carried onto a "share" (a directory the stub mount(8) lists as sifaka's NFS export, in macOS's
format), a second run copying nothing, a conflicting file never overwritten, a file changing during the copy
copied again or refused, and the init container's copy of the carried settings into an empty /config."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.apps.media import SCRIPTS as APP_SCRIPTS
from components.host.transmission_move import CARRIED_DIR, TransmissionMoveArgs
from tests.host.conftest import Machine
from tests.servers.registry import free_port

RSYNC = shutil.which("rsync")
pytestmark = pytest.mark.skipif(RSYNC is None, reason="rsync is not installed (scripts/install-test-servers.sh)")
EXPORT = "sifaka:/volume1/torrents"
SETTINGS = {
    "download-dir": "/Users/erichblume/transmission", "incomplete-dir": "/Users/erichblume/transmission/.incomplete",
    "incomplete-dir-enabled": True, "speed-limit-up": 100, "speed-limit-up-enabled": True, "dht-enabled": True,
    "pex-enabled": True, "rpc-password": "{62b16db87b89a91dd49a5110a7cafc06d20eb4f2wtK6kqPj", "rpc-port": 9091,
    "rpc-whitelist": "127.0.0.1", "rpc-whitelist-enabled": True, "peer-port": 51413, "ratio-limit": 2,
}


@dataclasses.dataclass
class Legacy:
    machine: Machine
    source: Path
    config: Path
    share: Path

    def args(self, **changes: object) -> TransmissionMoveArgs:
        tools = dataclasses.replace(self.machine.host().tools, rsync=str(RSYNC), jq=shutil.which("jq") or "jq",
                                    curl=shutil.which("curl") or "curl")
        host = dataclasses.replace(self.machine.host(), tools=tools)
        values: dict[str, object] = {
            "host": host, "source_dir": str(self.source), "config_dir": str(self.config),
            "mount_point": str(self.share), "export": EXPORT,
            "rpc_url": f"http://127.0.0.1:{free_port()}/transmission/rpc"}  # nothing listens: the daemon stopped
        values.update(changes)
        return TransmissionMoveArgs(**values)  # type: ignore[arg-type]

    def run(self, action: str = "create", check: bool = True, **changes: object) -> subprocess.CompletedProcess[str]:
        return self.machine.run(self.args(**changes).step("transmission-move-copy"), action, check=check)

    def mounted(self, line: str | None = None) -> None:
        (self.machine.state / "mounts").write_text(
            "/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)\n"
            + (line if line is not None else f"{EXPORT} on {self.share} (nfs, nodev, nosuid, mounted by tester)")
            + "\n")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def legacy(machine: Machine) -> Legacy:
    source, config, share = machine.home / "transmission", machine.root / "brew-var-transmission", machine.root / "nas"
    for path, body in {
        "wikipedia_en_top1m_maxi_2025-09.zim": b"Z" * 4096,
        "devdocs/devdocs_en_bash_2026-01.zim": b"bash docs",
        "series/season 1/episode 01.mkv": b"e1" * 100,
        "series/season 1/nested/deeper/notes.txt": b"deep",
        ".incomplete/gutenberg_en_all_2023-08.zim": b"half",
    }.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_bytes(body)
    (config / "torrents").mkdir(parents=True)
    (config / "resume").mkdir()
    (config / "settings.json").write_text(json.dumps(SETTINGS))
    (config / "torrents" / "wikipedia.torrent").write_bytes(b"d4:infod4:name3:wikee")
    (config / "resume" / "wikipedia.resume").write_bytes(b"d11:destination30:/Users/erichblume/transmissione")
    share.mkdir()
    found = Legacy(machine, source, config, share)
    found.mounted()
    return found


def test_the_downloads_and_settings_reach_the_share_and_the_host_is_only_read(legacy: Legacy) -> None:
    before = (tree(legacy.source), tree(legacy.config))
    result = legacy.run()
    assert (tree(legacy.source), tree(legacy.config)) == before
    complete = tree(legacy.share / "complete")
    assert complete == {k: v for k, v in before[0].items() if not k.startswith(".incomplete/")}
    assert tree(legacy.share / "incomplete") == {"gutenberg_en_all_2023-08.zim": b"half"}
    assert "5 files verified by name and size" in result.stderr
    carried = legacy.share / CARRIED_DIR
    settings = json.loads((carried / "settings.json").read_text())
    assert settings["speed-limit-up"] == 100 and settings["speed-limit-up-enabled"] is True
    assert settings["dht-enabled"] is True and settings["pex-enabled"] is True and settings["ratio-limit"] == 2
    assert settings["download-dir"] == "/downloads/complete" and settings["incomplete-dir"] == "/downloads/incomplete"
    assert settings["incomplete-dir-enabled"] is True
    # never the brew daemon's RPC credentials, whitelist, port: the cluster's are the image's
    assert "rpc-password" not in settings and "peer-port" not in settings and "rpc-port" not in settings
    assert settings["rpc-whitelist-enabled"] is False
    assert tree(carried / "torrents") == {"wikipedia.torrent": b"d4:infod4:name3:wikee"}
    assert (carried / "resume" / "wikipedia.resume").exists()
    # readable by the cluster's users (Transmission 1000, Kiwix 1001)
    assert (legacy.share / "complete" / "devdocs" / "devdocs_en_bash_2026-01.zim").stat().st_mode & 0o004


def test_a_second_run_copies_nothing_and_an_interrupted_one_resumes(legacy: Legacy) -> None:
    legacy.run()
    copied = legacy.machine.home / ".local/state/blumeops/transmission-move/copied.list"
    listed = copied.read_text().splitlines()
    assert len(listed) == 5
    legacy.run()
    assert copied.read_text().splitlines() == listed  # rsync transferred nothing
    (legacy.share / "complete" / "series" / "season 1" / "episode 01.mkv").unlink()
    legacy.run()
    assert copied.read_text().splitlines()[len(listed):] == [
        f"{legacy.share}/complete/series/season 1/episode 01.mkv"]


def test_a_conflicting_file_on_the_share_is_never_overwritten(legacy: Legacy) -> None:
    theirs = legacy.share / "complete" / "devdocs" / "devdocs_en_bash_2026-01.zim"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"another file of another size")
    same = legacy.share / "complete" / "wikipedia_en_top1m_maxi_2025-09.zim"
    same.write_bytes(b"Y" * 4096)  # same name, same size: already there, kept
    result = legacy.run(check=False)
    assert result.returncode != 0
    assert "1 file(s) on the share differ in size from the host's and were not copied by this step" in result.stderr
    assert str(theirs) in result.stderr and "nothing was copied" in result.stderr
    assert theirs.read_bytes() == b"another file of another size"
    assert not (legacy.share / "complete" / "series").exists()
    theirs.unlink()
    legacy.run()
    assert same.read_bytes() == b"Y" * 4096


def shim(legacy: Legacy, after_copies: int | None) -> Path:
    """The real rsync, wrapped: after each real copy (not a dry run) a writer appends to a source file, for the
    first ``after_copies`` copies (None: every time): what a daemon still running would do."""
    counter = legacy.machine.state / "copies"
    script = legacy.machine.root / "rsync-with-a-writer"
    limit = "" if after_copies is None else f"(( $(cat {counter}) <= {after_copies} )) && "
    script.write_text(f"""#!/bin/bash
{RSYNC} "$@"; status=$?
if [[ " $* " != *" -rn "* && "${{!#}}" == */complete/ ]]; then
  echo $(( $(cat {counter} 2>/dev/null || echo 0) + 1 )) > {counter}
  {limit}printf more >> '{legacy.source}/series/season 1/episode 01.mkv'
fi
exit $status
""")
    script.chmod(0o755)
    return script


def with_rsync(legacy: Legacy, rsync: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    args = legacy.args()
    args = dataclasses.replace(args, host=dataclasses.replace(
        args.host, tools=dataclasses.replace(args.host.tools, rsync=str(rsync))))
    return legacy.machine.run(args.step("transmission-move-copy"), check=check)


def test_a_file_changing_during_the_copy_is_copied_again(legacy: Legacy) -> None:
    result = with_rsync(legacy, shim(legacy, after_copies=1))
    assert "changed during copy 1 of 3" in result.stderr
    episode = "series/season 1/episode 01.mkv"
    assert tree(legacy.share / "complete")[episode] == (legacy.source / episode).read_bytes()


def test_a_file_that_keeps_changing_is_refused(legacy: Legacy) -> None:
    result = with_rsync(legacy, shim(legacy, after_copies=None), check=False)
    assert result.returncode != 0
    assert "kept changing during 3 copies" in result.stderr and "episode 01.mkv" in result.stderr
    assert not (legacy.machine.home / ".local/state/blumeops/transmission-move/transmission-move.done").exists()


@pytest.mark.parametrize("table, message", [
    ("", "is not mounted at"),
    ("sifaka:/volume1/other on {share} (nfs, nodev, nosuid)", "not the export sifaka:/volume1/torrents"),
    ("//guest@sifaka/torrents on {share} (smbfs, nodev, nosuid)", "is not mounted at"),
])
def test_the_share_must_be_the_export_mounted_over_nfs(legacy: Legacy, table: str, message: str) -> None:
    legacy.mounted(table.format(share=legacy.share))
    result = legacy.run(check=False)
    assert result.returncode != 0 and message in result.stderr and "nothing was copied" in result.stderr
    assert list(legacy.share.iterdir()) == []


@pytest.mark.parametrize("version", ["openrsync: protocol version 29", "rsync  version 2.6.9  protocol version 29"])
def test_macos_own_rsync_is_refused_by_name(legacy: Legacy, version: str) -> None:
    old = legacy.machine.root / "old-rsync"
    old.write_text(f"#!/bin/bash\necho '{version}'\n")
    old.chmod(0o755)
    result = with_rsync(legacy, old, check=False)
    assert result.returncode != 0 and "blumeops:tools.rsync" in result.stderr and "brew install rsync" in result.stderr


class _Rpc(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(409)  # Transmission's session-id handshake: it runs
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def running_daemon() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Rpc)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/transmission/rpc"
    server.shutdown()


def test_nothing_is_copied_while_the_brew_daemon_answers(legacy: Legacy, running_daemon: str) -> None:
    result = legacy.run(check=False, rpc_url=running_daemon)
    assert result.returncode != 0 and "HTTP 409" in result.stderr and "still runs" in result.stderr
    assert list(legacy.share.iterdir()) == []


def test_the_delete_removes_only_the_staged_settings(legacy: Legacy) -> None:
    legacy.run()
    downloads = tree(legacy.share / "complete")
    source = tree(legacy.source)
    legacy.run("delete")
    assert not (legacy.share / CARRIED_DIR).exists()
    assert tree(legacy.share / "complete") == downloads and tree(legacy.source) == source


def config_import(carried: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(APP_SCRIPTS / "transmission-config.sh")], capture_output=True, text=True,
                          env={**os.environ, "CARRIED": str(carried), "CONFIG": str(config), "OWNER": ""},
                          check=True, timeout=30)


def test_the_init_container_takes_the_carried_settings_once(legacy: Legacy, tmp_path: Path) -> None:
    legacy.run()
    carried, config = legacy.share / CARRIED_DIR, tmp_path / "config"
    config.mkdir()
    result = config_import(carried, config)
    assert "1 torrents" in result.stdout
    assert tree(config) == tree(carried)
    (config / "settings.json").write_text('{"speed-limit-up": 500}')  # the cluster daemon's own, later
    result = config_import(carried, config)
    assert "kept as it is" in result.stdout
    assert json.loads((config / "settings.json").read_text()) == {"speed-limit-up": 500}
    empty = tmp_path / "fresh"
    empty.mkdir()
    assert "image's defaults" in config_import(tmp_path / "nothing-staged", empty).stdout
    assert list(empty.iterdir()) == []


def test_the_move_refuses_paths_that_overlap() -> None:
    from tests.phase_runner import _host
    with pytest.raises(ValueError, match="must not contain one another"):
        TransmissionMoveArgs(host=_host(), source_dir="/Users/erichblume/transmission",
                             config_dir="/opt/homebrew/var/transmission",
                             mount_point="/Users/erichblume/transmission/nas", export=EXPORT)
    with pytest.raises(ValueError, match="is not <server>:/<path>"):
        TransmissionMoveArgs(host=_host(), source_dir="/Users/erichblume/transmission",
                             config_dir="/opt/homebrew/var/transmission", mount_point="/Volumes/t", export="sifaka")
