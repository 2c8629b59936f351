"""Self-contained HTML pages: ``report.html`` per run and ``compare.html`` per comparison.

Both open from ``file://`` with no network: styles, the explorer script and the data are
inlined, and charts are static SVG drawn in Python (:mod:`evalkit.html.svg`). Domain plugins
contribute sections through their report's optional ``html_sections(ctx)`` (format in
:mod:`evalkit.html.context`).
"""

from __future__ import annotations

from evalkit.html.compare_page import COMPARE_HTML, write_compare_html
from evalkit.html.run_page import REPORT_HTML, write_run_html

__all__ = ["COMPARE_HTML", "REPORT_HTML", "write_compare_html", "write_run_html"]
