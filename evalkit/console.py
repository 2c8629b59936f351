"""Console tables that read well at 80 columns, in a log and when pasted into a report.

Metrics are rows and runs are columns: a sweep adds columns, not width per figure, and
every headline figure is printed in full (no ``0.…``). A comparison with more runs than fit
the width is printed in several blocks of columns, each repeating the metric names. Runs
are named by their swept values (``qwen-a``, ``a.yaml``); a legend maps each column to its
full overrides and run directory, each printed as plain text (never wrapped mid-path).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import sys
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

COUNT_SUFFIXES = (".tp", ".fp", ".fn", ".correct", ".total")
# Counts shown after the figures, in this order, when a run has them.
COUNTS = ("num_samples", "num_scored", "num_failed", "num_parse_errors")
RUN_COUNTS = (*COUNTS, "num_repaired", "num_cached", "wall_time_s")
NOT_FIGURES = ("usage", "latency_s", "failures_by_reason", "endpoints")
# Per-item breakdowns inside a metric result: tables of their own, not headline figures.
HEADLINE_SKIP = ("per_tool", "per_key", "by_subset", "error_types", "endpoints")
MAX_COLUMN_NAME = 16


def _flat_headline(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Key figures of one metric result, flattened (per-tool tables are left out)."""
    rows: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k in HEADLINE_SKIP:
                continue
            rows.extend(_flat_headline(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        rows.append((prefix, value))
    return rows


def headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``{"tool_f1.micro.f1": 0.9, ...}`` for every metric in a metrics.json dict."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping) and key not in NOT_FIGURES:
            for name, figure in _flat_headline(value, key):
                out[name] = figure
    return out


def key_figures(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The figures a comparison shows: headline figures (no raw tp/fp/fn counts), then the
    sample counts and ``complete``."""
    figures = {k: v for k, v in headline(metrics).items() if not k.endswith(COUNT_SUFFIXES)}
    for key in (*COUNTS, "complete"):
        if key in metrics:
            figures[key] = metrics[key]
    return figures


def fmt(value: Any) -> str:
    """A figure as printed: 4 decimals for floats, ``yes``/``no`` for flags."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def console_width() -> int:
    """Width to fit: ``COLUMNS`` if set, the terminal's width, else 80 (pipes, logs)."""
    return shutil.get_terminal_size((80, 24)).columns


# -- override parsing -----------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(.)")


def parse_override(text: str) -> tuple[str, str]:
    """``+backend.base_url=http\\://h\\:1`` -> ``("backend.base_url", "http://h:1")``:
    Hydra's prefix and escapes dropped, quotes around the value removed."""
    key, _, value = text.partition("=")
    key = key.lstrip("+~")
    value = _ESCAPE.sub(r"\1", value)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key, value


def override_table(runs: Sequence[Sequence[str]]) -> tuple[list[dict[str, str]], list[str], dict[str, str]]:
    """Per run ``{key: plain value}``, the keys whose values differ between runs (the swept
    keys, in first-seen order) and the overrides all runs share."""
    parsed = [dict(parse_override(o) for o in overrides) for overrides in runs]
    keys: list[str] = []
    for row in parsed:
        for key in row:
            if key not in keys:
                keys.append(key)
    swept = [k for k in keys if len({row.get(k) for row in parsed}) > 1] if len(parsed) > 1 else []
    shared = {k: parsed[0][k] for k in keys if k not in swept and parsed and k in parsed[0]}
    return parsed, swept, shared


def _short(value: str | None) -> str:
    if value is None:
        return "-"
    if "/" in value and not value.startswith(("http://", "https://")):
        value = value.rstrip("/").rsplit("/", 1)[-1] or value
        stem, dot, ext = value.rpartition(".")
        if dot and stem and ext in ("jsonl", "json", "yaml", "yml", "txt"):
            value = stem
    return value


def column_names(swept_values: Sequence[Mapping[str, str]], swept: Sequence[str]) -> list[str]:
    """Short, unique column names from the swept values; ``#i`` where none fits."""
    names = [",".join(_short(values.get(k)) for k in swept) for values in swept_values]
    if len(set(names)) != len(names) or not swept:
        return [f"#{i}" for i in range(len(names))]
    return [name if 0 < len(name) <= MAX_COLUMN_NAME else f"#{i}" for i, name in enumerate(names)]


# -- rendering ------------------------------------------------------------------------------


def _rich_console(file: TextIO | None, width: int) -> Any:
    from rich.console import Console

    return Console(file=file or sys.stdout, width=width, highlight=False, soft_wrap=False)


def _table(metric_names: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[str]], first: str = "metric") -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column(first, no_wrap=True)
    for name in columns:
        table.add_column(name, justify="right", no_wrap=True)
    for i, metric in enumerate(metric_names):
        table.add_row(metric, *[col[i] for col in values])
    return table


def _fits(console: Any, table: Any, width: int) -> bool:
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update(width=10**6), table).maximum <= width


def print_metric_table(metric_names: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[str]], *, file: TextIO | None = None, width: int | None = None, first: str = "metric") -> None:
    """Metrics as rows, one column per entry of ``columns`` (``values[c][m]``); columns that do
    not fit ``width`` go to further blocks, each repeating the metric names."""
    width = width or console_width()
    console = _rich_console(file, width)
    start = 0
    while start < len(columns) or start == 0:
        end = start + 1
        while end < len(columns) and _fits(console, _table(metric_names, columns[start : end + 1], values[start : end + 1], first), width):
            end += 1
        if start:
            console.print()
        console.print(_table(metric_names, columns[start:end], values[start:end], first))
        start = end
        if not columns:
            break


def print_summary(metrics: Mapping[str, Any], run_dir: Path | str, console: Any = None, *, file: TextIO | None = None) -> None:
    """The single-run results table; the run dir on its own plain line above it."""
    out = file or getattr(console, "file", None) or sys.stdout
    names, values = [], []
    for name, figure in headline(metrics).items():
        if not name.endswith(COUNT_SUFFIXES):
            names.append(name)
            values.append(fmt(figure))
    for key in (*RUN_COUNTS, "complete"):
        if key in metrics:
            names.append(key)
            values.append(fmt(metrics[key]))
    out.write("evalkit results, run dir:\n")
    out.write(f"{run_dir}\n")
    out.flush()
    print_metric_table(names, ["value"], [values], file=out)
    failures = metrics.get("failures_by_reason")
    if failures:
        out.write("failed samples by reason: " + ", ".join(f"{k}: {v}" for k, v in failures.items()) + "\n")
    out.flush()


def print_comparison(comparison: Mapping[str, Any], *, file: TextIO | None = None, width: int | None = None, figures: Sequence[str] | None = None) -> None:
    """The comparison table of ``evalkit -m`` and ``evalkit-compare``: a legend (column ->
    swept values, run dir), the figures of every run side by side, the flip counts.
    ``figures``: glob patterns of the figures to print (default: all)."""
    out = file or sys.stdout
    runs = list(comparison["runs"])
    swept = list(comparison.get("swept_keys") or [])
    columns = [r.get("column") or f"#{i}" for i, r in enumerate(runs)]
    out.write(f"evalkit comparison: {len(runs)} run(s)" + (f", swept: {', '.join(swept)}" if swept else "") + "\n")
    for column, run in zip(columns, runs):
        values = " ".join(f"{k}={v}" for k, v in (run.get("swept") or {}).items())
        out.write(f"  {column}: {values}\n" if values else f"  {column}:\n")
        out.write(f"    {run['run_dir']}\n")
    out.write("\n")
    names: list[str] = []
    for run in runs:
        for key, value in run["figures"].items():
            if key not in names and key not in COUNTS and key != "complete" and isinstance(value, (int, float)):
                names.append(key)
    names += [k for k in (*COUNTS, "complete") if any(k in r["figures"] for r in runs)]
    if figures:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, pattern) for pattern in figures)]
    values = [[fmt(r["figures"].get(n)) for n in names] for r in runs]
    out.flush()
    print_metric_table(names, columns, values, file=out, width=width)
    if comparison.get("not_paired"):
        out.write(f"flips: none, {comparison['not_paired']}\n")
    for pair in comparison.get("flips") or []:
        other = next((c for c, r in zip(columns, runs) if r["run_dir"] == pair["other"]), pair["other"])
        if pair.get("skipped"):
            out.write(f"flips {columns[0]} -> {other}: {pair['skipped']}\n")
            continue
        out.write(f"flips {columns[0]} -> {other}: right->wrong {len(pair['right_to_wrong'])}, wrong->right {len(pair['wrong_to_right'])}\n")
    for job in comparison.get("failed_jobs") or []:
        out.write(f"failed job (no results): {job}\n")
    for job in comparison.get("incomplete_jobs") or []:
        out.write(f"incomplete job (failed samples): {job}\n")
    out.flush()
