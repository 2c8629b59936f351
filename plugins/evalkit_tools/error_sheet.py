"""The report's ``call_errors`` sheet from a run's ``metrics.json``: plain dicts in, rows out.

Kept apart from :mod:`evalkit_tools.call_errors` (the metric, which needs torch) so that
writing or re-rendering a report never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COUNTS = ("hallucinated_function", "missed_call", "spurious_call")
COLUMNS = ("samples", "calls", *COUNTS)


def call_error_rows(metrics: Mapping[str, Any]) -> list[list[Any]]:
    """Rows of the report's "call errors" sheet: a header, then one row per
    ``tool_call_errors``-shaped result in ``metrics.json`` (key, counts, shares of samples)."""
    header = ["metric", *COLUMNS, "missed_call_rate", "spurious_call_rate"]
    rows: list[list[Any]] = [header]
    for key, value in metrics.items():
        if not isinstance(value, Mapping) or not all(name in value for name in (*COUNTS, "samples")):
            continue
        samples = value["samples"] or 0
        rates = [value["missed_call"] / samples if samples else None, value["spurious_call"] / samples if samples else None]
        rows.append([key, *(value.get(name) for name in COLUMNS), *rates])
    return rows if len(rows) > 1 else []
