"""``report.html`` sections of AcceptHead (per-token regression) runs: predicted vs label
(scatter, binned above a few thousand points), a calibration curve (mean predicted score per
label bin against the identity) and the absolute-error histogram — drawn from the records'
``prediction`` / ``label`` token lists, positions with the ignore label left out.

Section and chart formats: :mod:`evalkit.html.context` and :mod:`evalkit.html.svg`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from evalkit.types import ReportContext

METRIC_NAME = "tolerance_accuracy"
MAX_POINTS = 200_000  # token positions drawn (a uniform subsample beyond)
CALIBRATION_BINS = 10


def _options(ctx: ReportContext) -> tuple[str | None, float | None]:
    for key, node in (ctx.config.get("metrics") or {}).items():
        if isinstance(node, Mapping) and node.get("name") == METRIC_NAME:
            return key, node.get("ignore_index", -100)
    return None, -100


def _flat(value: Any) -> Iterable[Any]:
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _flat(v)
    else:
        yield value


def token_pairs(records: list[dict[str, Any]], ignore: float | None) -> tuple[np.ndarray, np.ndarray]:
    preds: list[float] = []
    labels: list[float] = []
    for record in records:
        if record.get("error_type") == "request":
            continue
        p, t = list(_flat(record.get("prediction"))), list(_flat(record.get("label")))
        for x, y in zip(p, t):
            if not isinstance(x, (int, float)) or not isinstance(y, (int, float)) or isinstance(y, bool):
                continue
            if (ignore is not None and y == ignore) or not math.isfinite(y) or not math.isfinite(x):
                continue
            preds.append(float(x))
            labels.append(float(y))
    p_arr, t_arr = np.array(preds), np.array(labels)
    if p_arr.size > MAX_POINTS:
        keep = np.random.default_rng(0).choice(p_arr.size, MAX_POINTS, replace=False)
        p_arr, t_arr = p_arr[keep], t_arr[keep]
    return p_arr, t_arr


def calibration(preds: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, list[float]]:
    """Mean prediction and mean label per equal-width label bin (non-empty bins only)."""
    lo, hi = float(labels.min()), float(labels.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    which = np.clip(np.digitize(labels, edges[1:-1]), 0, bins - 1)
    xs, ys, ns = [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            xs.append(float(labels[mask].mean()))
            ys.append(float(preds[mask].mean()))
            ns.append(int(mask.sum()))
    return {"x": xs, "y": ys, "n": ns}


def sections(ctx: ReportContext) -> list[dict[str, Any]]:
    key, ignore = _options(ctx)
    preds, labels = token_pairs(ctx.records, ignore)
    if not preds.size:
        return []
    curve = calibration(preds, labels)
    errors = np.abs(preds - labels)
    result = (ctx.metrics or {}).get(key) if key else None
    note = f"{preds.size} scored token positions" + (" (subsampled)" if preds.size == MAX_POINTS else "")
    if isinstance(result, Mapping):
        note += "; " + ", ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float))
    return [{
        "title": "AcceptHead scores",
        "note": note,
        "charts": [
            {"type": "scatter", "title": "predicted vs label", "x": labels.tolist(), "y": preds.tolist(), "diagonal": True, "x_label": "label", "y_label": "predicted"},
            {"type": "line", "title": "calibration (mean predicted per label bin)", "series": [{"name": "mean predicted", "x": curve["x"], "y": curve["y"]}],
             "diagonal": True, "x_label": "mean label", "y_label": "mean predicted"},
            {"type": "histogram", "title": "absolute error per token", "series": [{"name": "|predicted − label|", "values": errors.tolist()}], "bins": 30, "x_label": "absolute error"},
        ],
        "tables": [{"title": "calibration bins", "columns": ["mean label", "mean predicted", "positions"], "rows": [list(r) for r in zip(curve["x"], curve["y"], curve["n"])]}],
    }]
