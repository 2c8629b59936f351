"""Results under 2-process gloo DDP equal single-process results, for every metric."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.ddp import spawn

from .ddp_cases import CASES, run_case


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("ddp")
    return spawn("tests.metrics.ddp_cases", out)


def _same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(b, dict):
        assert list(a) == list(b), f"{path}: keys differ"
        for k in b:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_ddp_equals_single_process(ddp_results, case):
    single = json.loads(json.dumps(run_case(case)))
    for rank in range(2):
        _same(ddp_results[rank][case], single, f"rank{rank}:{case}")
    # the ranks really split the work
    if case.startswith("tool_f1"):
        assert single["per_tool"], case
