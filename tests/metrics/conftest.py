"""Fixtures of the metric tests."""

from __future__ import annotations

from typing import Any

import pytest

from .randomdata import toolcall_data


@pytest.fixture(scope="session")
def tool_data() -> tuple[list[Any], list[Any]]:
    """12k samples: empty labels, repeated tools, all parameter types, empty/missing predictions."""
    return toolcall_data(12_000, seed=1234)
