"""The policy verdict cache: an unchanged resource is not analyzed again; any change of the pack or of the
resource is (so a cached verdict can never stand for a pack that would now judge otherwise)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ops.engine.analyzer import DEFAULT_POLICY_DIR, AnalyzerResource, PolicyAnalyzer

GOOD = "ghcr.io/miniflux/miniflux:2.2.16"


def deployment(image: str) -> AnalyzerResource:
    return AnalyzerResource(
        urn="urn:pulumi:indri::blumeops::kubernetes:apps/v1:Deployment::miniflux",
        type="kubernetes:apps/v1:Deployment", name="miniflux",
        properties={"metadata": {"name": "miniflux", "namespace": "miniflux"},
                    "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
    )


class CountingAnalyzer(PolicyAnalyzer):
    """Counts the Analyze calls that reach the served pack."""

    calls = 0

    def start(self) -> None:
        super().start()
        stub = self._stub
        assert stub is not None
        real = stub.Analyze

        class Counted:
            """The stub's Analyze, counted whether called or sent ahead (``future``, as ``analyze`` does)."""

            def __call__(self, request: Any, timeout: float) -> Any:
                CountingAnalyzer.calls += 1
                return real(request, timeout=timeout)

            def future(self, request: Any, timeout: float) -> Any:
                CountingAnalyzer.calls += 1
                return real.future(request, timeout=timeout)

        stub.Analyze = Counted()


def mandatory(pack: Path, cache: Path, image: str) -> tuple[list[str], int]:
    before = CountingAnalyzer.calls
    with CountingAnalyzer(pack, cache_dir=cache) as served:
        report = served.analyze([deployment(image)])
    return [v.policy for v in report.mandatory], CountingAnalyzer.calls - before


def test_an_unchanged_resource_is_answered_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "verdicts"
    first = mandatory(DEFAULT_POLICY_DIR, cache, "ghcr.io/miniflux/miniflux:9.9.9")
    again = mandatory(DEFAULT_POLICY_DIR, cache, "ghcr.io/miniflux/miniflux:9.9.9")
    assert first[0] == again[0] and first[0], "an uncatalogued image is refused, cached or not"
    assert first[1] == 1 and again[1] == 0
    changed = mandatory(DEFAULT_POLICY_DIR, cache, GOOD)  # another request: analyzed
    assert changed == ([], 1)


def test_a_changed_pack_is_asked_again_and_its_new_verdict_counts(tmp_path: Path) -> None:
    pack = tmp_path / "policy"
    shutil.copytree(DEFAULT_POLICY_DIR, pack, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    cache = tmp_path / "verdicts"
    assert mandatory(pack, cache, GOOD) == ([], 1)
    catalog = pack / "images.yaml"
    catalog.write_text(catalog.read_text().replace("ghcr.io/miniflux/miniflux", "ghcr.io/miniflux/gone"))
    refused, calls = mandatory(pack, cache, GOOD)
    assert calls == 1 and refused, "the edited catalogue no longer lists the image: the pack must say so"


def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLUMEOPS_POLICY_CACHE", "0")
    cache = tmp_path / "verdicts"
    assert mandatory(DEFAULT_POLICY_DIR, cache, GOOD)[1] == 1
    assert mandatory(DEFAULT_POLICY_DIR, cache, GOOD)[1] == 1
    assert not cache.exists()


class CountingStarts(CountingAnalyzer):
    starts = 0

    def start(self) -> None:
        CountingStarts.starts += 1
        super().start()


def test_a_warm_run_starts_no_pack_and_reports_the_same(tmp_path: Path) -> None:
    """Every verdict and the pack's own description are cached: nothing needs the served pack."""
    cache = tmp_path / "verdicts"
    resources = [deployment(GOOD), deployment("ghcr.io/miniflux/miniflux:9.9.9")]
    with CountingStarts(DEFAULT_POLICY_DIR, cache_dir=cache) as served:
        cold = served.analyze(resources)
    assert CountingStarts.starts == 1
    with CountingStarts(DEFAULT_POLICY_DIR, cache_dir=cache) as served:
        warm = served.analyze(resources)
    assert CountingStarts.starts == 1, "the warm run answered everything from the cache"
    assert (warm.pack, warm.version, warm.policies, warm.violations) == \
        (cold.pack, cold.version, cold.policies, cold.violations)
    # a request the cache has not seen starts the pack after all
    with CountingStarts(DEFAULT_POLICY_DIR, cache_dir=cache) as served:
        served.analyze([deployment("ghcr.io/miniflux/miniflux:9.9.8")])
    assert CountingStarts.starts == 2
