"""The stub toolbox's own fidelity where it takes a shortcut: the fake plutil reads JSON through json's C scanner
(to start without importing json and re) and must accept and refuse exactly what json.loads does."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from types import ModuleType

import pytest

from tests.host.conftest import TOOLBOX


def _plutil() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fake_plutil", TOOLBOX / "plutil.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(parse: Callable[[bytes], object], data: bytes) -> tuple[str, str]:
    try:
        return "value", repr(parse(data))
    except ValueError as err:
        return "refused", f"{type(err).__name__}: {err}"


@pytest.mark.parametrize("data", [
    b"{}", b' [1, 2.5, -0, 1e400, "a\\/b", true, false, null, {"x": [ ]}] \n', "{\"é\": \"ü\"}".encode(),
    b"NaN", b"[Infinity, -Infinity]", b'{"a": 1,}', b'{"a": 1} x', b'{"a": 1}{"b": 2}', b'"\x01"', b"", b"  ",
    b"[1] \x0c", b'\xef\xbb\xbf{"a": 1}', '{"a": "x"}'.encode("utf-16"), b"\xff{}",
    b'<?xml version="1.0"?><plist version="1.0"><dict/></plist>',
])
def test_the_fake_plutil_reads_json_exactly_as_json_loads(data: bytes) -> None:
    assert _outcome(_plutil().parse_json, data) == _outcome(json.loads, data)
