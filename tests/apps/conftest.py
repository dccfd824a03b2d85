"""Fixtures of the app tests: the components run under mocks once per session, in the variants the tests judge."""

from __future__ import annotations

import pytest

from tests.apps.mock_run import MockRun, run
from tests.host.conftest import machine  # noqa: F401 (the fake machine, for the agents' scripts)


@pytest.fixture(scope="session")
def grafana_run(tmp_path_factory: pytest.TempPathFactory) -> MockRun:
    return run(tmp_path_factory.mktemp("grafana"), "grafana")


@pytest.fixture(scope="session")
def feed_run(tmp_path_factory: pytest.TempPathFactory) -> MockRun:
    """The building block alone, with a precondition on the retirement."""
    return run(tmp_path_factory.mktemp("feed"), "feed_ingress", precondition=True)


@pytest.fixture(scope="session")
def feed_with_data_run(tmp_path_factory: pytest.TempPathFactory) -> MockRun:
    """The building block's "with data" order: staged workload, final sync and scale-up between stop and release."""
    return run(tmp_path_factory.mktemp("feed-data"), "feed_ingress", with_data=True)
