"""Significance for comparisons of two runs on the same samples: paired-bootstrap intervals of
metric deltas and the exact McNemar test of per-sample correctness (numpy only).

Each metric is recomputed from *per-sample states*, the ``scores`` a metric writes into every
``predictions.jsonl`` record, never from the headline number, so a resample of samples gives the
metric that run would have had on those samples. A figure is a function of column sums:

* ``True``/``False`` or a number per sample -> the mean (``<key>``);
* a dict with ``tp``/``fp``/``fn`` -> micro ``precision``/``recall``/``f1`` from the summed counts;
* a dict with ``correct``/``total`` -> ``accuracy`` = sum correct / sum total;
* any other dict -> the mean of each bool/number field (``<key>.<field>``), weighted by the
  sample's ``n`` (token count) when it has one; ``rmse`` is ``sqrt`` of the weighted mean ``mse``.

Failed samples (``error_type == "request"``) have no verdict and are left out, like in the
metrics; pairs are matched by sample ``id`` and only samples scored in both runs take part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable

import numpy as np

from evalkit.records import is_failed
from evalkit.verdicts import as_verdict

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
COUNT_FIELDS = ("tp", "fp", "fn")


@dataclass(frozen=True)
class Figure:
    """One bootstrappable figure: the state columns it reads and how their sums give it."""

    name: str
    columns: tuple[str, ...]
    compute: Callable[[np.ndarray], float]  # sums (len(columns),) -> value


def _ratio(sums: np.ndarray) -> float:
    return float(sums[0] / sums[1]) if sums[1] else float("nan")


def _f1_figures(key: str) -> list[Figure]:
    cols = tuple(f"{key}.{c}" for c in COUNT_FIELDS)

    def precision(s: np.ndarray) -> float:
        return float(s[0] / (s[0] + s[1])) if s[0] + s[1] else 0.0

    def recall(s: np.ndarray) -> float:
        return float(s[0] / (s[0] + s[2])) if s[0] + s[2] else 0.0

    def f1(s: np.ndarray) -> float:
        return float(2 * s[0] / (2 * s[0] + s[1] + s[2])) if s[0] + s[1] + s[2] else 0.0

    return [Figure(f"{key}.micro.{n}", cols, fn) for n, fn in (("precision", precision), ("recall", recall), ("f1", f1))]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def sample_states(key: str, value: Any) -> dict[str, float] | None:
    """The additive state columns of one sample's score for metric ``key`` (None: no verdict)."""
    number = _number(value)
    if number is not None:
        return {key: number, f"{key}.#": 1.0}
    if not isinstance(value, Mapping):
        return None
    if all(_number(value.get(c)) is not None for c in COUNT_FIELDS):
        return {f"{key}.{c}": float(value[c]) for c in COUNT_FIELDS}
    if _number(value.get("correct")) is not None and _number(value.get("total")) is not None and not isinstance(value.get("correct"), bool):
        return {f"{key}.correct": float(value["correct"]), f"{key}.total": float(value["total"])}
    weight = _number(value.get("n"))
    weight = 1.0 if weight is None else weight
    out: dict[str, float] = {f"{key}.#w": weight}
    for field, v in value.items():
        x = _number(v)
        if x is not None and field != "n":
            out[f"{key}.{field}"] = x * weight
    return out if len(out) > 1 else None


def figures_for(key: str, states: Mapping[str, float]) -> list[Figure]:
    """The figures that metric ``key``'s state columns define."""
    if key in states:
        return [Figure(key, (key, f"{key}.#"), _ratio)]
    if f"{key}.tp" in states:
        return _f1_figures(key)
    if f"{key}.total" in states:
        return [Figure(f"{key}.accuracy", (f"{key}.correct", f"{key}.total"), _ratio)]
    weight = f"{key}.#w"
    figures = []
    for column in states:
        if column == weight:
            continue
        if column == f"{key}.rmse" and f"{key}.mse" in states:
            continue  # recomputed from the summed mse below
        figures.append(Figure(column, (column, weight), _ratio))
        if column == f"{key}.mse":
            figures.append(Figure(f"{key}.rmse", (column, weight), lambda s: math.sqrt(max(_ratio(s), 0.0))))
    return figures


def scored(record: Mapping[str, Any]) -> bool:
    return not is_failed(record)  # type: ignore[arg-type]


def metric_keys(records: Iterable[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for record in records:
        for key in record.get("scores") or {}:
            if key not in keys:
                keys.append(key)
    return keys


def paired_records(base: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(base, other) records of the samples both runs scored, in the base run's order."""
    by_id = {r.get("id"): r for r in other if scored(r)}
    return [(r, by_id[r.get("id")]) for r in base if scored(r) and r.get("id") in by_id]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: ``b`` pairs right→wrong, ``c`` wrong→right; under the
    null each discordant pair goes either way with probability 1/2 (a binomial test)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    if 2 * k == n:
        return 1.0
    # P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (n may be large)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2) for i in range(k + 1)]
    top = max(logs)
    cdf = math.exp(top) * sum(math.exp(x - top) for x in logs)
    return min(1.0, 2 * cdf)


def bootstrap_indices(n: int, resamples: int, seed: int) -> Iterable[np.ndarray]:
    """Resample index arrays of length ``n``, drawn from ``default_rng(seed)`` one resample at
    a time — the stream a reference written as a plain loop reproduces."""
    rng = np.random.default_rng(seed)
    for _ in range(resamples):
        yield rng.integers(0, n, size=n)


def paired_bootstrap(base_states: np.ndarray, other_states: np.ndarray, figures: Sequence[tuple[Figure, Sequence[int]]], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> list[dict[str, float]]:
    """Delta (other − base) of each figure with its 95% percentile interval.

    ``*_states`` are (n_pairs, n_columns) arrays; ``figures`` pairs each figure with the
    indices of its columns. The same resample of pairs is applied to both runs.
    """
    n = base_states.shape[0]
    deltas = np.empty((resamples, len(figures)))
    plan = [(figure, list(cols)) for figure, cols in figures]
    if n:
        for r, idx in enumerate(bootstrap_indices(n, resamples, seed)):
            weights = np.bincount(idx, minlength=n).astype(float)
            # column sums of the resample, the same way for both runs (identical runs: delta 0 exactly)
            sums_base, sums_other = weights @ base_states, weights @ other_states
            for j, (figure, cols) in enumerate(plan):
                deltas[r, j] = figure.compute(sums_other[cols]) - figure.compute(sums_base[cols])
    out = []
    total_base, total_other = base_states.sum(axis=0), other_states.sum(axis=0)
    for j, (figure, cols) in enumerate(figures):
        cols = list(cols)
        value_base = figure.compute(total_base[cols]) if n else float("nan")
        value_other = figure.compute(total_other[cols]) if n else float("nan")
        column = deltas[:, j] if n else np.array([float("nan")])
        finite = column[np.isfinite(column)]
        low, high = (np.percentile(finite, [2.5, 97.5]) if finite.size else (float("nan"), float("nan")))
        row = {"base": value_base, "other": value_other, "delta": value_other - value_base, "ci_low": float(low), "ci_high": float(high)}
        out.append({k: (v if math.isfinite(v) else None) for k, v in row.items()})  # JSON has no NaN
    return out


def _state_matrix(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], key: str) -> tuple[np.ndarray, np.ndarray, list[Figure], list[str]] | None:
    base_rows, other_rows, columns = [], [], []
    for a, b in pairs:
        sa = sample_states(key, (a.get("scores") or {}).get(key))
        sb = sample_states(key, (b.get("scores") or {}).get(key))
        if sa is None or sb is None:
            continue
        for c in (*sa, *sb):
            if c not in columns:
                columns.append(c)
        base_rows.append(sa)
        other_rows.append(sb)
    if not base_rows:
        return None
    figures = figures_for(key, dict.fromkeys(columns, 0.0))
    base = np.array([[s.get(c, 0.0) for c in columns] for s in base_rows], dtype=float)
    other = np.array([[s.get(c, 0.0) for c in columns] for s in other_rows], dtype=float)
    return base, other, figures, columns


def compare_pair(base: Sequence[Mapping[str, Any]], other: Sequence[Mapping[str, Any]], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Significance of ``other`` against ``base``: per figure, the two values, the delta with
    its paired-bootstrap 95% CI, and for right/wrong metrics the exact McNemar test."""
    pairs = paired_records(base, other)
    figures_out: list[dict[str, Any]] = []
    mcnemar: dict[str, dict[str, Any]] = {}
    for key in metric_keys([a for a, _ in pairs] + [b for _, b in pairs]):
        matrix = _state_matrix(pairs, key)
        if matrix is not None:
            base_m, other_m, figures, columns = matrix
            indexed = [(f, [columns.index(c) for c in f.columns]) for f in figures]
            for (figure, _), result in zip(indexed, paired_bootstrap(base_m, other_m, indexed, resamples=resamples, seed=seed)):
                figures_out.append({"metric": key, "figure": figure.name, "n": int(base_m.shape[0]), **result})
        verdicts = [(as_verdict((a.get("scores") or {}).get(key)), as_verdict((b.get("scores") or {}).get(key))) for a, b in pairs]
        verdicts = [(x, y) for x, y in verdicts if x is not None and y is not None]
        if verdicts:
            b = sum(1 for x, y in verdicts if x and not y)
            c = sum(1 for x, y in verdicts if not x and y)
            mcnemar[key] = {"n": len(verdicts), "right_to_wrong": b, "wrong_to_right": c, "p_value": mcnemar_exact(b, c)}
    for row in figures_out:
        if row["metric"] in mcnemar and row["figure"] in (row["metric"], f"{row['metric']}.correct", f"{row['metric']}.valid"):
            row["mcnemar_p"] = mcnemar[row["metric"]]["p_value"]
    return {"num_pairs": len(pairs), "resamples": resamples, "seed": seed, "confidence": 0.95, "figures": figures_out, "mcnemar": mcnemar}


def compare_runs(records: Sequence[Sequence[Mapping[str, Any]]], names: Sequence[str], *, base: int = 0, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """:func:`compare_pair` of every run against the base run (``summary.json``'s ``significance``)."""
    return [
        {"base": names[base], "other": names[i], **compare_pair(records[base], records[i], resamples=resamples, seed=seed)}
        for i in range(len(records)) if i != base
    ]
