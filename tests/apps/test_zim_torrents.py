"""The ZIM torrent sidecar (components/apps/scripts/zim-torrents.sh) against a real transmission-daemon, with
.torrent files made by transmission-create and served from loopback (tests/servers/transmission.py)."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.registry import free_port
from tests.servers.transmission import LateProxy, TransmissionDaemon, TransmissionSession

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "components" / "apps" / "scripts" / "zim-torrents.sh"
ZIM_LIST = ROOT.parent / "shared" / "data" / "kiwix-zim-torrents.txt"

# One daemon per worker holds the torrents, so the tests that change them run one after another on one worker.
pytestmark = pytest.mark.xdist_group("transmission")


@dataclass
class Sidecar:
    """Runs the script as the sidecar would, against one Transmission, with a list written by the test."""

    session: TransmissionSession
    tmp: Path
    port: int

    def write_list(self, *lines: str) -> Path:
        path = self.tmp / "torrents.txt"
        path.write_text("\n".join(lines) + "\n")
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "TRANSMISSION_HOST": "127.0.0.1", "TRANSMISSION_PORT": str(self.port),
               "TORRENT_LIST": str(self.tmp / "torrents.txt"), "WAIT_TRIES": "3", "WAIT_SECONDS": "0.1",
               "INTERVAL": "600", "RPC_TIMEOUT": "20"}
        return {**env, **extra}

    def once(self, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), "once"], env=self.env(**extra), capture_output=True, text=True,
                              timeout=60, check=False)


@pytest.fixture
def sidecar(transmission_daemon: TransmissionSession, tmp_path: Path) -> Iterator[Sidecar]:
    transmission_daemon.daemon.remove_all()
    transmission_daemon.files.hits.clear()
    yield Sidecar(transmission_daemon, tmp_path, transmission_daemon.daemon.port)


def hashes(session: TransmissionSession, *names: str) -> set[str]:
    return {session.files.torrents[name].info_hash for name in names}


def test_missing_torrents_are_added_once_and_a_second_pass_adds_nothing(sidecar: Sidecar) -> None:
    session = sidecar.session
    files = session.files
    sidecar.write_list("# the ZIMs Kiwix serves", "", files.url("alpha.zim"), "   ",
                       f"  {files.url('beta.zim')}   # an inline comment", "#" + files.url("gamma.zim"),
                       files.url("alpha.zim"))  # listed twice: added once
    first = sidecar.once()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 listed, 2 added, 0 already present, 0 failed, 0 invalid lines" in first.stdout
    assert set(session.daemon.torrents()) == hashes(session, "alpha.zim", "beta.zim")
    assert (files.fetched("alpha.zim"), files.fetched("beta.zim"), files.fetched("gamma.zim")) == (1, 1, 0)

    second = sidecar.once()
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 listed, 0 added, 2 already present" in second.stdout
    assert (files.fetched("alpha.zim"), files.fetched("beta.zim")) == (1, 1)  # nothing asked for again
    assert len(session.daemon.torrents()) == 2


def test_present_torrents_are_skipped(sidecar: Sidecar) -> None:
    session = sidecar.session
    files = session.files
    session.daemon.add_file(files.torrents["alpha.zim"].path)  # there already (the carried-over list)
    sidecar.write_list(files.url("alpha.zim"), files.url("beta.zim"))
    result = sidecar.once()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 listed, 1 added, 1 already present" in result.stdout
    assert files.fetched("alpha.zim") == 0 and files.fetched("beta.zim") == 1
    assert set(session.daemon.torrents()) == hashes(session, "alpha.zim", "beta.zim")


def test_a_carried_over_torrent_is_matched_by_the_name_kiwix_gives_it(sidecar: Sidecar) -> None:
    """The real list's URL of a ZIM the brew daemon already holds: found by name, never fetched (offline here)."""
    session = sidecar.session
    url = next(line for line in ZIM_LIST.read_text().splitlines() if "wikipedia_en_top1m_maxi_2025-09" in line)
    assert url.startswith("https://download.kiwix.org/zim/")
    session.daemon.add_file(session.files.torrents["wikipedia_en_top1m_maxi_2025-09.zim"].path)
    sidecar.write_list(url)
    result = sidecar.once()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 listed, 0 added, 1 already present" in result.stdout


def test_a_renamed_torrent_is_known_by_its_recorded_hash(sidecar: Sidecar) -> None:
    session = sidecar.session
    files = session.files
    state = sidecar.tmp / "state"
    sidecar.write_list(files.url("alpha.zim"))
    assert sidecar.once(STATE_FILE=str(state)).returncode == 0
    alpha = files.torrents["alpha.zim"].info_hash
    assert state.read_text() == f"{alpha}\t{files.url('alpha.zim')}\n"

    session.daemon.rename(alpha, "alpha.zim", "renamed by hand.zim")
    assert session.daemon.torrents() == {alpha: "renamed by hand.zim"}
    result = sidecar.once(STATE_FILE=str(state))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 listed, 0 added, 1 already present" in result.stdout
    assert files.fetched("alpha.zim") == 1  # not even offered to the daemon again


def test_a_daemon_not_answering_yet_is_waited_for(sidecar: Sidecar) -> None:
    proxy = LateProxy(sidecar.port)  # refuses connections for the first second
    try:
        proxy.open_after(1.0)
        sidecar.write_list(sidecar.session.files.url("alpha.zim"))
        started = time.monotonic()
        result = sidecar.once(TRANSMISSION_PORT=str(proxy.port), WAIT_TRIES="40", WAIT_SECONDS="0.1")
        elapsed = time.monotonic() - started
    finally:
        proxy.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "waiting for http://127.0.0.1:" in result.stdout and "1 added" in result.stdout
    assert elapsed >= 0.9
    assert set(sidecar.session.daemon.torrents()) == hashes(sidecar.session, "alpha.zim")


def test_an_rpc_that_never_answers_is_reported_and_the_loop_goes_on(sidecar: Sidecar) -> None:
    sidecar.write_list(sidecar.session.files.url("alpha.zim"))
    closed = free_port()
    once = sidecar.once(TRANSMISSION_PORT=str(closed), WAIT_TRIES="2", WAIT_SECONDS="0.05")
    assert once.returncode == 2
    assert "did not answer after 2 tries" in once.stdout

    loop = subprocess.Popen(["bash", str(SCRIPT)], env=sidecar.env(TRANSMISSION_PORT=str(closed), WAIT_TRIES="2",
                                                                   WAIT_SECONDS="0.05", INTERVAL="0.2"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)
        assert loop.poll() is None, "the loop exited: a crash loop would restart the pod and bury the message"
        loop.send_signal(signal.SIGTERM)
        output, _ = loop.communicate(timeout=5)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
    assert loop.returncode == 0  # stopped by the pod's TERM during its sleep, promptly
    assert output.count("did not answer after 2 tries") >= 2
    assert "pass incomplete (status 2)" in output and "stopping" in output


def test_a_url_that_fails_is_reported_and_the_pass_goes_on(sidecar: Sidecar) -> None:
    session = sidecar.session
    files = session.files
    sidecar.write_list(files.url("missing.zim"), "ftp://example.org/x.zim.torrent",
                       f"{files.url('beta.zim')} trailing words", files.url("alpha.zim"))
    result = sidecar.once()
    assert result.returncode == 1
    assert f"cannot add {files.url('missing.zim')}" in result.stdout and "404" in result.stdout
    assert "line 2: not an http(s) URL" in result.stdout and "line 3: one URL per line" in result.stdout
    assert "2 listed, 1 added, 0 already present, 1 failed, 2 invalid lines" in result.stdout
    assert set(session.daemon.torrents()) == hashes(session, "alpha.zim")


def test_credentials_come_from_a_file_and_never_reach_a_command_line(
        transmission_daemon: TransmissionSession, tmp_path: Path) -> None:
    secret = "s3cret pass:word"
    daemon = TransmissionDaemon(tmp_path / "auth-daemon", auth=("zim", secret)).start()
    try:
        # transmission-remote behind a shim that records its arguments
        shims = tmp_path / "shims"
        shims.mkdir()
        real = subprocess.run(["bash", "-c", "command -v transmission-remote"], capture_output=True, text=True,
                              check=True).stdout.strip()
        (shims / "transmission-remote").write_text(
            f'#!/bin/bash\nprintf "%s\\n" "$*" >>{tmp_path / "argv"}\nexec {real} "$@"\n')
        (shims / "transmission-remote").chmod(0o755)
        sidecar = Sidecar(transmission_daemon, tmp_path, daemon.port)
        sidecar.write_list(transmission_daemon.files.url("gamma.zim"))
        path = f"{shims}:{os.environ['PATH']}"

        refused = sidecar.once(PATH=path)
        assert refused.returncode == 2 and "asks for credentials (401)" in refused.stdout

        auth_file = tmp_path / "auth"
        auth_file.write_text(f"zim:{secret}\n")
        result = sidecar.once(PATH=path, TRANSMISSION_AUTH_FILE=str(auth_file))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 added" in result.stdout
        assert set(daemon.torrents()) == {transmission_daemon.files.torrents["gamma.zim"].info_hash}
        argv = (tmp_path / "argv").read_text()
        assert "--authenv" in argv and secret not in argv and secret not in result.stdout + result.stderr
    finally:
        daemon.stop()


def test_arguments_and_settings_are_checked_before_any_pass(tmp_path: Path) -> None:
    base = {"PATH": os.environ["PATH"]}
    unset = subprocess.run(["bash", str(SCRIPT), "once"], env=base, capture_output=True, text=True, check=False)
    assert unset.returncode == 64 and "TORRENT_LIST is not set" in unset.stderr
    bad = subprocess.run(["bash", str(SCRIPT), "twice"], env={**base, "TORRENT_LIST": "x"}, capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 64 and "unknown argument 'twice'" in bad.stderr
    interval = subprocess.run(["bash", str(SCRIPT)], env={**base, "TORRENT_LIST": "x", "INTERVAL": "30m"},
                              capture_output=True, text=True, check=False)
    assert interval.returncode == 64 and "INTERVAL must be a number of seconds" in interval.stderr


def test_an_unreadable_list_is_reported(tmp_path: Path) -> None:
    result = subprocess.run(["bash", str(SCRIPT), "once"],
                            env={"PATH": os.environ["PATH"], "TORRENT_LIST": str(tmp_path / "absent.txt")},
                            capture_output=True, text=True, check=False)
    assert result.returncode == 3 and "cannot read TORRENT_LIST" in result.stdout


def test_carried_torrents_are_pointed_at_their_data_on_the_share(sidecar: Sidecar) -> None:
    """A torrent of the brew daemon still says its data is in its old download-dir: the pass points it at the same
    place under /downloads/complete (here: directories of the test) with the daemon's own --find, once."""
    session, daemon = sidecar.session, sidecar.session.daemon
    old, new = sidecar.tmp / "Users/erichblume/transmission", sidecar.tmp / "downloads/complete"
    for directory in (old / "devdocs", new / "devdocs"):
        directory.mkdir(parents=True)
    torrent = session.files.torrents["alpha.zim"].path
    carried = daemon.rpc("torrent-add", {"metainfo": base64.b64encode(torrent.read_bytes()).decode(),
                                         "paused": True, "download-dir": str(old / "devdocs")})
    info_hash = str((carried.get("torrent-added") or carried["torrent-duplicate"])["hashString"])
    sidecar.write_list("# nothing listed: only the carried torrent")

    def location() -> str:
        found = daemon.rpc("torrent-get", {"ids": [info_hash], "fields": ["downloadDir"]})["torrents"]
        return str(found[0]["downloadDir"])

    first = sidecar.once(RELOCATE_FROM=str(old), RELOCATE_TO=str(new))
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"at its data in {new}/devdocs (was {old}/devdocs)" in first.stdout
    assert location() == f"{new}/devdocs"
    second = sidecar.once(RELOCATE_FROM=str(old), RELOCATE_TO=str(new))
    assert second.returncode == 0 and "pointed" not in second.stdout
    bad = sidecar.once(RELOCATE_FROM=str(old))
    assert bad.returncode == 64 and "go together" in bad.stderr
