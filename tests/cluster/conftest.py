"""Fixtures: phase 1 run under mocks once per session, in the variants the tests judge."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # the test modules import cluster_run, next to this file
    sys.path.insert(0, HERE)

from cluster_run import Run, run_phase1  # noqa: E402


@pytest.fixture(scope="session")
def phase1(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Phase 1 with the operator's OAuth client given in config (the default)."""
    return run_phase1(tmp_path_factory.mktemp("p1-given"), {})


@pytest.fixture(scope="session")
def phase1_created_client(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Phase 1 with ``operator.createOauthClient``: the program creates the operator's OAuth client."""
    return run_phase1(tmp_path_factory.mktemp("p1-created"), {"blumeops:operator.createOauthClient": "true"})


@pytest.fixture(scope="session")
def phase4_hostname(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Phase 1 as built when the target is phase 4 or later (the database takes the name ``pg``)."""
    return run_phase1(tmp_path_factory.mktemp("p1-at-4"), {}, target="4")
