"""``report.html`` sections of reward-model / preference runs: the margin histogram, chosen vs
rejected score distributions, calibration of σ(margin) and accuracy per subset — from the
pairwise metric's per-sample scores (``{"chosen", "rejected", "margin", "correct"}``) and, when
the run has one, the calibration metric's own bins.

Section and chart formats: :mod:`evalkit.html.context` and :mod:`evalkit.html.svg`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from evalkit.types import ReportContext

CALIBRATION_BINS = 10
SUBSET_KEYS = ("subset", "category")


def _pair_key(records: list[dict[str, Any]]) -> str | None:
    for record in records:
        for key, score in (record.get("scores") or {}).items():
            if isinstance(score, Mapping) and {"chosen", "rejected", "margin"} <= set(score):
                return key
    return None


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def calibration_curve(margins: list[float], correct: list[bool], bins: int = CALIBRATION_BINS) -> dict[str, list[Any]]:
    """Confidence ``σ(|margin|)`` in equal-width bins over [0.5, 1] against the share of pairs
    the model ordered right — the reading of :class:`PairwiseCalibration` from the records."""
    sums: list[list[float]] = [[0.0, 0.0, 0] for _ in range(bins)]  # type: ignore[misc]
    for m, ok in zip(margins, correct):
        confidence = _sigmoid(abs(m))
        b = min(int((confidence - 0.5) / 0.5 * bins), bins - 1)
        sums[b][0] += confidence
        sums[b][1] += float(ok)
        sums[b][2] += 1
    rows = [(s[0] / s[2], s[1] / s[2], int(s[2])) for s in sums if s[2]]
    return {"x": [r[0] for r in rows], "y": [r[1] for r in rows], "n": [r[2] for r in rows]}


def _metric_bins(ctx: ReportContext) -> dict[str, list[Any]] | None:
    for result in (ctx.metrics or {}).values():
        if isinstance(result, Mapping) and isinstance(result.get("bins"), list) and "ece" in result:
            bins = [b for b in result["bins"] if isinstance(b, Mapping) and b.get("count")]
            return {"x": [b.get("confidence") for b in bins], "y": [b.get("accuracy") for b in bins], "n": [b.get("count") for b in bins], "ece": result.get("ece")}
    return None


def _subset(record: Mapping[str, Any]) -> str | None:
    for key in SUBSET_KEYS:
        if isinstance(record.get(key), str):
            return record[key]
    return None


def sections(ctx: ReportContext) -> list[dict[str, Any]]:
    key = _pair_key(ctx.records)
    if key is None:
        return []
    chosen, rejected, margins, correct = [], [], [], []
    per_subset: dict[str, list[int]] = {}
    for record in ctx.records:
        score = (record.get("scores") or {}).get(key)
        if record.get("error_type") == "request" or not isinstance(score, Mapping) or not _number(score.get("margin")):
            continue
        margins.append(float(score["margin"]))
        ok = bool(score.get("correct", score["margin"] > 0))
        correct.append(ok)
        if _number(score.get("chosen")) and _number(score.get("rejected")):
            chosen.append(float(score["chosen"]))
            rejected.append(float(score["rejected"]))
        name = _subset(record)
        if name is not None:
            counts = per_subset.setdefault(name, [0, 0])
            counts[0] += ok
            counts[1] += 1
    if not margins:
        return []
    curve = _metric_bins(ctx) or calibration_curve(margins, correct)
    charts: list[dict[str, Any]] = [
        {"type": "histogram", "title": "margin (chosen − rejected)", "series": [{"name": "margin", "values": margins}], "bins": 40, "x_label": "margin"},
    ]
    if chosen:
        charts.append({"type": "histogram", "title": "chosen vs rejected scores", "series": [{"name": "chosen", "values": chosen}, {"name": "rejected", "values": rejected}], "bins": 40, "x_label": "score"})
    charts.append({"type": "line", "title": "calibration of σ(margin)" + (f" — ECE {curve['ece']:.4f}" if _number(curve.get("ece")) else ""),
                   "series": [{"name": "accuracy", "x": curve["x"], "y": curve["y"]}], "diagonal": True, "x_range": [0.5, 1.0], "y_range": [0.0, 1.0],
                   "x_label": "confidence σ(|margin|)", "y_label": "pairs ordered right"})
    tables = []
    if per_subset:
        names = sorted(per_subset)
        charts.append({"type": "bar", "title": "accuracy per subset", "categories": names, "max": 1.0, "x_label": "accuracy",
                       "series": [{"name": "accuracy", "values": [per_subset[n][0] / per_subset[n][1] for n in names]}]})
        tables.append({"title": "per subset", "columns": ["subset", "accuracy", "right", "pairs"], "rows": [[n, per_subset[n][0] / per_subset[n][1], per_subset[n][0], per_subset[n][1]] for n in names]})
    accuracy = sum(correct) / len(correct)
    return [{"title": "Preference pairs", "note": f"{len(margins)} scored pairs ({key}); accuracy {accuracy:.4f}.", "charts": charts, "tables": tables}]
