"""Reward metric cases for the 2-process gloo DDP test (importable: ``mp.spawn`` pickles by reference)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .randomdata import best_of_n_rows, pair_rows, ranked_rows, rb2_rows, scored_rows

CHUNK = 64


def _cases() -> dict[str, tuple[Any, Any, tuple[int, ...]]]:
    from evalkit_reward import metrics as M

    return {
        "pairwise": (M.PairwiseAccuracy, lambda: pair_rows(500, 21), (0, 1)),
        "pairwise_half_rank0_only": (lambda: M.PairwiseAccuracy(ties="half"), lambda: pair_rows(300, 22), (0,)),
        "calibration": (M.PairwiseCalibration, lambda: pair_rows(300, 23), (0, 1)),
        "rewardbench": (M.RewardBenchScore, lambda: pair_rows(400, 24), (0, 1)),
        "best_of_n": (M.BestOfN, lambda: best_of_n_rows(300, 25), (0, 1)),
        "best_of_n_rb2_ties": (M.BestOfN, lambda: rb2_rows(300, 28), (0, 1)),
        "ranking": (M.RankingAccuracy, lambda: ranked_rows(300, 26), (0, 1)),
        "scored": (M.ScoreRegression, lambda: scored_rows(300, 27), (0, 1)),
    }


CASES = sorted(_cases())


def run_case(case: str, rank: int | None = None) -> Any:
    factory, data, ranks = _cases()[case]
    preds, labels = data()
    metric = factory()
    starts = list(range(0, len(preds), CHUNK))
    if rank is not None:
        owners = [ranks[i % len(ranks)] for i in range(len(starts))]
        starts = [s for s, owner in zip(starts, owners) if owner == rank]
    for s in starts:
        metric.update(preds[s : s + CHUNK], labels[s : s + CHUNK])
    return metric.compute()


def worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        results = {case: run_case(case, rank) for case in CASES}
    finally:
        torch.distributed.destroy_process_group()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results, ensure_ascii=False))
