"""The console summary of one run and the figures it shows (``headline``).

Domain reports (``report.xlsx`` and friends) are plugins: see :mod:`evalkit.reporting`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

HEADLINE_SKIP = ("per_tool", "per_key", "by_subset", "error_types", "endpoints")


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
        if isinstance(value, Mapping) and key not in ("usage", "latency_s", "failures_by_reason", "endpoints"):
            for name, figure in _flat_headline(value, key):
                out[name] = figure
    return out


def print_summary(metrics: Mapping[str, Any], run_dir: Path, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=False)
    table = Table(title=f"evalkit results — {run_dir}", show_lines=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, figure in headline(metrics).items():
        if name.endswith((".tp", ".fp", ".fn", ".correct", ".total")):
            continue
        table.add_row(name, f"{figure:.4f}" if isinstance(figure, float) else str(figure))
    for key in ("num_samples", "num_scored", "num_failed", "num_parse_errors", "num_repaired", "num_cached", "wall_time_s"):
        if key in metrics:
            table.add_row(key, str(metrics[key]))
    console.print(table)
    failures = metrics.get("failures_by_reason")
    if failures:
        console.print("[yellow]failed samples by reason:[/yellow] " + ", ".join(f"{k}: {v}" for k, v in failures.items()))


def excel_cell(value: Any) -> Any:
    """A value Excel accepts (see :func:`evalkit.excel.excel_cell`)."""
    from evalkit.excel import excel_cell as cell

    return cell(value)


def write_reports(cfg: Any, summary: Any) -> None:
    """Kept for callers of earlier versions: see :func:`evalkit.reporting.write_reports`."""
    from evalkit.reporting import write_reports as write

    write(cfg, summary)
