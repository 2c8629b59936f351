"""Turning what the pipeline and trainers hand a metric into padded tensors.

Trainers give ``[B, T]`` tensors (or numpy arrays); the evalkit pipeline gives Python lists of
per-sample sequences whose lengths differ between samples. Both become one padded batch where
padding carries the ignore label, so the vectorised kernels never see the raggedness.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def _is_batch_array(x: Any) -> bool:
    return isinstance(x, (Tensor, np.ndarray))


def _row(value: Any, *, side: str, index: int, dtype: Any) -> np.ndarray:
    """One sample as a numpy array; ``None`` entries become NaN (= not scored for labels)."""
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype in (torch.bfloat16, torch.float16) else value).numpy()
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        try:
            arr = np.asarray([np.nan if v is None else v for v in value], dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{side}[{index}] is not a sequence of numbers: {exc}") from None
    return arr


def padded_pair(
    preds: Any,
    target: Any,
    *,
    pad_label: float,
    pred_dtype: Any = np.float64,
    label_dtype: Any = np.float64,
    pred_extra_dims: int | None = 0,
) -> tuple[Tensor, Tensor]:
    """``(preds, target)`` as tensors ``[B, T, *extra]`` / ``[B, T]``.

    Tensors and arrays pass through (a single 1-D sample becomes a batch of one). Lists of
    per-sample sequences are padded to the longest sample; padded label positions hold
    ``pad_label`` so they are never scored. Each sample's prediction and label must have the
    same length — a mismatch is an error naming the sample. ``pred_extra_dims=None`` infers
    the trailing prediction dimensions (token ids ``[T]`` vs logits ``[T, V]``) from the input.
    """
    if _is_batch_array(preds) and _is_batch_array(target):
        p = torch.as_tensor(preds)
        t = torch.as_tensor(target)
        if t.dim() == 1:
            p, t = p.unsqueeze(0), t.unsqueeze(0)
        if pred_extra_dims is None:
            pred_extra_dims = max(p.dim() - 2, 0)
        if p.dim() != 2 + pred_extra_dims or t.dim() != 2 or p.shape[:2] != t.shape:
            raise ValueError(
                f"preds {tuple(p.shape)} and target {tuple(t.shape)} do not match: expected target [B, T] and "
                f"preds [B, T{', V' if pred_extra_dims else ''}]"
            )
        return p, t
    if isinstance(preds, (str, bytes)) or isinstance(target, (str, bytes)):
        raise ValueError("preds and target must be tensors or lists of per-sample sequences")
    if len(preds) != len(target):
        raise ValueError(f"preds and target differ in length: {len(preds)} predictions, {len(target)} labels")
    prow = [_row(p, side="preds", index=i, dtype=pred_dtype) for i, p in enumerate(preds)]
    trow = [_row(t, side="target", index=i, dtype=label_dtype) for i, t in enumerate(target)]
    if pred_extra_dims is None:
        pred_extra_dims = max(prow[0].ndim - 1, 0) if prow else 0
    for i, (p, t) in enumerate(zip(prow, trow)):
        if t.ndim != 1 or p.ndim != 1 + pred_extra_dims or p.shape[0] != t.shape[0]:
            raise ValueError(
                f"sample {i}: prediction shape {p.shape} does not match label shape {t.shape} "
                "(each sample's predictions and labels must have equal length)"
            )
    batch = len(trow)
    length = max((t.shape[0] for t in trow), default=0)
    extra = prow[0].shape[1:] if prow and pred_extra_dims else ()
    pbuf = np.zeros((batch, length, *extra), dtype=np.result_type(*[p.dtype for p in prow]) if prow else pred_dtype)
    tbuf = np.full((batch, length), pad_label, dtype=np.result_type(*[t.dtype for t in trow]) if trow else label_dtype)
    for i, (p, t) in enumerate(zip(prow, trow)):
        n = t.shape[0]
        if extra and p.shape[1:] != extra:
            raise ValueError(f"sample {i}: prediction shape {p.shape} differs from sample 0's {prow[0].shape}")
        pbuf[i, :n] = p
        tbuf[i, :n] = t
    return torch.from_numpy(pbuf), torch.from_numpy(tbuf)
