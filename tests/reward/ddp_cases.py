"""Reward metric cases for the 2-process gloo DDP test (importable: ``mp.spawn`` pickles by reference)."""

from __future__ import annotations

from typing import Any

from tests.ddp import owned_chunks

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
    return owned_chunks(factory(), preds, labels, ranks, rank, CHUNK)
