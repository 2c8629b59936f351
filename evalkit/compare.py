"""Comparing runs: one row per run with its overrides and headline figures, plus *flips* —
the samples whose exact-match result changed between runs, predictions side by side.

Used at the end of a Hydra multirun (``evalkit.sweep.SweepSummary``) and by
``evalkit-compare RUN_DIR ...`` for runs made separately. Runs must have evaluated the same
dataset (same file content); otherwise the comparison is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from evalkit.errors import DataError, EvalKitError
from evalkit.report import excel_cell, headline, same_calls
from evalkit.runs import FinishedRun, load_run

SUMMARY_JSON = "summary.json"
SUMMARY_XLSX = "summary.xlsx"
COUNT_SUFFIXES = (".tp", ".fp", ".fn", ".correct", ".total")
COUNTS = ("num_samples", "num_failed", "num_parse_errors")


def check_same_dataset(runs: Sequence[FinishedRun]) -> None:
    first = runs[0]
    base = first.dataset.get("sha256")
    for run in runs[1:]:
        other = run.dataset.get("sha256")
        if base is None or other is None:
            raise DataError("cannot tell which dataset a run evaluated (no run_info.json)", where=str(run.run_dir if other is None else first.run_dir))
        if other != base or run.dataset.get("limit") != first.dataset.get("limit"):
            raise DataError(
                f"runs evaluated different datasets: {first.dataset.get('path')} (sha256 {base[:12]}) vs {run.dataset.get('path')} (sha256 {other[:12]})",
                where=str(run.run_dir),
                fix="compare only runs made on the same data file",
            )


def key_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    figures = {k: v for k, v in headline(metrics).items() if not k.endswith(COUNT_SUFFIXES)}
    for key in COUNTS:
        if key in metrics:
            figures[key] = metrics[key]
    return figures


def _correct_by_id(run: FinishedRun) -> dict[Any, tuple[bool, Any, Any]]:
    return {r["id"]: (same_calls(r.get("prediction"), r.get("label")) and r.get("error_type") != "request", r.get("prediction"), r.get("label")) for r in run.records}


def flips(base: FinishedRun, other: FinishedRun) -> dict[str, Any]:
    a, b = _correct_by_id(base), _correct_by_id(other)
    right_to_wrong, wrong_to_right = [], []
    for sample_id in a.keys() & b.keys():
        (ok_a, pred_a, label), (ok_b, pred_b, _) = a[sample_id], b[sample_id]
        if ok_a == ok_b:
            continue
        row = {"id": sample_id, "label": label, "base_prediction": pred_a, "other_prediction": pred_b}
        (right_to_wrong if ok_a else wrong_to_right).append(row)
    order = {r["id"]: r["index"] for r in base.records}
    right_to_wrong.sort(key=lambda r: order.get(r["id"], 0))
    wrong_to_right.sort(key=lambda r: order.get(r["id"], 0))
    return {"base": base.name, "other": other.name, "right_to_wrong": right_to_wrong, "wrong_to_right": wrong_to_right}


def build_comparison(runs: Sequence[FinishedRun]) -> dict[str, Any]:
    if not runs:
        raise DataError("no runs to compare", where="evalkit-compare")
    if len(runs) > 1:
        check_same_dataset(runs)
    rows = [{"run_dir": r.name, "overrides": r.overrides, "figures": key_figures(r.metrics)} for r in runs]
    return {"runs": rows, "flips": [flips(runs[0], other) for other in runs[1:]]}


def write_comparison(out_dir: Path, comparison: dict[str, Any]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUMMARY_JSON).write_text(json.dumps(comparison, ensure_ascii=False, indent=2), encoding="utf-8")
    wb = Workbook()
    sheet = wb.active
    sheet.title = "runs"
    columns: list[str] = []
    for row in comparison["runs"]:
        for key in row["figures"]:
            if key not in columns:
                columns.append(key)
    sheet.append(["run_dir", "overrides", *columns])
    for row in comparison["runs"]:
        sheet.append([row["run_dir"], " ".join(row["overrides"]), *[row["figures"].get(c) for c in columns]])
    flips_sheet = wb.create_sheet("flips")
    flips_sheet.append(["base_run", "other_run", "direction", "id", "label", "base_prediction", "other_prediction"])
    for pair in comparison["flips"]:
        for direction in ("right_to_wrong", "wrong_to_right"):
            for item in pair[direction]:
                flips_sheet.append([pair["base"], pair["other"], direction, excel_cell(item["id"]), excel_cell(item["label"]), excel_cell(item["base_prediction"]), excel_cell(item["other_prediction"])])
    for ws in (sheet, flips_sheet):
        for cell in ws[1]:
            cell.font = Font(bold=True)
    tmp = out_dir / (SUMMARY_XLSX + ".tmp")
    wb.save(tmp)
    tmp.replace(out_dir / SUMMARY_XLSX)


def print_comparison(comparison: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    runs = comparison["runs"]
    columns: list[str] = []
    for row in runs:
        for key in row["figures"]:
            if key not in columns and isinstance(row["figures"][key], float):
                columns.append(key)
    columns = columns[:8] + [c for c in COUNTS if any(c in r["figures"] for r in runs)]
    table = Table(title="evalkit comparison")
    table.add_column("#")
    table.add_column("overrides")
    for c in columns:
        table.add_column(c, justify="right")
    common = set.intersection(*(set(r["overrides"]) for r in runs)) if len(runs) > 1 else set()
    for i, row in enumerate(runs):
        differing = [o for o in row["overrides"] if o not in common]  # what tells the runs apart
        table.add_row(str(i), " ".join(differing) or row["run_dir"], *[_fmt(row["figures"].get(c)) for c in columns])
    console = Console()
    console.print(table)
    for pair in comparison["flips"]:
        console.print(f"flips vs run 0 → {pair['other']}: right→wrong {len(pair['right_to_wrong'])}, wrong→right {len(pair['wrong_to_right'])}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def compare_dirs(run_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, Any]:
    runs = [load_run(d) for d in run_dirs]
    comparison = build_comparison(runs)
    write_comparison(Path(out_dir), comparison)
    return comparison


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evalkit-compare", description="Compare finished evalkit runs made on the same dataset.")
    parser.add_argument("run_dirs", nargs="+", help="run directories (each with metrics.json); the first is the baseline for flips")
    parser.add_argument("--out", default="evalkit-compare", help="where to write summary.json / summary.xlsx (default: ./evalkit-compare)")
    args = parser.parse_args(argv)
    try:
        comparison = compare_dirs(args.run_dirs, args.out)
    except EvalKitError as exc:
        sys.stderr.write(f"evalkit-compare: error: {exc}\n")
        return exc.exit_code
    print_comparison(comparison)
    print(f"written: {Path(args.out) / SUMMARY_JSON}, {Path(args.out) / SUMMARY_XLSX}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
