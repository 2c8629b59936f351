"""Next-token accuracy on response positions (LLaMA-Factory's ``ComputeAccuracy``).

With ``shift=True`` the prediction at position ``t`` is compared with the label at ``t + 1``
(a causal LM's logits at ``t`` predict the next token), i.e. ``preds[:, :-1]`` against
``labels[:, 1:]``; only positions whose label is not ``ignore_index`` count (prompt and padding
are masked with -100 in SFT data). ``_token_accuracy_update`` reduces a batch to four running
sums: ``[sum of per-sample accuracy, samples with >= 1 scored position, correct, scored]``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from evalkit_metrics._inputs import padded_pair

STATS = 4


def _token_accuracy_update(preds: Any, target: Any, ignore_index: int = -100, shift: bool = True) -> Tensor:
    """One batch (token ids ``[B, T]`` or logits ``[B, T, V]``) -> float64 running sums."""
    p, t = padded_pair(preds, target, pad_label=ignore_index, pred_dtype=None, label_dtype=np.int64, pred_extra_dims=None)
    if p.dim() == 3:
        p = p.argmax(dim=-1)
    if p.is_floating_point():
        p = p.round().to(torch.int64)
    t = t.to(torch.int64)
    if shift:
        p = p[:, :-1]
        t = t[:, 1:]
    mask = t != ignore_index
    correct = (p == t) & mask
    n = mask.sum(1)
    c = correct.sum(1)
    valid = n > 0
    return torch.stack(
        [
            (c[valid].to(torch.float64) / n[valid].to(torch.float64)).sum(),
            valid.sum().to(torch.float64),
            c.sum().to(torch.float64),
            n.sum().to(torch.float64),
        ]
    ).cpu()


def _token_accuracy_compute(stats: Tensor, average: Literal["sample", "token"] = "sample") -> dict[str, float]:
    s = stats.tolist()
    if average == "sample":
        return {"accuracy": s[0] / s[1] if s[1] else math.nan}
    if average == "token":
        return {"accuracy": s[2] / s[3] if s[3] else math.nan}
    raise ValueError(f"average must be 'sample' or 'token', got {average!r}")


def token_accuracy(
    preds: Any,
    target: Any,
    ignore_index: int = -100,
    shift: bool = True,
    average: Literal["sample", "token"] = "sample",
) -> dict[str, float]:
    """Functional twin of :class:`evalkit_metrics.TokenAccuracy`."""
    if average not in ("sample", "token"):
        raise ValueError(f"average must be 'sample' or 'token', got {average!r}")
    return _token_accuracy_compute(_token_accuracy_update(preds, target, ignore_index, shift), average)
