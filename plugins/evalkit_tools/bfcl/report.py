"""BFCL's overview aggregates over a sweep of categories, and a BFCL-style score file per run.

``evalkit -m +experiment=bfcl data.category=simple_python,multiple,...`` runs one category per
job; ``summarize`` (called by the sweep/compare code with each job's ``metrics.json``) combines
them as BFCL's leaderboard does: the non-live AST summary is the *unweighted* mean of simple,
multiple, parallel and parallel-multiple; the live summary is weighted by each category's
number of rows; irrelevance and relevance are reported beside them. As in BFCL, a category that
was not run counts as 0 in the overall figures (weighted by its BFCL v4 size) and marks the
aggregate incomplete. Java and JavaScript are not offered, so BFCL's non-live "simple" is
``simple_python`` alone here (BFCL averages it with ``simple_java`` and ``simple_javascript``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.types import ReportContext

log = logging.getLogger("evalkit")

NON_LIVE_AST = ("simple_python", "multiple", "parallel", "parallel_multiple")
LIVE_AST = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
# Rows per category in BFCL v4 (bfcl-eval 2026.3.23): the weight of a live category not run.
SIZES = {
    "simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200, "irrelevance": 240,
    "live_simple": 258, "live_multiple": 1053, "live_parallel": 16, "live_parallel_multiple": 24,
    "live_irrelevance": 884, "live_relevance": 16,
}  # fmt: skip
SCORE_FILE = "bfcl_score.json"


def bfcl_results(metrics: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The ``bfcl``-metric results in a ``metrics.json`` dict, by metric key."""
    return {k: v for k, v in metrics.items() if isinstance(v, Mapping) and "per_category" in v and "error_types" in v}


def _unweighted(scores: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> float:
    return sum(scores[n]["accuracy"] if n in scores else 0.0 for n in names) / len(names)


def _weighted(scores: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> float:
    total = sum(scores[n]["total"] if n in scores else SIZES[n] for n in names)
    return sum(scores[n]["correct"] for n in names if n in scores) / total if total else 0.0


def _category(scores: Mapping[str, Mapping[str, Any]], name: str) -> float | None:
    return scores[name]["accuracy"] if name in scores else None


def overview(scores: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """BFCL's non-live / live / (ir)relevance summaries from per-category
    ``{"accuracy", "correct", "total"}``."""
    irrelevance = [n for n in ("irrelevance", "live_irrelevance") if n in scores]
    return {
        "non_live": {
            "overall": _unweighted(scores, NON_LIVE_AST),
            "complete": all(n in scores for n in NON_LIVE_AST),
            **{n: _category(scores, n) for n in (*NON_LIVE_AST, "irrelevance")},
        },
        "live": {
            "overall": _weighted(scores, LIVE_AST),
            "complete": all(n in scores for n in LIVE_AST),
            **{n: _category(scores, n) for n in (*LIVE_AST, "live_irrelevance", "live_relevance")},
        },
        "irrelevance": sum(scores[n]["accuracy"] for n in irrelevance) / len(irrelevance) if irrelevance else None,
        "relevance": _category(scores, "live_relevance"),
        "categories": {n: dict(scores[n]) for n in sorted(scores)},
    }


class BfclReport:
    """``bfcl_score.json`` per run (BFCL's score-file shape: a header line with accuracy and
    counts, then one line per wrong sample with its ``error_type``), and ``summarize`` for sweeps."""

    def __init__(self) -> None:  # no report.* options
        pass

    def applies(self, ctx: ReportContext) -> bool:
        return bool(bfcl_results(ctx.metrics))

    def html_sections(self, ctx: ReportContext) -> list[dict[str, Any]]:
        """Accuracy per category and error types for report.html."""
        from evalkit_tools.html import sections

        return sections(ctx)

    def write(self, ctx: ReportContext) -> list[Path]:
        key, result = next(iter(bfcl_results(ctx.metrics).items()))
        lines = [{"accuracy": result["accuracy"], "correct_count": result["correct"], "total_count": result["total"]}]
        for record in ctx.records:
            score = (record.get("scores") or {}).get(key)
            if isinstance(score, Mapping) and not score.get("valid"):
                label = record.get("label") if isinstance(record.get("label"), Mapping) else {}
                lines.append(
                    {
                        "id": record.get("id"),
                        "test_category": label.get("category"),
                        "valid": False,
                        "error_type": score.get("error_type"),
                        "model_result_raw": record.get("tool_calls") or record.get("output"),
                        "model_result_decoded": record.get("prediction"),
                        "possible_answer": label.get("ground_truth"),
                    }
                )
        path = Path(ctx.run_dir) / SCORE_FILE
        path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
        return [path]

    @staticmethod
    def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        """BFCL's overview over the runs' ``metrics.json`` dicts (one run per category)."""
        scores: dict[str, dict[str, Any]] = {}
        for metrics in runs:
            for result in bfcl_results(metrics).values():
                for name, score in result["per_category"].items():
                    if name in scores:
                        log.warning("BFCL category %s appears in more than one run; the overview needs one run per category (one model per sweep)", name)
                        return None
                    scores[name] = dict(score)
        return overview(scores) if scores else None
