"""A real kiwix-serve on loopback for the Kiwix library sidecar: Debian's kiwix-tools (kiwix-serve, kiwix-manage)
and zim-tools (zimwriterfs), installed by scripts/install-test-servers.sh (this module installs nothing).

`kiwix_tools` (session-scoped) finds the three binaries, makes tiny ZIM files with zimwriterfs once (each from a
directory with an index.html holding a marker and a 48x48 PNG illustration), and starts ONE
``kiwix-serve --library --monitorLibrary`` on 127.0.0.1:<free port> for the session, on the library the sidecar's
script (components/apps/scripts/kiwix-library.sh) writes for an empty ``complete/``: the pod's order, where
kiwix-serve starts on the sidecar's first library. A test changes ``complete/``, runs the script once and waits
for the catalog to follow; kiwix-serve is never restarted (``KiwixTools.pid`` stays the same).

kiwix-serve --monitorLibrary looks at the library's mtime once a second and reloads when it is in a later second,
so a change is served within about two seconds.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.servers.processes import stop_group
from tests.servers.registry import INSTALL_SCRIPT, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "components" / "apps" / "scripts" / "kiwix-library.sh"
ATOM = "{http://www.w3.org/2005/Atom}"
TOOLS = ("kiwix-serve", "kiwix-manage", "zimwriterfs")
# The ZIM files the session makes: name -> title (the marker in each index.html is "marker-<name>")
ZIMS = {"alpha": "Alpha", "beta": "Beta", "gamma": "Gamma"}


def png(size: int = 48) -> bytes:
    """A plain red PNG of size x size (zimwriterfs wants a 48x48 PNG illustration)."""
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def make_zim(zimwriterfs: str, directory: Path, name: str, title: str) -> Path:
    """A one-page ZIM file ``<directory>/<name>.zim`` whose page holds ``marker-<name>``."""
    source = directory / f"{name}-html"
    source.mkdir()
    (source / "index.html").write_text(f"<html><head><title>{title}</title></head>"
                                       f"<body><p>marker-{name}</p></body></html>")
    (source / "favicon.png").write_bytes(png())
    zim = directory / f"{name}.zim"
    subprocess.run([zimwriterfs, "--welcome=index.html", "--illustration=favicon.png", "--language=eng",
                    f"--title={title}", f"--description=blumeops test ZIM {name}", "--creator=blumeops",
                    "--publisher=blumeops", f"--name=blumeops_{name}", "--withoutFTIndex", "--threads=1",
                    str(source), str(zim)], check=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    return zim


@dataclass(frozen=True)
class Entry:
    """One book of kiwix-serve's OPDS catalog."""

    id: str
    title: str
    name: str
    link: str  # the book's content, relative to the server


@dataclass
class KiwixTools:
    """The real tools, the session's ZIM files and the one kiwix-serve monitoring ``library``."""

    serve: str
    manage: str
    zimwriterfs: str
    directory: Path
    zims: dict[str, Path]  # the session's ZIM files (outside complete/): name -> path
    zim_dir: Path  # complete/, as the sidecar sees it
    library: Path  # the library file kiwix-serve monitors
    log: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    pid: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sync(self, library: Path | None = None, zim_dir: Path | None = None, settle: int = 0,
             mode: str = "once", env: Mapping[str, str] | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run the sidecar's script (``once`` by default) on the session's library and complete/, or others."""
        merged = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LIBRARY": str(library or self.library),
                  "ZIM_DIR": str(zim_dir or self.zim_dir), "SETTLE": str(settle), "KIWIX_MANAGE": self.manage,
                  **(env or {})}
        return subprocess.run(["sh", str(SCRIPT), mode], env=merged, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)

    def start_sync(self, mode: str = "loop", env: Mapping[str, str] | None = None,
                   stderr: IO[str] | None = None) -> subprocess.Popen[str]:
        """The script in the background, on the session's library and complete/ unless ``env`` says others; its
        stderr to ``stderr`` when given (a file the test reads while it runs), else a pipe."""
        merged = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LIBRARY": str(self.library),
                  "ZIM_DIR": str(self.zim_dir), "SETTLE": "0", "KIWIX_MANAGE": self.manage, **(env or {})}
        return subprocess.Popen(["sh", str(SCRIPT), mode], env=merged, stdout=subprocess.PIPE,
                                stderr=stderr or subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def show(self, library: Path) -> dict[str, str]:
        """kiwix-manage's view of a library: book id -> path."""
        out = subprocess.run([self.manage, str(library), "show"], capture_output=True, text=True, check=True,
                             timeout=30).stdout
        books, book = {}, ""
        for line in out.splitlines():
            if line.startswith("id:"):
                book = line.split(None, 1)[1]
            elif line.startswith("path:") and book:
                books[book] = line.split(None, 1)[1]
        return books

    def get(self, path: str) -> tuple[int, str]:
        """GET ``path`` (redirects followed): (status, body)."""
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")
        except OSError as error:  # not listening (yet): no status
            return 0, str(error)

    def entries(self) -> list[Entry]:
        """The books kiwix-serve serves now, from its OPDS catalog (/catalog/v2/entries)."""
        status, body = self.get("/catalog/v2/entries?count=-1")
        assert status == 200, f"/catalog/v2/entries answered {status}: {body[:300]}"
        found = []
        for entry in ET.fromstring(body).iter(f"{ATOM}entry"):
            link = next((item.get("href", "") for item in entry.iter(f"{ATOM}link")
                         if item.get("type") == "text/html"), "")
            found.append(Entry(entry.findtext(f"{ATOM}id", "").removeprefix("urn:uuid:"),
                               entry.findtext(f"{ATOM}title", ""), entry.findtext(f"{ATOM}name", ""), link))
        return found

    def titles(self) -> set[str]:
        return {entry.title for entry in self.entries()}

    def wait_for(self, what: str, ok: Callable[[], bool], timeout: float = 15) -> float:
        """Poll ``ok`` until true: the seconds it took; fails the test with ``what`` and kiwix-serve's log. The
        bound is generous (kiwix-serve looks once a second): once (2026-12-02, a full suite on 2 busy cores) the
        empty catalog was not shown within 6 s, its cause not found; a test that checks how soon a change shows
        says so itself."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            self.assert_running()
            if ok():
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"kiwix-serve: {what} not seen within {timeout} s; catalog {sorted(self.titles())}\n"
                             f"{self.log.read_text()[-2000:]}")

    def assert_running(self) -> None:
        assert self.process is not None and self.process.poll() is None, \
            f"kiwix-serve exited:\n{self.log.read_text()[-2000:]}"
        assert self.process.pid == self.pid, "kiwix-serve was restarted"

    def fill(self, *names: str) -> None:
        """Make complete/ hold exactly the session's ZIMs ``names`` (copies, as a finished download)."""
        for child in self.zim_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        for name in names:
            shutil.copyfile(self.zims[name], self.zim_dir / f"{name}.zim")

    def stop(self) -> None:
        stop_group(self.process)


def find_tools() -> dict[str, str]:
    """The three binaries; skip (fail in CI) when one is missing, naming the installer."""
    found = {tool: shutil.which(tool, path="/usr/bin:/usr/local/bin:/bin") for tool in TOOLS}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        reason = (f"{', '.join(missing)} missing (Debian's kiwix-tools and zim-tools; `bash {INSTALL_SCRIPT}` "
                  "installs them)")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return {tool: str(path) for tool, path in found.items()}


@pytest.fixture(scope="session")
def kiwix_tools() -> Iterator[KiwixTools]:
    tools = find_tools()
    directory = Path(tempfile.mkdtemp(prefix="blumeops-kiwix-")).resolve()
    started = time.monotonic()
    zims = {name: make_zim(tools["zimwriterfs"], directory, name, title) for name, title in ZIMS.items()}
    (directory / "complete").mkdir()
    (directory / "library").mkdir()
    kiwix = KiwixTools(tools["kiwix-serve"], tools["kiwix-manage"], tools["zimwriterfs"], directory, zims,
                       directory / "complete", directory / "library" / "library.xml", directory / "kiwix-serve.log")
    kiwix.timings["zims"] = time.monotonic() - started
    try:
        first = kiwix.sync()  # the sidecar's first pass on an empty complete/: an empty library
        assert first.returncode == 0 and kiwix.library.is_file(), f"the script's first pass failed: {first.stderr}"
        kiwix.port = free_port()
        with kiwix.log.open("ab") as log:
            kiwix.process = subprocess.Popen(
                [kiwix.serve, "--library", "--monitorLibrary", "--address", "127.0.0.1", "--port", str(kiwix.port),
                 str(kiwix.library)], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        kiwix.pid = kiwix.process.pid
        kiwix.wait_for("the catalog", lambda: kiwix.get("/catalog/v2/entries")[0] == 200, timeout=15)
        kiwix.timings["ready"] = time.monotonic() - started
        yield kiwix
    finally:
        kiwix.stop()
        shutil.rmtree(directory, ignore_errors=True)
