"""Native Excel charts (openpyxl) for users who stay in the workbook: a per-tool F1 bar chart
beside the ``tools`` sheet of ``report.xlsx`` and per-run headline bars in ``summary.xlsx``,
plus the ``significance`` sheet of a comparison. Charts reference the sheet's own cells, so
they update when a user filters or edits the data."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

MAX_BARS = 60


def _bar_chart(title: str, y_title: str, *, horizontal: bool, rows: int) -> Any:
    from openpyxl.chart import BarChart

    chart = BarChart()
    chart.type = "bar" if horizontal else "col"
    chart.title = title
    chart.y_axis.title = y_title
    chart.y_axis.scaling.min = 0
    chart.height = max(7.5, min(0.5 * rows + 3, 30))
    chart.width = 18
    chart.y_axis.delete = False
    chart.x_axis.delete = False
    return chart


def add_per_tool_chart(sheet: Any, *, name_col: int = 1, value_cols: Sequence[int] = (4,), header_row: int = 1, first_row: int = 2,
                       last_row: int | None = None, num_rows: int | None = None, anchor: str | None = None, title: str = "F1 per tool") -> Any:
    """A horizontal bar chart of ``value_cols`` (1-based; default column D = f1) per name in
    ``name_col``, over the rows ``first_row..last_row`` (or the ``num_rows`` rows from
    ``first_row``; default: to the end), average rows (``micro_avg`` / ``macro_avg``) left out;
    placed at ``anchor`` (default: two columns right of the data). Returns the chart (None when
    there are no rows)."""
    from openpyxl.chart import Reference
    from openpyxl.utils import get_column_letter

    if last_row is None:
        end = first_row + num_rows - 1 if num_rows is not None else sheet.max_row
        last_row = first_row - 1
        for row in range(first_row, end + 1):
            name = sheet.cell(row=row, column=name_col).value
            if name is None or str(name).endswith("_avg"):
                break
            last_row = row
    last_row = min(last_row, first_row + MAX_BARS - 1)
    if last_row < first_row:
        return None
    chart = _bar_chart(title, "score", horizontal=True, rows=last_row - first_row + 1)
    chart.y_axis.scaling.max = 1
    for col in value_cols:
        chart.add_data(Reference(sheet, min_col=col, min_row=header_row, max_row=last_row), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=name_col, min_row=first_row, max_row=last_row))
    sheet.add_chart(chart, anchor or f"{get_column_letter(sheet.max_column + 2)}2")
    return chart


def add_headline_chart(sheet: Any, figure_cols: Sequence[int], *, name_col: int = 1, header_row: int = 1, first_row: int = 2, last_row: int | None = None,
                       anchor: str | None = None, title: str = "headline figures per run") -> Any:
    """Clustered columns: one cluster per run (rows), one bar per figure column (1-based)."""
    from openpyxl.chart import Reference
    from openpyxl.utils import get_column_letter

    last_row = last_row or sheet.max_row
    if last_row < first_row or not figure_cols:
        return None
    chart = _bar_chart(title, "value", horizontal=False, rows=len(figure_cols))
    for col in list(figure_cols)[:MAX_BARS]:
        chart.add_data(Reference(sheet, min_col=col, min_row=header_row, max_row=last_row), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=name_col, min_row=first_row, max_row=last_row))
    sheet.add_chart(chart, anchor or f"A{last_row + 3}")
    return chart


def fraction_columns(sheet: Any, *, header_row: int = 1, first_row: int = 2) -> list[int]:
    """Columns whose data cells are all numbers in [0, 1] (accuracies, F1s): what a headline
    chart shows without counts dwarfing them."""
    cols = []
    for col in range(1, sheet.max_column + 1):
        values = [sheet.cell(row=r, column=col).value for r in range(first_row, sheet.max_row + 1)]
        if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in values) and any(isinstance(v, float) for v in values):
            cols.append(col)
    return cols


def write_significance_sheet(workbook: Any, significance: Sequence[Mapping[str, Any]], title: str = "significance") -> Any:
    """One row per (other run, figure): base, other, delta, 95% CI, McNemar p, pairs."""
    from openpyxl.styles import Font

    sheet = workbook.create_sheet(title)
    sheet.append(["base_run", "other_run", "figure", "base", "other", "delta", "ci_low", "ci_high", "mcnemar_p", "pairs"])
    for pair in significance:
        for f in pair.get("figures", []):
            values = [f["base"], f["other"], f["delta"], f["ci_low"], f["ci_high"], f.get("mcnemar_p")]
            sheet.append([pair["base"], pair["other"], f["figure"], *[v if v is None or math.isfinite(v) else None for v in values], f["n"]])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in sheet.iter_rows(min_row=2, min_col=4, max_col=9):
        for cell in row:
            if isinstance(cell.value, float):
                cell.number_format = "0.0000"
    return sheet
