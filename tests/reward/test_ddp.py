"""Reward metrics under 2-process gloo DDP equal one process (uneven shares, a rank with no data)."""

from __future__ import annotations

import json

import pytest

from tests.ddp import spawn

from .ddp_cases import CASES, run_case
from .test_metrics import close


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("reward_ddp")
    return spawn("tests.reward.ddp_cases", out)


@pytest.mark.parametrize("case", CASES)
def test_ddp_equals_single_process(ddp_results, case):
    single = json.loads(json.dumps(run_case(case)))
    for rank in range(2):
        close(ddp_results[rank][case], single, f"rank{rank}:{case}")
