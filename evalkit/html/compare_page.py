"""``compare.html``: the runs side by side, per-figure deltas against a base run with 95%
paired-bootstrap intervals and exact McNemar p-values (:mod:`evalkit.stats`), a banner when
the runs are not directly comparable, and a flips explorer (right→wrong, wrong→right)."""

from __future__ import annotations

import math
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.html.identity import comparability, run_identity
from evalkit.html.page import render_page, write_atomic
from evalkit.html.run_page import headline_figures
from evalkit.html.samples import Strings, text_ref
from evalkit.runs import FinishedRun
from evalkit.stats import compare_runs, paired_records
from evalkit.verdicts import as_verdict

COMPARE_HTML = "compare.html"
FLIPS_CAP = 2000  # per run, metric and direction
MAX_BAR_FIGURES = 12


def differing_overrides(runs: Sequence[FinishedRun]) -> list[list[str]]:
    common = set.intersection(*(set(r.overrides) for r in runs)) if len(runs) > 1 else set()
    return [[o for o in r.overrides if o not in common] for r in runs]


def run_names(runs: Sequence[FinishedRun]) -> list[str]:
    """Short names: the overrides that tell a run apart, else its directory name."""
    names = []
    for run, diff in zip(runs, differing_overrides(runs)):
        names.append(" ".join(diff) or Path(run.run_dir).name)
    if len(set(names)) < len(names):
        names = [f"{i}: {n}" for i, n in enumerate(names)]
    return names


def _side(record: Mapping[str, Any], strings: Strings, cuts: list[int]) -> dict[str, Any]:
    return {"o": text_ref(record.get("output"), strings, cuts), "p": text_ref(record.get("prediction"), strings, cuts), "s": record.get("scores") or {}}


def flip_items(runs: Sequence[FinishedRun], base: int, strings: Strings) -> tuple[list[dict[str, Any]], bool]:
    items: list[dict[str, Any]] = []
    cut = False
    cuts = [0]
    for i, run in enumerate(runs):
        if i == base:
            continue
        counts: dict[tuple[str, str], int] = {}
        for a, b in paired_records(runs[base].records, run.records):
            for key in (a.get("scores") or {}):
                va, vb = as_verdict(a["scores"].get(key)), as_verdict((b.get("scores") or {}).get(key))
                if va is None or vb is None or va == vb:
                    continue
                direction = "r2w" if va else "w2r"
                n = counts[(key, direction)] = counts.get((key, direction), 0) + 1
                if n > FLIPS_CAP:
                    cut = True
                    continue
                messages = a.get("messages") if isinstance(a.get("messages"), list) else []
                items.append({"i": a.get("index"), "id": str(a.get("id")), "key": key, "dir": direction, "pair": i,
                              "l": text_ref(a.get("label"), strings, cuts),
                              "m": [[str(m.get("role", "")), text_ref(m.get("content"), strings, cuts)] for m in messages if isinstance(m, Mapping)],
                              "b": _side(a, strings, cuts), "x": _side(b, strings, cuts)})
    return items, cut


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def significance_sections(significance: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    sections = []
    for pair in significance:
        rows, interval_rows = [], []
        for f in pair["figures"]:
            significant = _finite(f["ci_low"]) and _finite(f["ci_high"]) and (f["ci_low"] > 0 or f["ci_high"] < 0)
            ci = f"[{f['ci_low']:+.4f}, {f['ci_high']:+.4f}]" if _finite(f["ci_low"]) else "–"
            rows.append([f["figure"], f["base"], f["other"], f"{f['delta']:+.4f}" if _finite(f["delta"]) else "–", ci + (" *" if significant else ""),
                         f.get("mcnemar_p"), f["n"]])
            interval_rows.append({"label": f["figure"], "value": f["delta"], "low": f["ci_low"], "high": f["ci_high"]})
        mcnemar = [[k, m["n"], m["right_to_wrong"], m["wrong_to_right"], m["p_value"]] for k, m in pair["mcnemar"].items()]
        tables = [{"title": "deltas (other − base), 95% paired-bootstrap CI; * = CI excludes 0", "columns": ["figure", "base", "other", "delta", "95% CI", "McNemar p", "pairs"], "rows": rows}]
        if mcnemar:
            tables.append({"title": "exact McNemar test of per-sample verdicts", "columns": ["metric", "pairs", "right→wrong", "wrong→right", "p-value"], "rows": mcnemar})
        note = f"{pair['num_pairs']} samples scored in both runs; {pair['resamples']} bootstrap resamples of samples (seed {pair['seed']}), each metric recomputed from its per-sample scores."
        if not pair["figures"]:
            note += " No per-sample scores in these runs, so no intervals (re-run with metrics that score samples)."
        charts = [{"type": "interval", "title": "delta with 95% CI", "rows": interval_rows}] if interval_rows else []
        sections.append({"title": f"{pair['other']} vs base {pair['base']}", "note": note, "charts": charts, "tables": tables})
    return sections


def runs_section(runs: Sequence[FinishedRun], names: Sequence[str], base: int) -> dict[str, Any]:
    figures = [headline_figures(r.metrics) for r in runs]
    keys: list[str] = []
    for f in figures:
        keys.extend(k for k in f if k not in keys)
    counts = ("num_samples", "num_scored", "num_failed", "num_parse_errors")
    rows = []
    for i, (run, diff, f) in enumerate(zip(runs, differing_overrides(runs), figures)):
        rows.append([f"{i}{' (base)' if i == base else ''}", str(run.run_dir), " ".join(diff) or "–", *[f.get(k) for k in keys], *[run.metrics.get(c) for c in counts]])
    shown = [k for k in keys if all(isinstance(f.get(k), (int, float)) for f in figures)][:MAX_BAR_FIGURES]
    chart = {"type": "bar", "title": "headline figures per run", "categories": shown,
             "series": [{"name": name, "values": [f.get(k) for k in shown]} for name, f in zip(names, figures)]}
    return {"title": "Runs", "tables": [{"columns": ["#", "run dir", "overrides that differ", *keys, *counts], "rows": rows}], "charts": [chart] if shown else []}


def write_compare_html(out_dir: str | Path, runs: Sequence[FinishedRun], *, base: int = 0, comparison: Mapping[str, Any] | None = None) -> Path:
    """Write ``compare.html`` into ``out_dir``. ``comparison`` (the ``summary.json`` dict) gives
    precomputed ``significance`` / ``comparability`` entries; missing ones are computed here."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = run_names(runs)
    comparison = dict(comparison or {})
    significance = comparison.get("significance")
    if significance is None:
        significance = compare_runs([r.records for r in runs], names, base=base)
        significance = [{**pair, "base": names[base], "other": names[i]} for pair, i in zip(significance, [j for j in range(len(runs)) if j != base])]
    status = comparison.get("comparability") or comparability([run_identity(r) for r in runs], names, base)
    banners = []
    if not status["comparable"]:
        items = [f"{r['label']} of {r['run']}: {r['value']} (base: {r['base_value']})" for r in status["reasons"]]
        banners.append({"kind": "not-comparable", "bad": True, "title": "Not directly comparable: these runs differ in more than the change under study.", "lines": items})
    strings = Strings()
    flips, cut = flip_items(runs, base, strings)
    sections = [runs_section(runs, names, base), *significance_sections(significance)]
    html = render_page(
        page="compare",
        title=f"evalkit comparison — {len(runs)} runs, base {names[base]}",
        sections=sections,
        banners=banners,
        names=names,
        base=base,
        others=[i for i in range(len(runs)) if i != base],
        flip_keys=sorted({f["key"] for f in flips}),
        flips_cut=cut,
        flips_cap=FLIPS_CAP,
        data={"page": "compare", "strings": strings.items, "flips": flips, "names": names, "base": base},
    )
    return write_atomic(out_dir / COMPARE_HTML, html)
