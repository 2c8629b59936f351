"""End-of-run reports: a rich summary table on the console and, for tool-call runs,
``report.xlsx`` with the sheets ``tools`` (per-tool P/R/F1), ``params`` (per tool-parameter
P/R/F1) and ``badcases`` (each sample whose prediction differs from its label, with the row's
display fields), as seed 002's users build by hand with pandas today.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from evalkit.config import to_container
from evalkit.console import headline, print_summary  # noqa: F401  (moved; importable from here)
from evalkit.excel import excel_cell  # noqa: F401  (moved; importable from here)

REPORT_FILE = "report.xlsx"


def _autosize(sheet: Any, widths: Iterable[int]) -> None:
    from openpyxl.utils import get_column_letter

    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(max(width, 8), 80)


def _per_tool_rows(result: Mapping[str, Any] | None) -> list[list[Any]]:
    if not isinstance(result, Mapping):
        return []
    rows: list[list[Any]] = []
    per_tool = result.get("per_tool") or {}
    for name, m in per_tool.items():
        rows.append([name, m.get("precision"), m.get("recall"), m.get("f1"), m.get("tp"), m.get("fp"), m.get("fn"),
                     (m.get("tp") or 0) + (m.get("fn") or 0), (m.get("tp") or 0) + (m.get("fp") or 0)])
    for avg in ("micro", "macro"):
        m = result.get(avg)
        if isinstance(m, Mapping):
            rows.append([f"{avg}_avg", m.get("precision"), m.get("recall"), m.get("f1"), None, None, None, None, None])
    return rows


def same_calls(prediction: Any, label: Any) -> bool:
    """Exact match as ``ToolCallExactMatch`` defines it: the calls as an order-insensitive
    multiset, Python equality of values (``1 == 1.0``), a missing ``paramList`` equal to ``{}``."""
    if not isinstance(prediction, list) or not isinstance(label, list):
        return prediction == label

    def norm(call: Any) -> Any:
        if isinstance(call, dict):
            return (call.get("toolName"), call.get("paramList") or {})
        return call

    remaining = [norm(c) for c in label]
    if len(remaining) != len(prediction):
        return False
    for call in map(norm, prediction):
        for i, other in enumerate(remaining):
            if other == call:
                del remaining[i]
                break
        else:
            return False
    return not remaining


def write_excel(path: Path, metrics: Mapping[str, Any], records: list[dict[str, Any]], rows_by_index: Mapping[int, Mapping[str, Any]], report_cfg: Mapping[str, Any]) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    header = ["tool", "precision", "recall", "f1", "tp", "fp", "fn", "label_count", "pred_count"]
    wb = Workbook()
    tools = wb.active
    tools.title = "tools"
    params = wb.create_sheet("params")
    for sheet, key in ((tools, report_cfg.get("tools_metric", "tool_f1")), (params, report_cfg.get("params_metric", "tool_param_f1"))):
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in _per_tool_rows(metrics.get(key)):
            sheet.append(row)
        for row in sheet.iter_rows(min_row=2, min_col=2, max_col=4):
            for cell in row:
                cell.number_format = "0.0000"
        _autosize(sheet, [32, 10, 10, 10, 8, 8, 8, 12, 12])
    bad = wb.create_sheet("badcases")
    fields = list(report_cfg.get("display_fields") or [])
    bad.append(["id", *fields, "label", "prediction", "output", "error"])
    for cell in bad[1]:
        cell.font = Font(bold=True)
    limit = int(report_cfg.get("max_badcases") or 0) or None
    count = 0
    for record in records:
        if same_calls(record.get("prediction"), record.get("label")) and not record.get("error"):
            continue
        row = rows_by_index.get(record["index"], {})
        bad.append([excel_cell(record.get("id")), *[excel_cell(row.get(f)) for f in fields], excel_cell(record.get("label")),
                    excel_cell(record.get("prediction")), excel_cell(record.get("output")), excel_cell(record.get("error"))])
        count += 1
        if limit and count >= limit:
            break
    _autosize(bad, [12, *[30] * len(fields), 50, 50, 60, 30])
    bad.freeze_panes = "B2"
    tmp = path.with_suffix(".xlsx.tmp")
    wb.save(tmp)
    tmp.replace(path)
    return path


def wants_excel(metrics: Mapping[str, Any], report_cfg: Mapping[str, Any]) -> bool:
    excel = report_cfg.get("excel", "auto")
    if excel in (True, "true", "True"):
        return True
    if excel in (False, "false", "False", None):
        return False
    key = report_cfg.get("tools_metric", "tool_f1")
    return isinstance(metrics.get(key), Mapping) and "per_tool" in metrics[key]


def write_reports(cfg: Any, summary: Any) -> None:
    """Console table and (for tool-call runs) report.xlsx, as configured under ``report``."""
    report_cfg = to_container(cfg.get("report")) or {}
    if wants_excel(summary.metrics, report_cfg):
        write_excel(summary.run_dir / REPORT_FILE, summary.metrics, summary.records, summary.rows, report_cfg)
    if report_cfg.get("console", True):
        print_summary(summary.metrics, summary.run_dir)
