"""A :class:`~evalkit.types.ReportContext` rebuilt from a run directory alone, and the report
plugins' contributions to ``report.html`` (their optional ``html_sections(ctx)``).

Section format (what ``html_sections`` returns, a list of dicts)::

    {"title": "Tool calls",                      # required
     "note": "one paragraph shown under the title",  # optional, plain text
     "charts": [<chart spec>, ...],              # see evalkit.html.svg for the kinds
     "tables": [{"title": "...", "columns": ["tool", "f1"], "rows": [["a", 0.5], ...]}]}

Values are plain JSON data; text is escaped by the page. A report that raises while building its
sections gets a notice in the page instead of breaking it.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Mapping

from evalkit.registry import Registry, default_registry
from evalkit.runs import FinishedRun, load_run
from evalkit.types import ReportContext

log = logging.getLogger("evalkit")


def dataset_rows(run: FinishedRun) -> dict[int, dict[str, Any]]:
    """The dataset rows by index, when the data file is still where the run read it (reports
    use them for display fields); ``{}`` otherwise — the records carry what the pages need."""
    from evalkit.data import load_samples

    path = (run.dataset or {}).get("path") or (run.config.get("data") or {}).get("path")
    if not path or not Path(str(path)).is_file():
        return {}
    data = run.config.get("data") or {}
    try:
        samples = load_samples(path, id_key=data.get("id_key", "id"), label_key=data.get("label_key", "label"), require_label=False)
    except Exception as exc:  # a moved or changed data file must not stop a report rebuild
        log.warning("report: dataset rows not loaded from %s (%s)", path, exc)
        return {}
    return {s.index: s.row for s in samples}


def context_from_run(run_dir: str | Path, *, with_rows: bool = True) -> ReportContext:
    run = load_run(run_dir)
    return ReportContext(
        run_dir=Path(run_dir),
        config=run.config,
        metrics=run.metrics,
        records=run.records,
        rows=dataset_rows(run) if with_rows else {},
        options=dict(run.config.get("report") or {}),
    )


def build_report(factory: Any, options: Mapping[str, Any]) -> Any:
    """A report built with the ``report.*`` options its signature names."""
    try:
        params = inspect.signature(factory).parameters  # a class: its constructor's, without self
    except (TypeError, ValueError):
        return factory()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return factory(**options)
    return factory(**{k: v for k, v in options.items() if k in params})


def reports(ctx: ReportContext, registry: Registry | None = None) -> list[tuple[str, Any]]:
    """(name, report) for every registered report that applies to this run."""
    registry = registry or default_registry()
    out = []
    for entry in registry.entries("report"):
        try:
            report = build_report(entry.factory, ctx.options)
            if report.applies(ctx):
                out.append((entry.name, report))
        except Exception as exc:
            log.warning("report '%s' (plugin %s) skipped: %s", entry.name, entry.provider, exc)
    return out


def report_sections(ctx: ReportContext, registry: Registry | None = None) -> list[dict[str, Any]]:
    sections: list[dict[str, Any]] = []
    for name, report in reports(ctx, registry):
        make = getattr(report, "html_sections", None)
        if make is None:
            continue
        try:
            for section in make(ctx) or []:
                sections.append({**section, "source": name})
        except Exception as exc:
            log.warning("report '%s': html sections failed: %s", name, exc)
            sections.append({"title": f"{name} (not drawn)", "note": f"the report's html_sections raised {type(exc).__name__}: {exc}", "source": name})
    return sections
