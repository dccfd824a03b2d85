"""Fixtures: phase 1 run under mocks once per session (``run_phase``), in the variants the tests judge."""

from __future__ import annotations

import dataclasses

import pytest
from phase_runner import Run, run_phase

import phases
from phases.p1_kubernetes import PG_HOSTNAME


@pytest.fixture(scope="session")
def phase1() -> Run:
    """Phase 1 with the operator's OAuth client given in config (the default)."""
    return run_phase("1")


@pytest.fixture(scope="session")
def phase1_created_client() -> Run:
    """Phase 1 with ``operator.createOauthClient``: the program creates the operator's OAuth client."""
    return run_phase("1", {"blumeops:operator.createOauthClient": "true"})


def _pg_cutover(phase: phases.Phase, handover: phases.Handover) -> None:
    """A throw-away phase 4 that only amends phase 1 (as the real one will: the database takes the name ``pg``)."""


CUTOVER_REGISTRY = tuple(
    dataclasses.replace(spec, implemented=True,
                        definition=phases.PhaseDefinition(build=_pg_cutover, amends=(PG_HOSTNAME.to("pg"),)))
    if spec.id == "4" else spec
    for spec in phases.REGISTRY
)


@pytest.fixture(scope="session")
def phase4_hostname() -> Run:
    """Phase 1 as built when a later phase of the chain amends ``PG_HOSTNAME`` (the database takes ``pg``)."""
    return run_phase("1", target="4", registry=CUTOVER_REGISTRY)
