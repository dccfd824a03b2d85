"""Fixtures of the chart tests: the phase-1 plan with its charts rendered, and plans of small chart programs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # the test modules import chart_tools, next to this file
    sys.path.insert(0, HERE)

from chart_tools import write_chart_program  # noqa: E402

from ops import plan as offline_plan  # noqa: E402
from ops.stack import load_stack  # noqa: E402


@pytest.fixture
def chart_plan(tmp_path: Path) -> Callable[..., offline_plan.Plan]:
    """Build the offline plan of a one-or-more-chart program."""

    def build(*charts_: dict[str, Any], **options: Any) -> offline_plan.Plan:
        program = write_chart_program(tmp_path / f"program-{len(list(tmp_path.iterdir()))}", list(charts_))
        return offline_plan.build_plan(load_stack("indri", "0"), program, **options)

    return build


@pytest.fixture(scope="session")
def phase1_plan() -> offline_plan.Plan:
    return offline_plan.build_plan(load_stack("indri", "1"), charts_required=True)
