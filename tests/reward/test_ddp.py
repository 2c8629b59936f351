"""Reward metrics under 2-process gloo DDP equal one process (uneven shares, a rank with no data)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp

from .ddp_cases import CASES, run_case, worker
from .test_metrics import close


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("reward_ddp")
    mp.spawn(worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.parametrize("case", CASES)
def test_ddp_equals_single_process(ddp_results, case):
    single = json.loads(json.dumps(run_case(case)))
    for rank in range(2):
        close(ddp_results[rank][case], single, f"rank{rank}:{case}")
