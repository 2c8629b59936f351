"""torchmetrics ``Metric``s of the reward domain, thin classes over :mod:`evalkit_reward.functional`.

Every figure needs the individual values (percentiles of margins, correlations, subsets), so
the states are ``cat`` lists of per-pair or per-row tensors: float64 scores, and subset names as
UTF-8 bytes plus one length per entry (``-1`` for "no subset"). torchmetrics' own machinery then
gives DDP (``all_gather``), ``merge_state`` (shards) and ``state_dict`` round trips, and the
functional ``*_compute`` helpers aggregate over sorted values, so results do not depend on the
order in which ranks or shards contribute. Memory is a few numbers per pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from evalkit.metric import EvalkitMetric

from evalkit_reward import functional as F


def _encode_subsets(subsets: Sequence[str | None]) -> tuple[Tensor, Tensor]:
    encoded = [s.encode("utf-8") if s is not None else b"" for s in subsets]
    blob = b"".join(encoded)
    names = torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone() if blob else torch.empty(0, dtype=torch.uint8)
    lengths = torch.tensor([len(e) if s is not None else -1 for e, s in zip(encoded, subsets)], dtype=torch.int64)
    return names, lengths


def _cat(state: Tensor | list[Tensor], dtype: torch.dtype) -> Tensor:
    if isinstance(state, Tensor):
        return state.reshape(-1).to(dtype)
    if not state:
        return torch.empty(0, dtype=dtype)
    return torch.cat([t.reshape(-1).to(dtype) for t in state])


def _decode_subsets(names: Tensor | list[Tensor], lengths: Tensor | list[Tensor]) -> list[str | None]:
    raw = _cat(names, torch.uint8).cpu().numpy().tobytes()
    out: list[str | None] = []
    start = 0
    for n in _cat(lengths, torch.int64).tolist():
        if n < 0:
            out.append(None)
            continue
        out.append(raw[start : start + n].decode("utf-8"))
        start += n
    if start != len(raw):
        raise ValueError(f"corrupt subset state: {len(raw)} name bytes, {start} used")
    return out


class _ListStates(EvalkitMetric):
    """``cat`` list states with fixed dtypes (``_specs``), synced correctly when a rank has none."""

    _specs: dict[str, torch.dtype] = {}

    def _add_list_states(self) -> None:
        for name in self._specs:
            self.add_state(name, default=[], dist_reduce_fx="cat", persistent=True)

    def _push(self, **values: Tensor) -> None:
        for name, value in values.items():
            state = getattr(self, name)
            if not isinstance(state, list):  # a synced (concatenated) state: keep it as one entry
                state = [state]
                setattr(self, name, state)
            state.append(value.to(device=self.device, dtype=self._specs[name]))

    def _values(self, name: str) -> Tensor:
        return _cat(getattr(self, name), self._specs[name]).cpu()

    def _sync_dist(self, dist_sync_fn: Any = None, process_group: Any = None) -> None:
        # torchmetrics stands in a float32 ``tensor([])`` for an empty list state; all_gather then
        # mixes dtypes across ranks. Give empty states their real dtype first.
        for name, dtype in self._specs.items():
            state = getattr(self, name)
            if isinstance(state, list) and not state:
                setattr(self, name, [torch.empty(0, dtype=dtype, device=self.device)])
        if dist_sync_fn is None:
            super()._sync_dist(process_group=process_group)
        else:
            super()._sync_dist(dist_sync_fn, process_group=process_group)


class _PairMetric(_ListStates):
    """Holds every (preferred, other) score pair with its subset."""

    _specs = {"chosen": torch.float64, "rejected": torch.float64, "subset_names": torch.uint8, "subset_lengths": torch.int64}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._add_list_states()

    def update(self, preds: Sequence[Any], target: Sequence[Any] | None = None) -> None:
        target = list(target) if target is not None else [None] * len(preds)
        chosen, rejected, subsets = F.expand_pairs(list(preds), target)
        names, lengths = _encode_subsets(subsets)
        self._push(chosen=torch.from_numpy(chosen), rejected=torch.from_numpy(rejected), subset_names=names, subset_lengths=lengths)

    def _pairs(self) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        subsets = _decode_subsets(self.subset_names, self.subset_lengths)
        return self._values("chosen").numpy(), self._values("rejected").numpy(), subsets


class PairwiseAccuracy(_PairMetric):
    """Pairwise accuracy of a reward model (metric key ``pairwise``).

    ``update(preds, target)``: per row a prediction ``{"chosen", "rejected"}`` (or ``{"scores":
    [...]}`` for best-of-N and ranked rows, expanded into every ordered pair) and its canonical
    preference label (``subset`` for ``by_subset``; ``None`` = a plain pair).

    Args:
        ties: ``apart`` (default): a tie is not correct and is counted in ``ties``; ``half``:
            a tie counts ½ in ``accuracy``.

    ``compute()`` -> ``{"accuracy", "ties", "total", "margin": {"mean", "std", "p05", "p50",
    "p95"}, "chosen": {"mean", "std", "min", "max"}, "rejected": {...}, "by_subset": {name:
    {"accuracy", "total"}}}``. Correct means ``chosen > rejected`` strictly, as TRL,
    LLaMA-Factory and RewardBench count it.
    """

    higher_is_better = True

    def __init__(self, ties: Literal["apart", "half"] = "apart", **kwargs: Any) -> None:
        F.check_ties(ties)
        super().__init__(**kwargs)
        self.ties = ties

    def compute(self) -> dict[str, Any]:
        return F.pairwise_compute(*self._pairs(), ties=self.ties)

    def sample_scores(self, preds: Sequence[Any], targets: Sequence[Any]) -> list[dict[str, Any]]:
        """``{"chosen", "rejected", "margin", "correct"}`` per pair row (see the functional twin)."""
        return F.pairwise_sample_scores(preds, targets, self.ties)


class PairwiseCalibration(_PairMetric):
    """Calibration of ``σ(scale · margin)`` against the observed win rate (key ``calibration``).

    Args:
        num_bins: equal-width confidence bins over [0.5, 1].
        scale: multiplies the margin before the sigmoid (a temperature; DPO rewards already
            carry ``beta``).

    ``compute()`` -> ``{"ece", "total", "bins": [{"lower", "upper", "count", "confidence",
    "accuracy"}]}`` (see :func:`evalkit_reward.functional.calibration_compute`).
    """

    higher_is_better = False

    def __init__(self, num_bins: int = 10, scale: float = 1.0, **kwargs: Any) -> None:
        if num_bins < 1:
            raise ValueError(f"num_bins must be >= 1, got {num_bins}")
        super().__init__(**kwargs)
        self.num_bins = int(num_bins)
        self.scale = float(scale)

    def compute(self) -> dict[str, Any]:
        chosen, rejected, _ = self._pairs()
        return F.calibration_compute(chosen - rejected, self.num_bins, self.scale)


class RewardBenchScore(_PairMetric):
    """RewardBench's section scores (key ``rewardbench``): per-subset accuracy, then each
    section's count-weighted mean.

    Args:
        sections: ``{section: [subset, ...]}``; default RewardBench's four sections.
        weights: ``{subset: weight}``; default RewardBench's example counts (``math-prm``
            up-weighted to 984 as RewardBench does); a subset without a weight weighs its count.

    ``compute()`` -> ``{"accuracy", "total", "by_subset", "sections": {name: score}, "score"}``.
    """

    higher_is_better = True

    def __init__(self, sections: dict[str, list[str]] | None = None, weights: dict[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if sections is not None and not (isinstance(sections, Mapping) and all(isinstance(v, (list, tuple)) for v in sections.values())):
            raise ValueError("sections must map a section name to a list of subset names")
        self.sections = {k: list(v) for k, v in sections.items()} if sections is not None else None
        self.weights = dict(weights) if weights is not None else None

    def compute(self) -> dict[str, Any]:
        return F.rewardbench_compute(*self._pairs(), sections=self.sections, weights=self.weights)


class BestOfN(_ListStates):
    """RewardBench 2 best-of-N accuracy (key ``best_of_n``): a row scores 1 / (responses tied at
    the maximum) when a chosen response is the maximum, else 0; rows of its ``Ties`` subset
    (labels with ``ties``) get RewardBench 2's Ties score over the subset
    (:func:`evalkit_reward.functional.ties_compute`).

    ``compute()`` -> ``{"accuracy", "total", "by_subset", "score"}`` (``score``: mean over subsets).
    """

    higher_is_better = True
    _specs = {"row_scores": torch.float64, "subset_names": torch.uint8, "subset_lengths": torch.int64, "ties": torch.float64}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._add_list_states()

    def update(self, preds: Sequence[Any], target: Sequence[Any]) -> None:
        rows = [F.best_of_n_row(p, t) for p, t in zip(preds, target)]
        ties = [v for p, t in zip(preds, target) if F.is_ties_row(t) for v in F.ties_row(p, t)]
        names, lengths = _encode_subsets([F._subset(t) for t in target])
        self._push(row_scores=torch.tensor(rows, dtype=torch.float64), subset_names=names, subset_lengths=lengths, ties=torch.tensor(ties, dtype=torch.float64))

    def compute(self) -> dict[str, Any]:
        ties = F.ties_decode(self._values("ties").numpy())
        return F.best_of_n_compute(self._values("row_scores").numpy(), _decode_subsets(self.subset_names, self.subset_lengths), ties)

    def sample_scores(self, preds: Sequence[Any], targets: Sequence[Any]) -> list[float | None]:
        """Per row; ``None`` for Ties rows (scored only as a subset, as RewardBench 2 does)."""
        return [None if F.is_ties_row(t) else F.best_of_n_row(p, t) for p, t in zip(preds, targets)]


class RankingAccuracy(_ListStates):
    """Ranked rows (``choices`` with ranks; key ``ranking``): accuracy over all
    ordered pairs and the mean per-row Kendall's tau-b between scores and ranks.

    ``compute()`` -> ``{"pair_accuracy", "pairs", "ties", "kendall_tau", "rows"}``.
    """

    higher_is_better = True
    _specs = {"rows": torch.float64}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._add_list_states()

    def update(self, preds: Sequence[Any], target: Sequence[Any]) -> None:
        rows = [F.ranking_row(p, t) for p, t in zip(preds, target)]
        self._push(rows=torch.tensor(rows, dtype=torch.float64).reshape(-1))

    def compute(self) -> dict[str, Any]:
        return F.ranking_compute(self._values("rows").numpy().reshape(-1, 4))


class ScoreRegression(_ListStates):
    """Scored rows (``input``/``output``/``score``; key ``score_regression``): MAE, MSE, RMSE,
    Pearson and Spearman of the model's score against the labelled one."""

    higher_is_better = False
    _specs = {"predicted": torch.float64, "labels": torch.float64}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._add_list_states()

    def update(self, preds: Sequence[Any], target: Sequence[Any]) -> None:
        predicted, labels = F.score_pairs(list(preds), list(target))
        self._push(predicted=torch.from_numpy(predicted), labels=torch.from_numpy(labels))

    def compute(self) -> dict[str, Any]:
        return F.score_regression_compute(self._values("predicted").numpy(), self._values("labels").numpy())
