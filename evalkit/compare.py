"""Comparing runs: one row per run with its overrides and headline figures, plus *flips* —
the samples whose exact-match result changed between runs, predictions side by side.

Used at the end of a Hydra multirun (``evalkit.sweep.SweepSummary``) and by
``evalkit-compare RUN_DIR ...`` for runs made separately. Runs must have evaluated the same
dataset (same file content); otherwise the comparison is refused.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from evalkit.console import COUNTS, column_names, key_figures, override_table, print_comparison
from evalkit.errors import DataError, EvalKitError
from evalkit.excel import append_rows, format_sheet, save_workbook
from evalkit.verdicts import verdict, verdict_metric
from evalkit.runs import FinishedRun, load_run

log = logging.getLogger("evalkit")

SUMMARY_JSON = "summary.json"
SUMMARY_XLSX = "summary.xlsx"
__all__ = ["COUNTS", "build_comparison", "compare_dirs", "key_figures", "print_comparison", "write_comparison"]


def same_dataset(runs: Sequence[FinishedRun]) -> bool:
    """Whether every run evaluated the same samples (file content and limit). Runs over
    different data (a sweep over ``data.category``) are compared figure by figure only:
    no flips, no paired statistics."""
    first = runs[0]
    base = first.dataset.get("sha256")
    same = True
    for run in runs[1:]:
        other = run.dataset.get("sha256")
        if base is None or other is None:
            raise DataError("cannot tell which dataset a run evaluated (no run_info.json)", where=str(run.run_dir if other is None else first.run_dir))
        same = same and other == base and run.dataset.get("limit") == first.dataset.get("limit")
    return same


DIFFERENT_DATA = "the runs evaluated different data, so samples cannot be paired: no flips or paired statistics"


def flips(base: FinishedRun, other: FinishedRun) -> dict[str, Any]:
    """Samples whose verdict changed between two runs, by the metrics' own per-sample scores
    (:mod:`evalkit.verdicts`): a failed sample has no verdict and is in no flip list."""
    metric = verdict_metric(base.records) or verdict_metric(other.records)
    out: dict[str, Any] = {"base": base.name, "other": other.name, "metric": metric, "right_to_wrong": [], "wrong_to_right": []}
    if metric is None:
        out["skipped"] = "no metric of these runs scores samples right/wrong (e.g. tolerance accuracy), so there are no flips"
        return out
    theirs = {r["id"]: r for r in other.records}
    for record in base.records:
        peer = theirs.get(record["id"])
        if peer is None:
            continue
        ok_a, ok_b = verdict(record, metric), verdict(peer, metric)
        if ok_a is None or ok_b is None or ok_a == ok_b:
            continue
        row = {"id": record["id"], "label": record.get("label"), "base_prediction": record.get("prediction"), "other_prediction": peer.get("prediction")}
        out["right_to_wrong" if ok_a else "wrong_to_right"].append(row)
    return out


def report_aggregates(metrics_list: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{report name: report.summarize(runs)}`` for every registered report that has the
    optional ``summarize`` (runs = each run's metrics.json dict). A report that cannot be
    built without options, or whose summarize fails, is skipped with a warning."""
    from evalkit.registry import default_registry

    out: dict[str, Any] = {}
    try:
        entries = default_registry().entries("report")
    except Exception:  # no "report" kind (older core) or no plugins
        return out
    for entry in entries:
        try:
            factory = entry.factory
            if not hasattr(factory, "summarize"):
                continue
            report = factory() if isinstance(factory, type) else factory
            value = report.summarize(list(metrics_list))
        except Exception as exc:
            log.warning("report %r: summarize skipped: %s", entry.name, exc)
            continue
        if value is not None:
            out[entry.name] = value
    return out


def build_comparison(runs: Sequence[FinishedRun]) -> dict[str, Any]:
    """Gather: one row per run (run dir, overrides, swept values, column name, figures), the
    flips of each run against the first, and the reports' aggregates."""
    if not runs:
        raise DataError("no runs to compare", where="evalkit-compare")
    paired = same_dataset(runs) if len(runs) > 1 else True
    values, swept, shared = override_table([r.overrides for r in runs])
    swept_values = [{k: v.get(k) for k in swept} for v in values]
    names = column_names(swept_values, swept)
    rows = [
        {"run_dir": r.name, "column": name, "overrides": r.overrides, "swept": sv, "figures": key_figures(r.metrics)}
        for r, name, sv in zip(runs, names, swept_values)
    ]
    comparison: dict[str, Any] = {
        "runs": rows,
        "swept_keys": swept,
        "shared_overrides": shared,
        "flips": [flips(runs[0], other) for other in runs[1:]] if paired else [],
    }
    if not paired:
        comparison["not_paired"] = DIFFERENT_DATA
    from evalkit.html.identity import comparability, run_identity
    from evalkit.stats import compare_runs

    comparison["comparability"] = comparability([run_identity(r) for r in runs], names)  # the compare.html banner
    if paired:
        comparison["significance"] = compare_runs([r.records for r in runs], names)  # deltas vs run 0: bootstrap CIs, McNemar
    aggregates = report_aggregates([r.metrics for r in runs])
    if aggregates:
        comparison["aggregates"] = aggregates
    return comparison


def write_comparison(out_dir: Path, comparison: dict[str, Any]) -> None:
    """Write summary.json and summary.xlsx (``runs``: one column per swept key with plain
    values, then every figure; ``flips``; ``shared``: the overrides all runs have)."""
    from evalkit.excel import new_workbook

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SUMMARY_JSON).write_text(json.dumps(comparison, ensure_ascii=False, indent=2), encoding="utf-8")
    wb = new_workbook()
    sheet = wb.active
    sheet.title = "runs"
    swept = list(comparison.get("swept_keys") or [])
    columns: list[str] = []
    for row in comparison["runs"]:
        for key in row["figures"]:
            if key not in columns:
                columns.append(key)
    sheet.append(["run", *swept, *columns, "run_dir"])
    for row in comparison["runs"]:
        figures = [("yes" if v else "no") if isinstance(v, bool) else v for v in (row["figures"].get(c) for c in columns)]
        append_rows(sheet, [[row.get("column"), *[(row.get("swept") or {}).get(k) for k in swept], *figures, row["run_dir"]]])
    format_sheet(sheet, freeze="B2")
    from evalkit.excel_charts import add_headline_chart, fraction_columns, write_significance_sheet

    add_headline_chart(sheet, fraction_columns(sheet))
    flips_sheet = wb.create_sheet("flips")
    flips_sheet.append(["base_run", "other_run", "direction", "id", "label", "base_prediction", "other_prediction"])
    for pair in comparison["flips"]:
        for direction in ("right_to_wrong", "wrong_to_right"):
            append_rows(
                flips_sheet,
                [[pair["base"], pair["other"], direction, i["id"], i["label"], i["base_prediction"], i["other_prediction"]] for i in pair[direction]],
            )
    format_sheet(flips_sheet, freeze="D2")
    shared_sheet = wb.create_sheet("shared")
    shared_sheet.append(["key", "value"])
    append_rows(shared_sheet, (comparison.get("shared_overrides") or {}).items())
    format_sheet(shared_sheet)
    if comparison.get("significance"):
        format_sheet(write_significance_sheet(wb, comparison["significance"]), freeze="D2")
    save_workbook(wb, out_dir / SUMMARY_XLSX)


def compare_dirs(run_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, Any]:
    runs = [load_run(d) for d in run_dirs]
    comparison = build_comparison(runs)
    write_comparison(Path(out_dir), comparison)
    from evalkit.html import write_compare_html

    write_compare_html(out_dir, runs, comparison=comparison)
    return comparison


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evalkit-compare", description="Compare finished evalkit runs made on the same dataset.")
    parser.add_argument("run_dirs", nargs="+", help="run directories (each with metrics.json); the first is the baseline for flips")
    parser.add_argument("--out", default="evalkit-compare", help="where to write summary.json / summary.xlsx (default: ./evalkit-compare)")
    parser.add_argument("--figures", action="append", metavar="PATTERN", help="print only the figures matching this glob (repeatable), e.g. 'tool_exact_match.*'; files keep every figure")
    args = parser.parse_args(argv)
    try:
        comparison = compare_dirs(args.run_dirs, args.out)
    except EvalKitError as exc:
        sys.stderr.write(f"evalkit-compare: error: {exc}\n")
        return exc.exit_code
    print_comparison(comparison, figures=args.figures)
    print("written:\n" + "".join(f"  {Path(args.out) / name}\n" for name in (SUMMARY_JSON, SUMMARY_XLSX, "compare.html")), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
