"""``report.html``: one self-contained page per run — who/what/on which data, the headline
figures, the domain reports' charts, and a sample explorer — built from the run dir alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from evalkit.html.context import context_from_run, report_sections
from evalkit.html.identity import identity
from evalkit.html.page import render_page, write_atomic
from evalkit.html.samples import BUDGET_BYTES, sample_payload
from evalkit.registry import Registry
from evalkit.states import read_run_info
from evalkit.types import ReportContext

REPORT_HTML = "report.html"
COUNT_SUFFIXES = (".tp", ".fp", ".fn", ".correct", ".total")
MAX_HEADLINE = 24


def headline_figures(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The metric figures of ``metrics.json`` flattened (``tool_f1.micro.f1``), counts left out."""
    from evalkit.console import headline

    return {k: v for k, v in headline(metrics).items() if not k.endswith(COUNT_SUFFIXES)}


def _generation_text(generation: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in generation.items()) or "–"


def identity_rows(ident: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    sha = ident.get("data_sha256")
    data = f"{ident.get('data_file')}" + (f" · sha256 {sha[:16]}" if sha else "") + (f" · {ident.get('data_rows')} rows" if ident.get("data_rows") is not None else "")
    if ident.get("data_limit"):
        data += f" · limit {ident['data_limit']}"
    prompt = ident.get("prompt_file") or "–"
    if ident.get("prompt_overrides"):
        prompt += " (with " + ", ".join(ident["prompt_overrides"]) + " set in the config)"
    rows = [
        ("model", ident.get("model") or "–"),
        ("backend", " ".join([str(ident.get("backend"))] + [f"{k}={v}" for k, v in (ident.get("backend_options") or {}).items() if k in ("model", "base_url", "path")])),
        ("data", data),
        ("prompt", prompt),
        ("generation", _generation_text(ident.get("generation") or {})),
        ("head / parser", f"{ident.get('head') or '–'} / {ident.get('parser') or '–'}"),
        ("wall time", f"{metrics['wall_time_s']:.2f} s" if isinstance(metrics.get("wall_time_s"), (int, float)) else "–"),
    ]
    if ident.get("overrides"):
        rows.append(("overrides", " ".join(ident["overrides"])))
    return rows


def count_chips(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    chips = []
    for key, warn in (("num_samples", None), ("num_scored", None), ("num_failed", "bad"), ("num_parse_errors", "warn"), ("num_repaired", "warn"), ("num_cached", None)):
        if key in metrics:
            value = metrics[key]
            chips.append({"name": key.removeprefix("num_").replace("_", " "), "value": value, "cls": warn if warn and value else ""})
    if metrics.get("complete") is False:
        chips.append({"name": "complete", "value": False, "cls": "bad"})
    return chips


def write_run_html(run_dir: str | Path, *, ctx: ReportContext | None = None, registry: Registry | None = None, budget: int = BUDGET_BYTES) -> Path:
    """Write ``report.html`` into ``run_dir`` (from its files, or from ``ctx`` when the caller
    has the run in memory) and return its path."""
    run_dir = Path(run_dir)
    ctx = ctx or context_from_run(run_dir)
    metrics = ctx.metrics or {}
    ident = identity(ctx.config or {}, read_run_info(run_dir))
    payload = sample_payload(ctx.records, ctx.rows, budget=budget)
    sections = report_sections(ctx, registry)
    figures = headline_figures(metrics)
    chips = [{"name": k, "value": v, "cls": ""} for k, v in list(figures.items())[:MAX_HEADLINE]] + count_chips(metrics)
    banners = []
    failed = metrics.get("num_failed") or 0
    if failed or metrics.get("complete") is False:
        banners.append({"kind": "incomplete", "bad": True, "title": f"Incomplete run: {failed} sample(s) failed and are left out of the metrics; re-run the same command to retry them.", "lines": []})
    if not figures:
        banners.append({"kind": "no-metrics", "bad": False, "title": "This run has no metric figures (no metrics configured, or nothing was scored).", "lines": []})
    html = render_page(
        page="run",
        title=f"evalkit report — {run_dir.resolve().name}",
        identity=identity_rows(ident, metrics),
        chips=chips,
        banners=banners,
        sections=sections,
        payload=payload,
        error_types=sorted({r.get("error_type") for r in ctx.records if r.get("error_type")}),
        subsets=sorted({s["sub"] for s in payload["samples"] if s["sub"] is not None}),
        data={"page": "run", "strings": payload["strings"], "samples": payload["samples"]},
    )
    return write_atomic(run_dir / REPORT_HTML, html)
