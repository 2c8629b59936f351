"""Workbooks ready for analysis, opened with openpyxl: summary sheet, autofilters, frozen
panes, number formats, wrapped long cells, one column per swept key with plain values."""

from __future__ import annotations

import json

from openpyxl import Workbook, load_workbook

from evalkit.console import headline
from evalkit.excel import excel_cell, format_sheet, save_workbook, write_summary_sheet
from tests.output.conftest import load_json


def _header(sheet) -> list:
    return [c.value for c in sheet[1]]


def test_summary_xlsx_has_one_column_per_swept_key_and_analysis_ready_sheets(narrow_sweep, sweep_data):
    sweep_dir, _ = narrow_sweep
    wb = load_workbook(sweep_dir / "summary.xlsx")
    runs = wb["runs"]
    header = _header(runs)
    assert header[:2] == ["run", "backend.path"] and header[-1] == "run_dir"
    assert "overrides" not in header and "data.path" not in header  # shared overrides have their own sheet
    rows = [dict(zip(header, (c.value for c in row))) for row in runs.iter_rows(min_row=2)]
    assert [r["backend.path"] for r in rows] == [str(sweep_data["outputs"][n]) for n in ("a", "b", "c")]
    assert [r["run"] for r in rows] == ["outputs_a", "outputs_b", "outputs_c"]
    for job, row in zip(("0", "1", "2"), rows):
        metrics = load_json(sweep_dir / job / "metrics.json")
        assert row["tool_exact_match.all.accuracy"] == metrics["tool_exact_match"]["all"]["accuracy"]
        assert row["num_samples"] == metrics["num_samples"]
    shared = {r[0].value: r[1].value for r in wb["shared"].iter_rows(min_row=2)}
    assert shared["data.path"] == str(sweep_data["data"]) and shared["experiment"] == "toolcall"
    for name in ("runs", "flips", "shared"):
        sheet = wb[name]
        assert sheet.auto_filter.ref and sheet.auto_filter.ref.startswith("A1:"), name
        assert sheet.freeze_panes in ("A2", "B2", "D2"), name
        assert all(c.font.bold for c in sheet[1]), name
    assert runs.freeze_panes == "B2"  # the run name stays in view
    col = header.index("tool_f1.micro.f1") + 1
    assert all(runs.cell(row=r, column=col).number_format == "0.0000" for r in range(2, runs.max_row + 1))
    flips = wb["flips"]
    long_cells = [c for row in flips.iter_rows(min_row=2) for c in row if isinstance(c.value, str) and len(c.value) > 60]
    assert long_cells and all(c.alignment.wrap_text for c in long_cells)
    assert all(8 <= (flips.column_dimensions[letter].width or 0) <= 60 for letter in "ABCDEFG")


def test_summary_sheet_lists_every_headline_figure_and_count(narrow_sweep, tmp_path):
    sweep_dir, _ = narrow_sweep
    metrics = load_json(sweep_dir / "0" / "metrics.json")
    wb = Workbook()
    wb.active.title = "tools"
    write_summary_sheet(wb, metrics)
    path = save_workbook(wb, tmp_path / "report.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["summary", "tools"]
    sheet = wb["summary"]
    assert _header(sheet) == ["figure", "value"]
    values = {r[0].value: r[1].value for r in sheet.iter_rows(min_row=2)}
    for name, figure in headline(metrics).items():  # tp/fp/fn and correct/total included
        assert values[name] == figure, name
    assert values["tool_exact_match.all.correct"] == metrics["tool_exact_match"]["all"]["correct"]
    for key in ("num_samples", "num_failed", "num_parse_errors", "num_scored"):
        assert values[key] == metrics[key], key
    assert values["complete"] == ("yes" if metrics["complete"] else "no")
    assert sheet.auto_filter.ref == f"A1:B{sheet.max_row}" and sheet.freeze_panes == "A2"
    floats = [r[1] for r in sheet.iter_rows(min_row=2) if isinstance(r[1].value, float)]
    assert floats and all(c.number_format == "0.0000" for c in floats)
    assert sheet.column_dimensions["A"].width >= len("tool_exact_match.single.accuracy")


def test_format_sheet_wraps_json_and_sizes_columns(tmp_path):
    wb = Workbook()
    sheet = wb.active
    sheet.append(["id", "prediction", "score"])
    calls = [{"toolName": "priceCheck", "paramList": {"车长": "4.2米", "起点": "上海", "终点": "杭州"}}] * 3
    sheet.append([excel_cell("s1"), excel_cell(calls), 0.123456])
    sheet.append([excel_cell("s2\x00\x1b"), excel_cell("short"), 1])
    format_sheet(sheet, freeze="B2")
    wb = load_workbook(save_workbook(wb, tmp_path / "x.xlsx"))
    sheet = wb.active
    assert json.loads(sheet["B2"].value) == calls and sheet["B2"].alignment.wrap_text
    assert not sheet["B3"].alignment.wrap_text and sheet["A3"].value == "s2"
    assert sheet["C2"].number_format == "0.0000" and sheet["C3"].number_format == "General"
    assert sheet.column_dimensions["B"].width == 60 and sheet.column_dimensions["A"].width == 8
    assert sheet.freeze_panes == "B2" and sheet.auto_filter.ref == "A1:C3"


def test_excel_cell_is_still_importable_from_the_report_module():
    from evalkit.report import excel_cell as old

    assert old("a\x00b") == excel_cell("a\x00b") == "ab"
