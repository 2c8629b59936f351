"""Earlier home of the run's console summary and its figures (now :mod:`evalkit.console`).

Domain reports (``report.xlsx`` and friends) are plugins: see :mod:`evalkit.reporting`.
"""

from __future__ import annotations

from typing import Any

# The figures and the run's table live in evalkit.console (tables that fit 80 columns and
# pipes); kept importable from here for earlier callers.
from evalkit.console import HEADLINE_SKIP, headline, print_summary  # noqa: F401


def excel_cell(value: Any) -> Any:
    """A value Excel accepts (see :func:`evalkit.excel.excel_cell`)."""
    from evalkit.excel import excel_cell as cell

    return cell(value)


def write_reports(cfg: Any, summary: Any) -> None:
    """Kept for callers of earlier versions: see :func:`evalkit.reporting.write_reports`."""
    from evalkit.reporting import write_reports as write

    write(cfg, summary)
