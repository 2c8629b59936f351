"""Workbook helpers every evalkit workbook writer uses, so each sheet is ready for analysis.

:func:`format_sheet` gives a sheet a bold frozen header, an autofilter over its data,
column widths from its content (capped), wrapped long or multi-line cells (JSON of calls,
model outputs) and 4-digit number formats on floats. :func:`write_summary_sheet` lists every
headline figure and count of a ``metrics.json`` dict. :func:`excel_cell` makes any value a
cell Excel accepts. :func:`new_workbook` is the way to start one. openpyxl is imported inside
the functions (the core imports it lazily).
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Iterable, Mapping
from typing import Any

from evalkit.console import NOT_FIGURES, headline

NUMBER_FORMAT = "0.0000"
MAX_CELL = 32000
MIN_WIDTH, MAX_WIDTH = 8, 60
WRAP_OVER = 60  # characters; longer text cells wrap (and rows grow) instead of running on
SUMMARY_SHEET = "summary"


def excel_cell(value: Any) -> Any:
    """A value Excel accepts: JSON for structures, control characters dropped, length capped."""
    if value is None or isinstance(value, (int, float, str)):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    if isinstance(text, str) and len(text) > MAX_CELL:
        text = text[:MAX_CELL] + "…"
    if isinstance(text, str):
        # openpyxl rejects control characters
        text = "".join(ch for ch in text if ch in "\n\t" or ord(ch) >= 32)
    return text


def _text_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, float):
        return 8
    text = str(value)
    # wide (CJK) characters take about two columns
    return max(sum(2 if ord(ch) > 0x2E80 else 1 for ch in line) for line in text.split("\n"))


def format_sheet(sheet: Any, *, freeze: str = "A2", header_rows: int = 1, widths: Mapping[int, float] | None = None) -> Any:
    """Bold frozen header, autofilter, content-based column widths, wrapped long cells and
    ``0.0000`` on float cells. ``freeze`` is the top-left unfrozen cell (``B2`` also keeps
    the first column in view); ``widths`` (1-based column -> width) overrides the measured
    ones. Returns the sheet."""
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    if sheet.max_row < 1 or sheet.max_column < 1:
        return sheet
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    measured: dict[int, int] = {}
    for row in sheet.iter_rows():
        for cell in row:
            value = cell.value
            if value is None:
                continue
            col = cell.column
            measured[col] = max(measured.get(col, 0), min(_text_width(value), MAX_WIDTH + 1))
            if cell.row <= header_rows:
                cell.font = bold
                continue
            if isinstance(value, float):
                cell.number_format = NUMBER_FORMAT
            elif isinstance(value, str) and (len(value) > WRAP_OVER or "\n" in value):
                cell.alignment = wrap
    for col in range(1, sheet.max_column + 1):
        width = (widths or {}).get(col) or min(max(measured.get(col, 0) + 2, MIN_WIDTH), MAX_WIDTH)
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.auto_filter.ref = f"A{header_rows}:{get_column_letter(sheet.max_column)}{max(sheet.max_row, header_rows)}"
    sheet.freeze_panes = freeze
    return sheet


def summary_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(figure, value)`` for every headline figure (tp/fp/fn and correct/total included),
    every top-level count and flag, failures by reason, usage and latency figures."""
    rows: list[tuple[str, Any]] = list(headline(metrics).items())
    for key, value in metrics.items():
        if isinstance(value, (bool, int, float)):
            rows.append((key, value))
    for section in NOT_FIGURES:
        value = metrics.get(section)
        if isinstance(value, Mapping):
            rows.extend((f"{section}.{k}", v) for k, v in value.items() if isinstance(v, (int, float)))
    return rows


def write_summary_sheet(workbook: Any, metrics: Mapping[str, Any], *, title: str = SUMMARY_SHEET, index: int | None = 0) -> Any:
    """Add a ``summary`` sheet (``figure`` | ``value``) with every headline figure and count
    of ``metrics``; ``index=0`` puts it first. Returns the formatted sheet."""
    sheet = workbook.create_sheet(title, index)
    sheet.append(["figure", "value"])
    for name, value in summary_rows(metrics):
        sheet.append([name, "yes" if value is True else "no" if value is False else value])
    return format_sheet(sheet)


def new_workbook() -> Any:
    """An empty ``openpyxl.Workbook`` (openpyxl imported without Pillow: see
    :func:`evalkit.warmup.import_openpyxl`)."""
    from evalkit.warmup import import_openpyxl

    return import_openpyxl().Workbook()


def append_rows(sheet: Any, rows: Iterable[Iterable[Any]]) -> None:
    """Append rows with every value made Excel-safe."""
    for row in rows:
        sheet.append([excel_cell(v) for v in row])


def save_workbook(workbook: Any, path: str | Path, *, format_all: bool = False) -> Path:
    """Save atomically (a reader never sees half a workbook); ``format_all`` runs
    :func:`format_sheet` on every sheet first."""
    path = Path(path)
    if format_all:
        for sheet in workbook.worksheets:
            format_sheet(sheet)
    tmp = path.with_name(path.name + ".tmp")
    workbook.save(tmp)
    tmp.replace(path)
    return path
