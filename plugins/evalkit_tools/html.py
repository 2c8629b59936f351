"""``report.html`` sections of the tool-call domain: per-tool P/R/F1 bars, a confusion view of
label tool vs predicted tool, parameter F1 per key, and — for BFCL metrics — accuracy per
category and error-type counts. The tool-call report exposes them as its ``html_sections``.

Section and chart formats: :mod:`evalkit.html.context` and :mod:`evalkit.html.svg`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from evalkit.types import ReportContext

NONE = "(none)"
MAX_TOOLS = 40


def _level(ctx: ReportContext, key: str) -> str:
    node = (ctx.config.get("metrics") or {}).get(key) or {}
    return str(node.get("level", "name")) if isinstance(node, Mapping) else "name"


def _prf_chart(title: str, per_tool: Mapping[str, Mapping[str, Any]], *, f1_only: bool = False) -> dict[str, Any]:
    names = sorted(per_tool, key=lambda n: (-(per_tool[n].get("tp", 0) + per_tool[n].get("fn", 0)), n))[:MAX_TOOLS]
    fields = ("f1",) if f1_only else ("precision", "recall", "f1")
    return {"type": "bar", "title": title, "categories": names, "max": 1.0, "x_label": "score",
            "series": [{"name": f, "values": [per_tool[n].get(f) for n in names]} for f in fields]}


def _prf_table(title: str, result: Mapping[str, Any]) -> dict[str, Any]:
    rows = [[n, m.get("precision"), m.get("recall"), m.get("f1"), m.get("tp"), m.get("fp"), m.get("fn")] for n, m in (result.get("per_tool") or {}).items()]
    for avg in ("micro", "macro"):
        m = result.get(avg)
        if isinstance(m, Mapping):
            rows.append([f"{avg} average", m.get("precision"), m.get("recall"), m.get("f1"), None, None, None])
    return {"title": title, "columns": ["name", "precision", "recall", "f1", "tp", "fp", "fn"], "rows": rows}


def _tool_names(calls: Any) -> list[str] | None:
    if not isinstance(calls, list):
        return None
    names = [c.get("toolName") for c in calls if isinstance(c, Mapping)]
    return [str(n) for n in names if n is not None] if len(names) == len(calls) else None


def confusion(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Label tool (rows) vs predicted tool (columns) over scored samples: a tool in both is on
    the diagonal; left-over label and predicted tools of a sample are paired in order, and what
    remains goes to the ``(none)`` column (missed) or row (spurious)."""
    counts: Counter[tuple[str, str]] = Counter()
    for record in records:
        if record.get("error_type") == "request":
            continue
        label, pred = _tool_names(record.get("label")), _tool_names(record.get("prediction"))
        if label is None or pred is None:
            continue
        both = Counter(label) & Counter(pred)
        for name, n in both.items():
            counts[(name, name)] += n
        missed = list((Counter(label) - both).elements())
        spurious = list((Counter(pred) - both).elements())
        for a, b in zip(missed, spurious):
            counts[(a, b)] += 1
        for a in missed[len(spurious):]:
            counts[(a, NONE)] += 1
        for b in spurious[len(missed):]:
            counts[(NONE, b)] += 1
    if not counts:
        return None
    totals = Counter()
    for (a, b), n in counts.items():
        totals[a] += n
        totals[b] += n
    tools = [t for t, _ in totals.most_common(MAX_TOOLS) if t != NONE]
    rows, cols = tools + [NONE], tools + [NONE]
    return {"type": "heatmap", "title": "label tool (rows) vs predicted tool (columns)", "rows": rows, "cols": cols,
            "values": [[counts.get((r, c), 0) for c in cols] for r in rows], "x_label": "predicted", "y_label": "label"}


def _bfcl_section(key: str, result: Mapping[str, Any]) -> dict[str, Any]:
    per_category = result.get("per_category") or {}
    errors = result.get("error_types") or {}
    charts = []
    if per_category:
        names = sorted(per_category)
        charts.append({"type": "bar", "title": "accuracy per category", "categories": names, "max": 1.0, "x_label": "accuracy",
                       "series": [{"name": "accuracy", "values": [per_category[n].get("accuracy") for n in names]}]})
    if errors:
        names = sorted(errors, key=lambda n: -errors[n])
        charts.append({"type": "bar", "title": "error types", "categories": names, "x_label": "samples",
                       "series": [{"name": "samples", "values": [errors[n] for n in names]}]})
    table = {"title": "per category", "columns": ["category", "accuracy", "correct", "total"],
             "rows": [[n, m.get("accuracy"), m.get("correct"), m.get("total")] for n, m in sorted(per_category.items())]}
    return {"title": f"BFCL — {key}", "note": f"overall accuracy {result.get('accuracy')} ({result.get('correct')}/{result.get('total')}), BFCL's AST checker.",
            "charts": charts, "tables": [table]}


def sections(ctx: ReportContext) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    calls_charts: list[dict[str, Any]] = []
    calls_tables: list[dict[str, Any]] = []
    for key, result in (ctx.metrics or {}).items():
        if not isinstance(result, Mapping):
            continue
        if isinstance(result.get("per_tool"), Mapping) and result["per_tool"]:
            if _level(ctx, key) == "param":
                calls_charts.append(_prf_chart(f"parameter F1 per key ({key})", result["per_tool"], f1_only=True))
            else:
                calls_charts.append(_prf_chart(f"per-tool precision / recall / F1 ({key})", result["per_tool"]))
            calls_tables.append(_prf_table(key, result))
        if "per_category" in result and "error_types" in result:
            out.append(_bfcl_section(key, result))
    matrix = confusion(ctx.records)
    if matrix:
        calls_charts.append(matrix)
    if calls_charts or calls_tables:
        out.insert(0, {"title": "Tool calls", "note": "Per-tool and per-parameter scores from metrics.json; the confusion view counts tools over scored samples.",
                       "charts": calls_charts, "tables": calls_tables})
    return out
