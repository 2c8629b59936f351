"""The AcceptHead (per-token regression) report: no files of its own, its charts in ``report.html``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalkit.types import ReportContext

METRIC_NAME = "tolerance_accuracy"


class AcceptHeadReport:
    """Applies to runs with a ``tolerance_accuracy`` metric; contributes the scatter, the
    calibration curve and the error histogram of :mod:`evalkit_metrics.html`."""

    name = "accept_head"

    def applies(self, ctx: ReportContext) -> bool:
        return any(isinstance(node, Mapping) and node.get("name") == METRIC_NAME for node in (ctx.config.get("metrics") or {}).values())

    def write(self, ctx: ReportContext) -> list[Any]:
        return []

    def html_sections(self, ctx: ReportContext) -> list[dict[str, Any]]:
        from evalkit_metrics.html import sections

        return sections(ctx)
