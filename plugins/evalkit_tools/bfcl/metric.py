"""The ``bfcl`` metric: BFCL's AST accuracy with its error types, as a torchmetrics Metric.

Predictions are calls in any dialect (:mod:`evalkit_tools.calls`) or ``None`` (nothing
decodable); targets are ``bfcl`` labels. States are sums (counts by error type and by
category), so results under DDP and after ``merge_state`` equal a single process's exactly.
``mode`` says how names are compared: ``fc`` (function-calling models got dots as
underscores, as BFCL scores them) or ``prompt`` (names as written in the prompt).
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import torch

from evalkit.metric import EvalkitMetric
from evalkit_tools.bfcl.checker import ERROR_TYPES, check_sample
from evalkit_tools.bfcl.data import CATEGORIES
from evalkit_tools.calls import CallError, to_bfcl

OTHER = "other"  # a category or error type outside the known lists (counted, never dropped)
_ERROR_INDEX = {name: i for i, name in enumerate(ERROR_TYPES)}
_CATEGORY_INDEX = {name: i for i, name in enumerate(CATEGORIES)}


def decode(prediction: Any) -> Any:
    """A prediction as BFCL's decoded output; ``None`` (decoding failed) stays ``None``."""
    if prediction is None:
        return None
    if type(prediction) is list:  # fast paths: normalised calls (what parsers return) or BFCL's own form
        if all(type(c) is dict and len(c) == 2 and type(c.get("name")) is str and type(c.get("arguments")) is dict for c in prediction):
            return [{c["name"]: c["arguments"]} for c in prediction]
        if all(type(c) is dict and len(c) == 1 and "toolName" not in c and "function" not in c and type(next(iter(c.values()))) is dict for c in prediction):
            return prediction
    try:
        return to_bfcl(prediction)
    except (CallError, TypeError):
        return None


def verdict(prediction: Any, label: dict[str, Any], *, mode: str = "fc") -> dict[str, Any]:
    """``{"valid": bool, "error_type": str | None}`` of one sample."""
    valid, error = check_sample(label["category"], label["functions"], label.get("ground_truth"), decode(prediction), fc_names=mode == "fc")
    return {"valid": valid, "error_type": error}


def _check_mode(mode: str) -> None:
    if mode not in ("fc", "prompt"):
        raise ValueError(f"mode must be fc or prompt, got {mode!r}")


def bfcl_sample_scores(preds: Sequence[Any], targets: Sequence[dict[str, Any]], mode: str = "fc") -> list[dict[str, Any]]:
    """Functional twin of :meth:`BfclAccuracy.sample_scores`."""
    _check_mode(mode)
    if len(preds) != len(targets):
        raise ValueError(f"preds and targets differ in length: {len(preds)} vs {len(targets)}")
    return [verdict(p, t, mode=mode) for p, t in zip(preds, targets)]


def bfcl_accuracy(preds: Sequence[Any], targets: Sequence[dict[str, Any]], mode: str = "fc") -> dict[str, Any]:
    """Functional twin of :class:`BfclAccuracy` (one call over all samples)."""
    metric = BfclAccuracy(mode=mode)
    metric.update(preds, targets)
    return metric.compute()


class BfclAccuracy(EvalkitMetric):
    """``{"accuracy", "correct", "total", "error_types": {type: count}, "per_category": {...}}``."""

    higher_is_better = True

    def __init__(self, mode: Literal["fc", "prompt"] = "fc", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_mode(mode)
        self.mode = mode
        self.add_state("errors", default=torch.zeros(len(ERROR_TYPES) + 1, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("correct", default=torch.zeros(len(CATEGORIES) + 1, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros(len(CATEGORIES) + 1, dtype=torch.long), dist_reduce_fx="sum")

    def sample_scores(self, preds: Sequence[Any], targets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return bfcl_sample_scores(preds, targets, self.mode)

    def update(self, preds: Sequence[Any], targets: Sequence[dict[str, Any]]) -> None:
        errors = [0] * (len(ERROR_TYPES) + 1)
        correct = [0] * (len(CATEGORIES) + 1)
        total = [0] * (len(CATEGORIES) + 1)
        for target, score in zip(targets, self.sample_scores(preds, targets)):
            category = _CATEGORY_INDEX.get(target.get("category"), len(CATEGORIES))
            total[category] += 1
            if score["valid"]:
                correct[category] += 1
            else:
                errors[_ERROR_INDEX.get(score["error_type"], len(ERROR_TYPES))] += 1
        self.errors += torch.tensor(errors, dtype=torch.long)
        self.correct += torch.tensor(correct, dtype=torch.long)
        self.total += torch.tensor(total, dtype=torch.long)

    def compute(self) -> dict[str, Any]:
        correct, total = int(self.correct.sum()), int(self.total.sum())
        names = (*ERROR_TYPES, OTHER)
        out: dict[str, Any] = {
            "accuracy": correct / total if total else 0.0,
            "correct": correct,
            "total": total,
            "error_types": {names[i]: int(n) for i, n in enumerate(self.errors.tolist()) if n},
        }
        per_category = {}
        for i, name in enumerate((*CATEGORIES, OTHER)):
            n = int(self.total[i])
            if n:
                c = int(self.correct[i])
                per_category[name] = {"accuracy": c / n, "correct": c, "total": n}
        out["per_category"] = per_category
        return out
