"""Seeded random preference predictions and labels (pairs with subsets and ties, best-of-N,
ranked and scored rows), shared by the metric, DDP and merge tests."""

from __future__ import annotations

from typing import Any

import numpy as np

SUBSETS = ["alpacaeval-easy", "mt-bench-hard", "donotanswer", "math-prm", "hep-python", "自定义"]


def pair_rows(n: int, seed: int) -> tuple[list[Any], list[Any]]:
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for i in range(n):
        chosen = float(np.round(rng.normal(0.3, 1.0), 2))  # 2 decimals: real ties occur
        rejected = chosen if rng.random() < 0.08 else float(np.round(rng.normal(0.0, 1.0), 2))
        subset = SUBSETS[int(rng.integers(len(SUBSETS)))] if rng.random() < 0.9 else None
        preds.append({"chosen": chosen, "rejected": rejected})
        labels.append({"kind": "pair", "subset": subset})
    return preds, labels


def best_of_n_rows(n: int, seed: int) -> tuple[list[Any], list[Any]]:
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for _ in range(n):
        k = int(rng.integers(1, 3))
        scores = [float(np.round(rng.normal(), 1)) for _ in range(k + 3)]
        preds.append({"scores": scores})
        labels.append({"kind": "best_of_n", "num_correct": k, "subset": SUBSETS[int(rng.integers(3))]})
    return preds, labels


def rb2_rows(n: int, seed: int) -> tuple[list[Any], list[Any]]:
    """RewardBench 2 rows: best-of-4 rows of two subsets and, mixed in, its ``Ties`` subset —
    per prompt a ``ref`` row (one correct answer) and/or a ``tied`` row (several), unrounded
    scores (the spread of correct scores is never 0)."""
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for i in range(n):
        if rng.random() < 0.5:
            scores = [float(np.round(rng.normal(), 1)) for _ in range(4)]
            preds.append({"scores": scores})
            labels.append({"kind": "best_of_n", "num_correct": 1, "subset": ["Focus", "Math"][i % 2]})
            continue
        prompt = int(rng.integers(n // 6 + 1))
        group = "ref" if rng.random() < 0.5 else "tied"
        k = 1 if group == "ref" else int(rng.integers(2, 5))
        scores = [float(rng.normal(0.8, 1.0)) for _ in range(k)] + [float(rng.normal()) for _ in range(int(rng.integers(1, 4)))]
        preds.append({"scores": scores})
        labels.append({"kind": "best_of_n", "num_correct": k, "subset": "Ties", "ties": {"group": group, "prompt": prompt}})
    return preds, labels


def ranked_rows(n: int, seed: int) -> tuple[list[Any], list[Any]]:
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for _ in range(n):
        m = int(rng.integers(2, 6))
        ranks = [int(r) for r in rng.integers(1, m + 1, size=m)]
        if len(set(ranks)) < 2:
            ranks[0], ranks[1] = 1, 2
        scores = [float(np.round(-r + rng.normal(0, 1.5), 1)) for r in ranks]
        preds.append({"scores": scores})
        labels.append({"kind": "ranked", "ranks": ranks, "subset": None})
    return preds, labels


def scored_rows(n: int, seed: int) -> tuple[list[Any], list[Any]]:
    rng = np.random.default_rng(seed)
    labels = [float(np.round(rng.uniform(1, 5), 1)) for _ in range(n)]
    preds = [{"score": float(s + rng.normal(0, 0.8))} for s in labels]
    return preds, [{"kind": "scored", "score": s, "subset": None} for s in labels]
