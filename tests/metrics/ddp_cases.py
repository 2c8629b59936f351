"""Metric cases shared by the single-process and the 2-process gloo DDP runs.

Kept in an importable module (not a test file) because ``torch.multiprocessing.spawn`` pickles
the worker by reference and the child processes import it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch

from tests.ddp import owned_chunks

from .randomdata import COMPOSITE, regression_data, toolcall_data

CHUNK = 250


@functools.lru_cache(maxsize=None)
def _tool_data() -> tuple[list[Any], list[Any]]:
    return toolcall_data(3000, seed=99)


@functools.lru_cache(maxsize=None)
def _tolerance_data() -> tuple[list[Any], list[Any]]:
    preds, labels = regression_data(200, seed=21, ragged=True, dtype=np.float64, length=50)
    return [p.tolist() for p in preds], [t.tolist() for t in labels]


@functools.lru_cache(maxsize=None)
def _token_data() -> tuple[Any, Any]:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 5, (300, 20))
    labels[:, :6] = -100
    preds = np.where(rng.random((300, 20)) < 0.6, np.roll(labels, -1, axis=1), rng.integers(0, 5, (300, 20)))
    return torch.from_numpy(preds), torch.from_numpy(labels)


def _make(name: str, **kwargs: Any) -> Callable[[], Any]:
    def build() -> Any:
        import evalkit_metrics

        return getattr(evalkit_metrics, name)(**kwargs)

    return build


# case id -> (metric factory, data, which ranks receive data)
CASES: dict[str, tuple[Callable[[], Any], Callable[[], Any], tuple[int, ...]]] = {
    "tool_f1_name": (_make("ToolCallF1"), _tool_data, (0, 1)),
    "tool_f1_name_negative": (_make("ToolCallF1", include_negative=True), _tool_data, (0, 1)),
    "tool_f1_param_composite": (_make("ToolCallF1", level="param", composite_keys=COMPOSITE), _tool_data, (0, 1)),
    "tool_f1_rank1_empty": (_make("ToolCallF1", level="param"), _tool_data, (0,)),
    "tool_exact_match": (_make("ToolCallExactMatch"), _tool_data, (0, 1)),
    "tolerance_sample": (_make("ToleranceAccuracy"), _tolerance_data, (0, 1)),
    "tolerance_token": (_make("ToleranceAccuracy", average="token"), _tolerance_data, (0, 1)),
    "token_accuracy_sample": (_make("TokenAccuracy"), _token_data, (0, 1)),
    "token_accuracy_token": (_make("TokenAccuracy", average="token"), _token_data, (0, 1)),
}


def run_case(case: str, rank: int | None = None) -> Any:
    """Update a fresh metric with the chunks this rank owns (all of them when ``rank`` is None)."""
    factory, data, ranks = CASES[case]
    preds, target = data()
    return owned_chunks(factory(), preds, target, ranks, rank, CHUNK)
