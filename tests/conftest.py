"""Shared fixtures: the repository root, the indri stack's config and offline plans per target phase."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# The test servers' session fixtures, registered once for the whole suite: a module that imported a fixture
# function would define a copy of its own, and a session-scoped copy starts its server again per module.
pytest_plugins = ("tests.servers.registry", "tests.servers.postgres", "tests.servers.devpi",
                  "tests.servers.transmission", "tests.servers.kiwix")

ROOT = Path(__file__).resolve().parent.parent
# Every plan the tests build renders its Helm charts from the reference copies in ../shared/charts, and a
# chart that cannot be rendered fails the test (never a silently unrendered chart).
os.environ.setdefault("BLUMEOPS_CHART_CACHE", str((ROOT.parent / "shared" / "charts").resolve()))
os.environ.setdefault("BLUMEOPS_CHARTS_REQUIRED", "1")
for path in (ROOT, ROOT / "tests"):  # the program's packages, and test helpers such as phase_runner
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from ops import plan as offline_plan  # noqa: E402
from ops.stack import load_stack  # noqa: E402

_PLANS: dict[str, offline_plan.Plan] = {}
# Under `pytest -n 2` the workers of one run share each plan: the first worker to need a target builds it (about
# a second) while holding that target's lock, and the other loads it (pickled, milliseconds). Keyed by the run.
_SHARED_PLANS = ROOT / "build" / "tests" / f"plans-{os.environ.get('PYTEST_XDIST_TESTRUNUID', '')}"


def _plan_of_this_run(key: str) -> offline_plan.Plan:
    if not os.environ.get("PYTEST_XDIST_TESTRUNUID"):
        return offline_plan.build_plan(load_stack("indri", key))
    import fcntl
    import pickle

    _SHARED_PLANS.mkdir(parents=True, exist_ok=True)
    stored = _SHARED_PLANS / f"{key}.pickle"
    with open(_SHARED_PLANS / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stored.exists():
            with open(stored, "rb") as handle:
                plan: offline_plan.Plan = pickle.load(handle)
            return plan
        plan = offline_plan.build_plan(load_stack("indri", key))
        scratch = stored.with_suffix(f".{os.getpid()}.tmp")
        with open(scratch, "wb") as handle:
            pickle.dump(plan, handle, protocol=pickle.HIGHEST_PROTOCOL)
        scratch.replace(stored)
        return plan


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (not a worker) removes its run's shared plans once every worker is done (and any a crashed
    run left behind a day ago)."""
    if hasattr(session.config, "workerinput"):
        return
    import shutil
    import time

    dsession = session.config.pluginmanager.getplugin("dsession")
    uid = getattr(getattr(dsession, "nodemanager", None), "testrunuid", None)
    for shared in (ROOT / "build" / "tests").glob("plans-*"):
        if shared.name == f"plans-{uid}" or shared.stat().st_mtime < time.time() - 86400:
            shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture
def indri_plan() -> Callable[[str | None], offline_plan.Plan]:
    """The offline plan of the indri stack for a target phase (None: the stack's own), built once per run."""

    def build(phase: str | None = None) -> offline_plan.Plan:
        # the stack's own target and the same target named give one config (ops/stack.py), so one plan
        key = phase or str(load_stack("indri").config["blumeops:phase"])
        if key not in _PLANS:
            _PLANS[key] = _plan_of_this_run(key)
        return _PLANS[key]

    return build


# Test files that run `ops plan` on the indri stack itself write build/plan/indri (the CLI's output folder):
# under `pytest -n 2` (make test) they share one worker, so no two of them rewrite that folder at once.
_WRITES_BUILD_PLAN = ("foundation/test_plan.py", "foundation/test_policy_gate.py", "charts/test_cache.py",
                      "charts/test_policy.py")


# `make test-fast` (-m "not slow") leaves out what waits on something real: a test server the session starts
# (the fixtures below), a real backup, version-control or copy tool on real data, real mounts, a bound waited
# out on purpose (a hang test), the workflow replay, and the chart diffs, which render whole charts twice.
# Derived from what a test uses, so a new test joins the right tier by itself; `make test` runs both.
_SLOW_FIXTURES = frozenset({"postgres_servers", "plain_registry", "token_registry", "sshd", "http_server",
                            "test_ca", "mounts", "devpi_servers", "transmission_daemon",
                            "kiwix_tools",
                            # loopback stand-ins of the Tailscale and Forgejo APIs are test servers too
                            "api", "tailscale_api", "forge"})
# Modules whose tests run real backup, version-control and copy tools on real data (borg and borgmatic, git and
# sqlite3, rsync): a second or more a test. A test elsewhere that does is marked slow where it stands.
_SLOW_FILES = ("charts/test_diff.py", "host/test_borgmatic.py", "host/test_forgejo_move.py",
               "host/test_transmission_move.py")
_SLOW_WORDS = ("hang", "hung", "never_answers", "timeout", "killed", "workflow_runs_them")


def _slow(item: pytest.Item) -> bool:
    path = item.nodeid.split("::", 1)[0].removeprefix("tests/")
    fixtures = set(getattr(item, "fixturenames", ()))
    return path in _SLOW_FILES or bool(fixtures & _SLOW_FIXTURES) or any(word in item.name for word in _SLOW_WORDS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::", 1)[0].removeprefix("tests/") in _WRITES_BUILD_PLAN:
            item.add_marker(pytest.mark.xdist_group("build-plan"))
        if _slow(item):
            item.add_marker(pytest.mark.slow)
    _group_for_xdist(config, items)


def _group_for_xdist(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--dist loadgroup` sends the tests of one `xdist_group` to one worker by a suffix on their node ids
    (`<nodeid>@<group>`). pytest-xdist 3.8 writes that suffix to `item._nodeid`, which pytest 9 no longer
    reads (it keeps the id in `item._id`): the groups were silently ignored, each worker started its own
    session servers, and two tests that write build/plan/indri could run at once. So the suffix is set here,
    on the workers, the way pytest 9 stores it."""
    if not hasattr(config, "workerinput") or not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                        for mark in item.iter_markers("xdist_group")})
        if names and "@" not in item.nodeid.rpartition("]")[2].rpartition("::")[2]:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]
