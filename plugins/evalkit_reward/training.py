"""Reward metrics inside training loops, with the numbers of an offline run.

* :class:`RewardComputeMetrics` — ``compute_metrics`` for the HF Trainer's reward evaluation
  (TRL ``RewardTrainer``, LLaMA-Factory's RM stage): the ``pairwise`` result, flattened to
  ``{"accuracy", "ties", "total", "margin.mean", ..., "by_subset.<name>.accuracy"}``. Exact
  over the whole eval set, also with ``batch_eval_metrics`` (scores are accumulated, not
  batch means averaged).
* :class:`ImplicitRewardCallback` — for DPO/KTO training: every ``every_n_steps`` steps, the
  implicit-reward accuracy on a held-out preference set, computed over the whole set at once
  (the trainers' own ``rewards/accuracies`` is a mean of per-batch means).

This module imports transformers (only when used: the plugin registers it lazily).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evalkit.types import Request, Result

from evalkit_reward import functional as F

log = logging.getLogger("evalkit.reward")


def flatten(result: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"margin": {"mean": 1}}`` -> ``{"margin.mean": 1}`` (Trainer logs take flat numbers)."""
    out: dict[str, float] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def split_scores(predictions: Any, eval_batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chosen and rejected scores from an ``EvalPrediction.predictions``: a ``(chosen,
    rejected)`` pair (LLaMA-Factory), a ``[N, 2]`` array, or TRL's concatenated ``[2B]`` logits
    per batch (``eval_batch_size`` tells the batches apart; without it, one batch)."""
    if isinstance(predictions, (tuple, list)) and len(predictions) == 2:
        chosen, rejected = (np.asarray(p, dtype=np.float64).reshape(-1) for p in predictions)
        return chosen, rejected
    scores = np.asarray(predictions, dtype=np.float64)
    if scores.ndim == 2 and scores.shape[1] == 2:
        return scores[:, 0], scores[:, 1]
    flat = scores.reshape(-1)
    size = 2 * eval_batch_size if eval_batch_size else flat.size
    chosen, rejected = [], []
    for start in range(0, flat.size, size):
        part = flat[start : start + size]
        half = part.size // 2
        chosen.append(part[:half])
        rejected.append(part[half:])
    return np.concatenate(chosen), np.concatenate(rejected)


class RewardComputeMetrics:
    """``compute_metrics=RewardComputeMetrics()`` for a reward ``Trainer``; returns the flattened
    ``pairwise`` result (strict ``chosen > rejected``; ``ties`` as the offline metric)."""

    def __init__(self, ties: F.Ties = "apart", eval_batch_size: int | None = None, subsets: Sequence[str | None] | None = None) -> None:
        F.check_ties(ties)
        self.ties = ties
        self.eval_batch_size = eval_batch_size
        self.subsets = list(subsets) if subsets is not None else None
        self._chosen: list[np.ndarray] = []
        self._rejected: list[np.ndarray] = []

    def __call__(self, eval_pred: Any, compute_result: bool = True) -> dict[str, float] | None:
        predictions = eval_pred.predictions if hasattr(eval_pred, "predictions") else eval_pred
        chosen, rejected = split_scores(predictions, self.eval_batch_size)
        self._chosen.append(chosen)
        self._rejected.append(rejected)
        if not compute_result:
            return None
        c, r = np.concatenate(self._chosen), np.concatenate(self._rejected)
        self._chosen, self._rejected = [], []
        subsets = self.subsets if self.subsets is not None and len(self.subsets) == c.size else None
        return flatten(F.pairwise_from_scores(c, r, subsets, self.ties))


def reward_compute_metrics(eval_pred: Any) -> dict[str, float]:
    """A ready ``compute_metrics`` (one call per evaluation)."""
    result = RewardComputeMetrics()(eval_pred)
    assert result is not None
    return result


class _TrainingRuntime:
    """A :class:`evalkit.types.ScoringRuntime` over models already in memory."""

    def __init__(self, tokenizer: Any, models: dict[str | None, Any], device: Any, batch_size: int, chat_template_kwargs: dict[str, Any] | None = None) -> None:
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.max_length = None
        self.checkpoint = None
        self._models = models
        self._kwargs = chat_template_kwargs or {}

    def load_model(self, kind: str, path: str | None = None) -> Any:
        return self._models[path]

    def render(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt, **self._kwargs)


def implicit_rewards(policy: Any, reference: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], *, beta: float = 0.1, average: str = "sum", batch_size: int = 8) -> list[Any]:
    """DPO implicit rewards of canonical preference rows (:mod:`evalkit_reward.formats`) with
    models in memory — the ``dpo`` head's computation, for training loops."""
    from evalkit_reward.heads import DPOHead

    head = DPOHead(beta=beta, average=average)  # type: ignore[arg-type]
    head.reference_model = reference
    device = next(policy.parameters()).device
    runtime = _TrainingRuntime(tokenizer, {None: policy}, device, batch_size)
    requests = [Request(index=i, id=i, row=row, where=f"eval[{i}]") for i, row in enumerate(rows)]
    out: dict[int, Result] = {}
    head.score_sequences(runtime, requests, lambda result: out.__setitem__(result.index, result))
    return [out[i].prediction if out[i].ok else None for i in range(len(rows))]


def _callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


class ImplicitRewardCallback(_callback_base()):  # type: ignore[misc]
    """Every ``every_n_steps`` optimizer steps, the ``pairwise`` result of the implicit reward on
    ``eval_rows`` (canonical preference rows, e.g. ``PreferenceFormat().convert(row, where)``),
    logged as ``reward_eval/<figure>`` into ``state.log_history`` and kept in ``history``.

    Args:
        eval_rows: the held-out preference set.
        tokenizer: the policy's tokenizer (with its chat template).
        reference_model: the frozen reference (``None``: reference-free).
        every_n_steps: evaluation period; also at the end of training.
        beta, average: as the ``dpo`` head.
    """

    def __init__(self, eval_rows: Sequence[dict[str, Any]], tokenizer: Any, reference_model: Any = None, every_n_steps: int = 50,
                 beta: float = 0.1, average: str = "sum", batch_size: int = 8) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.eval_rows = list(eval_rows)
        self.tokenizer = tokenizer
        self.reference_model = reference_model
        self.every_n_steps = every_n_steps
        self.beta = beta
        self.average = average
        self.batch_size = batch_size
        self.history: list[dict[str, Any]] = []
        self._last_step = -1

    def evaluate(self, model: Any) -> dict[str, Any]:
        import torch

        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                preds = implicit_rewards(model, self.reference_model, self.tokenizer, self.eval_rows, beta=self.beta, average=self.average, batch_size=self.batch_size)
        finally:
            if was_training:
                model.train()
        kept = [(p, r["label"]) for p, r in zip(preds, self.eval_rows) if p is not None]
        return F.pairwise_accuracy([p for p, _ in kept], [t for _, t in kept])

    def _run(self, state: Any, model: Any) -> None:
        if model is None or state.global_step == self._last_step:
            return
        self._last_step = state.global_step
        result = self.evaluate(model)
        self.history.append({"step": state.global_step, "pairwise": result})
        entry = {f"reward_eval/{k}": v for k, v in flatten(result).items()}
        entry["step"] = state.global_step
        state.log_history.append(entry)
        log.info("step %d: implicit-reward accuracy %.4f on %d pairs", state.global_step, result["accuracy"], result["total"])

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if state.global_step % self.every_n_steps == 0:
            self._run(state, model)

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._run(state, model)
