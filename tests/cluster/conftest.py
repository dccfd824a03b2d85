"""Fixtures: phase 1 run under mocks once per session (``run_phase``), in the variants the tests judge."""

from __future__ import annotations

import pytest
from phase_runner import Run, run_phase


@pytest.fixture(scope="session")
def phase1() -> Run:
    """Phase 1 with the operator's OAuth client given in config (the default)."""
    return run_phase("1")


@pytest.fixture(scope="session")
def phase1_created_client() -> Run:
    """Phase 1 with ``operator.createOauthClient``: the program creates the operator's OAuth client."""
    return run_phase("1", {"blumeops:operator.createOauthClient": "true"})


@pytest.fixture(scope="session")
def phase1_at_4() -> Run:
    """Phase 1 as built at target 4, amended by phase 4 (phases/p4_miniflux.py): the database takes the name
    ``pg`` (phase 4's own LoadBalancer), ``k8s-pg`` goes, the ``miniflux`` role is managed."""
    return run_phase("1", target="4")
