"""End-of-run reports: every registered report plugin whose ``applies(ctx)`` is true writes its
files into the run dir; ``report.*`` keys beyond the core's go to the reports that take them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from evalkit.config import to_container
from evalkit.errors import ConfigError, PluginError
from evalkit.factory import _parameters
from evalkit.registry import Registry, default_registry
from evalkit.schema import split_section
from evalkit.types import Report, ReportContext

log = logging.getLogger("evalkit")


def build_reports(options: Mapping[str, Any], registry: Registry | None = None, *, only: Any = None) -> dict[str, Any]:
    """Instantiate the report plugins (all registered, or ``only`` those named) with the
    ``report.*`` options each one's signature names; an option no report takes is an error."""
    registry = registry or default_registry()
    names = registry.names("report")
    if only is not None:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ConfigError(f"unknown report '{unknown[0]}'; available: {', '.join(names) or '(none)'}", where="report.writers")
        names = list(only)
    taken: set[str] = set()
    reports: dict[str, Any] = {}
    factories = {name: registry.get("report", name, where="report.writers").factory for name in names}
    for name, factory in factories.items():
        params, _ = _parameters(factory)
        mine = {k: v for k, v in options.items() if k in params}
        taken |= set(mine)
        report = factory(**mine)
        if not isinstance(report, Report):
            raise PluginError(f"report '{name}' built a {type(report).__name__}, which lacks applies(ctx) / write(ctx)", where="report.writers", fix="the plugin must return an object following evalkit.types.Report")
        reports[name] = report
    all_params = set().union(*(set(_parameters(f)[0]) for f in factories.values())) if factories else set()
    for key in options:
        if key not in taken and key not in all_params:
            raise ConfigError(f"unknown option '{key}' for report (no report takes it)", where=f"report.{key}", fix="remove it or fix its spelling (`evalkit-plugins` lists the reports)")
    return reports


def write_reports(cfg: Any, summary: Any, registry: Registry | None = None, *, console: bool | None = None) -> list[Path]:
    """Domain reports, ``report.html`` and the console table, as ``report.*`` configures.
    ``summary`` has ``run_dir``, ``metrics``, ``records`` and ``rows`` (a :class:`RunSummary`)."""
    core, extra = split_section("report", cfg.get("report") if hasattr(cfg, "get") else None)
    excel = core.get("excel", "auto")
    ctx = ReportContext(
        run_dir=Path(summary.run_dir),
        config=to_container(cfg) or {},
        metrics=summary.metrics,
        records=summary.records,
        rows=summary.rows,
        options={**core, **extra},
    )
    written: list[Path] = []
    if excel is not False:
        for name, report in build_reports(extra, registry, only=core.get("writers")).items():
            if report.applies(ctx):  # each report reads ctx.options['excel'] (auto/true) itself
                written.extend(Path(p) for p in report.write(ctx) or [])
    if core.get("html", True):
        written.extend(_write_html(ctx))
    if core.get("console", True) if console is None else console:
        from evalkit.console import print_summary

        print_summary(summary.metrics, summary.run_dir)
    return written


def _write_html(ctx: ReportContext) -> list[Path]:
    try:
        from evalkit.html import write_run_html
    except ImportError:
        return []
    try:
        return [Path(write_run_html(ctx.run_dir, ctx=ctx))]
    except Exception as exc:  # a broken page must not fail a finished run
        log.warning("report.html could not be written: %s", exc)
        return []
