"""``ToleranceAccuracy`` (AcceptHead scores) and ``TokenAccuracy`` (LM next-token accuracy).

Thin ``Metric`` classes over :mod:`evalkit_metrics.functional_tolerance` and
:mod:`evalkit_metrics.functional_token`: each keeps one fixed-size float64 vector of
running sums (``dist_reduce_fx="sum"``), so memory does not grow with the dataset and the DDP
result equals the single-process one.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from evalkit_metrics._base import EvalkitMetric
from evalkit_metrics import functional_token as _tok
from evalkit_metrics import functional_tolerance as _tol


def _check_average(average: str) -> None:
    if average not in ("sample", "token"):
        raise ValueError(f"average must be 'sample' or 'token', got {average!r}")


class ToleranceAccuracy(EvalkitMetric):
    """Tolerance accuracy plus MAE / MSE / RMSE of per-token scores, on scored positions only.

    ``update(preds, target)``: float tensors / arrays ``[B, T]``, or lists of per-sample 1-D
    sequences (ragged lengths allowed; each sample's predictions and labels equally long).
    Labels equal to ``ignore_index`` or ``None`` / NaN are not scored.

    A position is correct when ``|pred - label| / label <= tolerance`` for ``label >=
    small_label_threshold``, and when ``|pred - label| <= tolerance`` below it.

    Args:
        tolerance: allowed relative (or, for small labels, absolute) error.
        small_label_threshold: labels below it use the absolute error.
        ignore_index: label value meaning "not scored".
        average: ``"sample"`` (default) reproduces LLaMA-Factory's
            ``ComputeAcceptHeadAccuracy``: each metric is averaged over a sample's scored
            positions, then over samples (samples without a scored position are skipped;
            ``rmse`` is the mean of per-sample ``sqrt(mse)``). ``"token"`` is the micro
            average over all scored positions (``rmse = sqrt(mse)``).
        from_logits: apply ``sigmoid`` to ``preds`` first (raw AcceptHead logits).
        kwargs: ``torchmetrics.Metric`` options (``sync_on_compute``, ``process_group``, ...).

    ``compute()`` -> ``{"accuracy", "mae", "mse", "rmse"}`` as floats (NaN when nothing was
    scored; ``metrics.json`` shows ``null``).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        tolerance: float = 0.1,
        small_label_threshold: float = 0.01,
        ignore_index: float | None = -100,
        average: Literal["sample", "token"] = "sample",
        from_logits: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_average(average)
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self.tolerance = float(tolerance)
        self.small_label_threshold = float(small_label_threshold)
        self.ignore_index = ignore_index
        self.average = average
        self.from_logits = bool(from_logits)
        self.add_state("stats", default=torch.zeros(_tol.STATS, dtype=torch.float64), dist_reduce_fx="sum", persistent=True)

    def update(self, preds: Any, target: Any) -> None:
        stats = _tol._tolerance_update(
            preds, target, self.tolerance, self.small_label_threshold, self.ignore_index, self.from_logits
        )
        self.stats += stats.to(self.stats.device, self.stats.dtype)

    def compute(self) -> dict[str, float]:
        return _tol._tolerance_compute(self.stats, self.average)

    def sample_scores(self, preds: Any, target: Any) -> list[dict[str, float] | None]:
        """Each sample's accuracy and errors (``n`` = its scored positions), as counted by :meth:`update`."""
        return _tol.tolerance_per_sample(preds, target, self.tolerance, self.small_label_threshold, self.ignore_index, self.from_logits)


class TokenAccuracy(EvalkitMetric):
    """Accuracy of predicted tokens on labelled (response) positions, LLaMA-Factory style.

    ``update(preds, target)``: ``preds`` are token ids ``[B, T]`` or logits ``[B, T, V]``
    (arg-maxed), ``target`` label ids ``[B, T]`` with ``ignore_index`` on positions that are not
    scored; lists of per-sample sequences (ragged) work too.

    Args:
        ignore_index: label id of unscored positions (prompt, padding).
        shift: compare ``preds[:, :-1]`` with ``target[:, 1:]`` (logits at ``t`` predict token
            ``t + 1``); ``False`` when predictions are already aligned with the labels.
        average: ``"sample"`` (default) = LLaMA-Factory's ``ComputeAccuracy``: per-sample
            accuracy, then the mean over samples (samples without a scored position are
            skipped — LLaMA-Factory would average in a NaN); ``"token"`` = micro average.
        kwargs: ``torchmetrics.Metric`` options.

    ``compute()`` -> ``{"accuracy": float}`` — a dict like every other evalkit metric, so
    ``metrics.json`` reads ``{"token_accuracy": {"accuracy": ...}}``.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        ignore_index: int = -100,
        shift: bool = True,
        average: Literal["sample", "token"] = "sample",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_average(average)
        self.ignore_index = int(ignore_index)
        self.shift = bool(shift)
        self.average = average
        self.add_state("stats", default=torch.zeros(_tok.STATS, dtype=torch.float64), dist_reduce_fx="sum", persistent=True)

    def update(self, preds: Any, target: Any) -> None:
        stats = _tok._token_accuracy_update(preds, target, self.ignore_index, self.shift)
        self.stats += stats.to(self.stats.device, self.stats.dtype)

    def compute(self) -> dict[str, float]:
        return _tok._token_accuracy_compute(self.stats, self.average)
