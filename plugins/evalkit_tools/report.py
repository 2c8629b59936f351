"""The tool-call report: ``report.xlsx`` with the sheets ``summary`` (every headline figure and
count), ``tools`` (per-tool P/R/F1), ``params`` (per tool-parameter P/R/F1), ``call_errors``
(hallucinated / missed / spurious calls) and ``badcases`` (each sample that is not exactly
right, with the row's display fields), as the seed's users build it by hand with pandas."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping
from typing import Any

from evalkit.types import ReportContext
from evalkit.verdicts import verdict, verdict_metric

REPORT_FILE = "report.xlsx"
PER_TOOL_HEADER = ["tool", "precision", "recall", "f1", "tp", "fp", "fn", "label_count", "pred_count"]


def per_tool_rows(result: Mapping[str, Any] | None) -> list[list[Any]]:
    """One row per tool (or tool-parameter key) plus the micro and macro averages."""
    if not isinstance(result, Mapping):
        return []
    rows: list[list[Any]] = []
    for name, m in (result.get("per_tool") or {}).items():
        tp, fp, fn = m.get("tp") or 0, m.get("fp") or 0, m.get("fn") or 0
        rows.append([name, m.get("precision"), m.get("recall"), m.get("f1"), tp, fp, fn, tp + fn, tp + fp])
    for avg in ("micro", "macro"):
        m = result.get(avg)
        if isinstance(m, Mapping):
            rows.append([f"{avg}_avg", m.get("precision"), m.get("recall"), m.get("f1"), None, None, None, None, None])
    return rows


def same_calls(prediction: Any, label: Any) -> bool:
    """Calls equal as an order-insensitive multiset (a missing ``paramList`` equals ``{}``) —
    the fallback verdict for records written before per-sample scores existed."""
    if not isinstance(prediction, list) or not isinstance(label, list):
        return prediction == label

    def norm(call: Any) -> Any:
        return (call.get("toolName"), call.get("paramList") or {}) if isinstance(call, dict) else call

    remaining = [norm(c) for c in label]
    if len(remaining) != len(prediction):
        return False
    for call in map(norm, prediction):
        if call not in remaining:
            return False
        remaining.remove(call)
    return True


class ToolCallReport:
    """Writes ``report.xlsx`` for runs with tool-call metrics (or ``report.excel=true`` on
    tool-call data). Options are ``report.*`` keys."""

    name = "toolcall"

    def __init__(
        self,
        tools_metric: str = "tool_f1",
        params_metric: str = "tool_param_f1",
        exact_match_metric: str = "tool_exact_match",
        display_fields: list[str] | None = None,
        max_badcases: int = 5000,
    ) -> None:
        self.tools_metric = tools_metric
        self.params_metric = params_metric
        self.exact_match_metric = exact_match_metric
        self.display_fields = list(display_fields or [])
        self.max_badcases = max_badcases

    def applies(self, ctx: ReportContext) -> bool:
        result = ctx.metrics.get(self.tools_metric)
        has_tool_metrics = isinstance(result, Mapping) and "per_tool" in result
        tool_data = (ctx.config.get("data") or {}).get("label_format") == "tool_calls"
        return has_tool_metrics or (ctx.options.get("excel") is True and tool_data)

    def badcase_records(self, ctx: ReportContext) -> list[dict[str, Any]]:
        """Samples that are not exactly right, by the exact-match metric's own per-sample verdicts."""
        metric = verdict_metric(ctx.records, preferred=self.exact_match_metric)
        out = []
        for record in ctx.records:
            ok = verdict(record, metric) if metric else (same_calls(record.get("prediction"), record.get("label")) and not record.get("error"))
            if ok and not record.get("error"):
                continue
            out.append(record)
        return out

    def write(self, ctx: ReportContext) -> list[Path]:
        from evalkit import excel

        wb = excel.new_workbook()
        wb.remove(wb.active)
        excel.write_summary_sheet(wb, ctx.metrics)
        for title, key in (("tools", self.tools_metric), ("params", self.params_metric)):
            sheet = wb.create_sheet(title)
            rows = per_tool_rows(ctx.metrics.get(key))
            sheet.append(PER_TOOL_HEADER)
            excel.append_rows(sheet, rows)
            excel.format_sheet(sheet, widths={1: 32})
            _chart(sheet, len(rows))
        from evalkit_tools.error_sheet import call_error_rows

        call_errors = call_error_rows(ctx.metrics)
        if call_errors:
            sheet = wb.create_sheet("call_errors")
            excel.append_rows(sheet, call_errors)
            excel.format_sheet(sheet)
        bad = wb.create_sheet("badcases")
        fields = self.display_fields
        bad.append(["id", *fields, "label", "prediction", "output", "error_type", "error"])
        excel.append_rows(
            bad,
            (
                [r.get("id"), *[ctx.rows.get(r["index"], {}).get(f) for f in fields], r.get("label"), r.get("prediction"), r.get("output"), r.get("error_type"), r.get("error")]
                for r in self.badcase_records(ctx)[: self.max_badcases or None]
            ),
        )
        excel.format_sheet(bad, freeze="B2")
        return [excel.save_workbook(wb, Path(ctx.run_dir) / REPORT_FILE)]

    def html_sections(self, ctx: ReportContext) -> list[dict[str, Any]]:
        try:
            from evalkit_tools.html import sections
        except ImportError:
            return []
        return sections(ctx)


def _chart(sheet: Any, num_rows: int) -> None:
    """A native per-tool F1 bar chart beside the table, when the chart helper is available."""
    try:
        from evalkit.excel_charts import add_per_tool_chart
    except ImportError:
        return
    if num_rows:
        add_per_tool_chart(sheet, num_rows=num_rows)
