"""``report.xlsx`` of a reward run: ``summary``, ``pairs`` (worst margins first, with the texts)
and ``subsets`` (accuracy per subset), for users who read results in Excel."""

from __future__ import annotations

import json
import math
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from evalkit.types import ReportContext

REPORT_FILE = "report.xlsx"
PAIR_COLUMNS = ["rank", "id", "subset", "chosen_score", "rejected_score", "margin", "correct", "prompt", "chosen", "rejected", "error"]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(str(m.get("content")) if isinstance(m, dict) else str(m) for m in value)
    return json.dumps(value, ensure_ascii=False) if value is not None else ""


class RewardReport:
    """Writes ``report.xlsx`` when the run has a ``pairwise`` result (``pairwise_metric``).

    Args:
        pairwise_metric: metrics key of the pairwise metric whose per-sample scores order the sheet.
        max_pairs: rows written to ``pairs`` at most (the worst margins are kept).
    """

    def __init__(self, pairwise_metric: str = "pairwise", max_pairs: int = 5000) -> None:
        self.pairwise_metric = pairwise_metric
        self.max_pairs = int(max_pairs)

    def applies(self, ctx: ReportContext) -> bool:
        result = ctx.metrics.get(self.pairwise_metric)
        return isinstance(result, Mapping) and "by_subset" in result and "margin" in result

    def pair_rows(self, ctx: ReportContext) -> list[list[Any]]:
        """One row per sample, worst margin first (failed samples last, with their error)."""
        rows = []
        for record in ctx.records:
            score = (record.get("scores") or {}).get(self.pairwise_metric) or {}
            row = ctx.rows.get(record["index"], {})
            responses = row.get("responses") or []
            prompt = row.get("prompt", "")
            margin = score.get("margin")
            rows.append([
                record.get("id"),
                row.get("subset"),
                score.get("chosen"),
                score.get("rejected"),
                margin,
                score.get("correct"),
                _text(prompt),
                _text(responses[0]) if responses else "",
                "\n---\n".join(_text(r) for r in responses[1:]),
                record.get("error"),
            ])

        def key(r: list[Any]) -> tuple[int, float]:
            margin = r[4]
            return (1, 0.0) if not isinstance(margin, (int, float)) or math.isnan(margin) else (0, float(margin))

        rows.sort(key=key)
        return [[i + 1, *r] for i, r in enumerate(rows[: self.max_pairs])]

    def subset_rows(self, ctx: ReportContext) -> list[list[Any]]:
        result = ctx.metrics.get(self.pairwise_metric) or {}
        rows = [[name, s.get("accuracy"), s.get("total")] for name, s in (result.get("by_subset") or {}).items()]
        rows.append(["(all)", result.get("accuracy"), result.get("total")])
        return rows

    def write(self, ctx: ReportContext) -> list[Path]:
        from evalkit.excel import append_rows, format_sheet, new_workbook, save_workbook, write_summary_sheet

        workbook = new_workbook()
        workbook.remove(workbook.active)
        write_summary_sheet(workbook, ctx.metrics)
        pairs = workbook.create_sheet("pairs")
        pairs.append(PAIR_COLUMNS)
        append_rows(pairs, self.pair_rows(ctx))
        format_sheet(pairs, freeze="C2")
        subsets = workbook.create_sheet("subsets")
        subsets.append(["subset", "accuracy", "total"])
        append_rows(subsets, self.subset_rows(ctx))
        format_sheet(subsets)
        return [save_workbook(workbook, Path(ctx.run_dir) / REPORT_FILE)]

    def html_sections(self, ctx: ReportContext) -> list[dict[str, Any]]:
        """Margin histogram, chosen vs rejected scores, calibration and subsets for report.html."""
        from evalkit_reward.html import sections

        return sections(ctx)
