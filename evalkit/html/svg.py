"""Chart specs (plain dicts) rendered as inline SVG, in Python, at report time.

Why no JavaScript chart library: the reports must open from ``file://`` with no network, stay
small, and look the same in a browser, a screenshot and a printout. The handful of chart kinds
the domains need are drawn here as static SVG (hover tooltips are SVG ``<title>`` elements), so
a page carries no chart runtime at all and a chart can be unit-tested as a string.

Chart spec (every key but ``type`` optional unless marked):

* ``{"type": "bar", "categories": [..]*, "series": [{"name", "values": [..]}]*, "max": 1.0}`` —
  grouped horizontal bars (one row per category: long tool names stay readable);
* ``{"type": "histogram", "series": [{"name", "values": [..]}]*, "bins": 30, "range": [lo, hi]}``
  — overlaid, semi-transparent histograms;
* ``{"type": "scatter", "x": [..]*, "y": [..]*, "diagonal": true}`` — dots, or a 2-D binned
  density (hexbin-like squares) above :data:`MAX_DOTS` points;
* ``{"type": "line", "series": [{"name", "x": [..], "y": [..]}]*, "diagonal": true}`` — e.g. a
  calibration curve against the identity;
* ``{"type": "heatmap", "rows": [..]*, "cols": [..]*, "values": [[..]]*}`` — e.g. a confusion
  matrix (rows: label, columns: prediction);
* ``{"type": "interval", "rows": [{"label", "value", "low", "high"}]*}`` — a forest plot of
  deltas with their confidence intervals around 0.

All kinds take ``title``, ``x_label`` and ``y_label``. Non-finite values are skipped.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Callable, Mapping, Sequence

import numpy as np

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f")
WIDTH = 640
MAX_DOTS = 1500
MAX_CATEGORIES = 60


def _fmt(value: float) -> str:
    if value != value:
        return "–"
    if abs(value) >= 1000 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}" if abs(value) < 0.01 else f"{value:.3f}".rstrip("0").rstrip(".")


def _finite(values: Sequence[Any]) -> np.ndarray:
    arr = np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(step))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step), default=step)
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 10) for i in range(int((hi - start) / step + 1e-9) + 1)]


class _Frame:
    """A plot area with linear x/y scales and axes."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float], height: int = 320, left: int = 56, bottom: int = 40) -> None:
        self.x0, self.x1 = x_range if x_range[1] > x_range[0] else (x_range[0] - 0.5, x_range[0] + 0.5)
        self.y0, self.y1 = y_range if y_range[1] > y_range[0] else (y_range[0] - 0.5, y_range[0] + 0.5)
        self.left, self.right, self.top, self.bottom = left, WIDTH - 16, 12, height - bottom
        self.height = height

    def sx(self, x: float) -> float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def sy(self, y: float) -> float:
        return self.bottom - (y - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)

    def axes(self, x_label: str = "", y_label: str = "", y_ticks: bool = True) -> list[str]:
        out = [f'<line class="axis" x1="{self.left}" y1="{self.bottom}" x2="{self.right}" y2="{self.bottom}"/>',
               f'<line class="axis" x1="{self.left}" y1="{self.top}" x2="{self.left}" y2="{self.bottom}"/>']
        for t in _ticks(self.x0, self.x1):
            x = self.sx(t)
            out.append(f'<line class="grid" x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" y2="{self.bottom}"/><text class="tick" x="{x:.1f}" y="{self.bottom + 14}" text-anchor="middle">{_fmt(t)}</text>')
        if y_ticks:
            for t in _ticks(self.y0, self.y1):
                y = self.sy(t)
                out.append(f'<line class="grid" x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}"/><text class="tick" x="{self.left - 4}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
        if x_label:
            out.append(f'<text class="label" x="{(self.left + self.right) / 2:.0f}" y="{self.bottom + 30}" text-anchor="middle">{escape(x_label)}</text>')
        if y_label:
            out.append(f'<text class="label" transform="translate(12,{(self.top + self.bottom) / 2:.0f}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
        return out


def _legend(names: Sequence[str], y: int) -> list[str]:
    out, x = [], 56
    for i, name in enumerate(names):
        out.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/><text class="tick" x="{x + 14}" y="{y}">{escape(str(name))}</text>')
        x += 24 + 7 * len(str(name))
    return out


def _svg(body: list[str], height: int, title: str, kind: str) -> str:
    head = f'<svg class="chart" data-kind="{kind}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img">'
    return head + (f"<title>{escape(title)}</title>" if title else "") + "".join(body) + "</svg>"


def bar(spec: Mapping[str, Any]) -> str:
    categories = [str(c) for c in spec["categories"]][:MAX_CATEGORIES]
    series = list(spec["series"])
    values = [_finite(s["values"]) for s in series]
    peak = max([float(v.max()) for v in values if v.size] + [1e-9])
    top = float(spec.get("max") or (1.0 if 0.5 < peak <= 1.0 else peak))
    label_width = min(220, 12 + 7 * max((len(c) for c in categories), default=4))
    group = max(14, 8 * len(series) + 6)
    legend = 22 if len(series) > 1 else 0
    height = 40 + 24 + group * len(categories) + legend
    frame = _Frame((0.0, top), (0.0, 1.0), height=height, left=label_width, bottom=40 + legend)
    body = frame.axes(spec.get("x_label", ""), "", y_ticks=False)
    for i, category in enumerate(categories):
        y = frame.top + i * group + 3
        short = category if len(category) <= 30 else category[:29] + "…"
        body.append(f'<text class="tick" x="{label_width - 4}" y="{y + group / 2:.1f}" text-anchor="end"><title>{escape(category)}</title>{escape(short)}</text>')
        for j, s in enumerate(series):
            raw = s["values"][i] if i < len(s["values"]) else None
            if not isinstance(raw, (int, float)) or isinstance(raw, bool) or not math.isfinite(raw):
                continue
            h = (group - 6) / len(series)
            body.append(f'<rect class="bar" x="{frame.sx(0):.1f}" y="{y + j * h:.1f}" width="{max(frame.sx(raw) - frame.sx(0), 0.5):.1f}" height="{max(h - 1, 1):.1f}" fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(category)} · {escape(str(s.get("name", "")))}: {_fmt(raw)}</title></rect>')
    if legend:
        body += _legend([s.get("name", "") for s in series], height - 8)
    return _svg(body, height, spec.get("title", ""), "bar")


def histogram(spec: Mapping[str, Any]) -> str:
    series = list(spec["series"])
    data = [_finite(s["values"]) for s in series]
    everything = np.concatenate([d for d in data if d.size] or [np.zeros(1)])
    lo, hi = spec.get("range") or (float(everything.min()), float(everything.max()))
    bins = int(spec.get("bins", 30))
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    counts = [np.histogram(d, bins=edges)[0] for d in data]
    top = max([int(c.max()) for c in counts if c.size] + [1])
    frame = _Frame((float(edges[0]), float(edges[-1])), (0.0, float(top)))
    body = frame.axes(spec.get("x_label", ""), spec.get("y_label", "samples"))
    for j, c in enumerate(counts):
        color = PALETTE[j % len(PALETTE)]
        for k, n in enumerate(c):
            if n:
                x, x2 = frame.sx(edges[k]), frame.sx(edges[k + 1])
                body.append(f'<rect class="bar" x="{x:.1f}" y="{frame.sy(n):.1f}" width="{max(x2 - x - 0.5, 0.5):.1f}" height="{frame.sy(0) - frame.sy(n):.1f}" fill="{color}" fill-opacity="{0.55 if len(counts) > 1 else 0.9}"><title>{escape(str(series[j].get("name", "")))} [{_fmt(edges[k])}, {_fmt(edges[k + 1])}): {int(n)}</title></rect>')
    if len(series) > 1:
        body += _legend([s.get("name", "") for s in series], 12 + 8)
    return _svg(body, frame.height, spec.get("title", ""), "histogram")


def _range(values: np.ndarray, given: Any) -> tuple[float, float]:
    if given:
        return float(given[0]), float(given[1])
    return (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)


def scatter(spec: Mapping[str, Any]) -> str:
    pairs = [(x, y) for x, y in zip(spec["x"], spec["y"]) if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (x, y))]
    xs, ys = np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=float)
    both = np.concatenate([xs, ys]) if spec.get("diagonal") else None
    x_range = _range(both if both is not None else xs, spec.get("x_range"))
    y_range = _range(both if both is not None else ys, spec.get("y_range"))
    frame = _Frame(x_range, y_range)
    body = frame.axes(spec.get("x_label", ""), spec.get("y_label", ""))
    if spec.get("diagonal"):
        lo, hi = max(x_range[0], y_range[0]), min(x_range[1], y_range[1])
        body.append(f'<line class="ref" x1="{frame.sx(lo):.1f}" y1="{frame.sy(lo):.1f}" x2="{frame.sx(hi):.1f}" y2="{frame.sy(hi):.1f}"/>')
    if len(pairs) <= MAX_DOTS:
        for x, y in pairs:
            body.append(f'<circle class="dot" cx="{frame.sx(x):.1f}" cy="{frame.sy(y):.1f}" r="2.5"><title>{_fmt(x)}, {_fmt(y)}</title></circle>')
    else:
        grid = 40
        counts, xe, ye = np.histogram2d(xs, ys, bins=grid, range=[list(frame_range(frame, "x")), list(frame_range(frame, "y"))])
        peak = math.log1p(counts.max())
        for i in range(grid):
            for k in range(grid):
                n = counts[i, k]
                if n:
                    x, x2, y, y2 = frame.sx(xe[i]), frame.sx(xe[i + 1]), frame.sy(ye[k + 1]), frame.sy(ye[k])
                    body.append(f'<rect class="bin" x="{x:.1f}" y="{y:.1f}" width="{x2 - x + 0.3:.1f}" height="{y2 - y + 0.3:.1f}" fill="{PALETTE[0]}" fill-opacity="{0.15 + 0.85 * math.log1p(n) / peak:.2f}"><title>{int(n)} samples</title></rect>')
        body.append(f'<text class="tick" x="{frame.right}" y="{frame.top + 10}" text-anchor="end">{len(pairs)} points, binned</text>')
    return _svg(body, frame.height, spec.get("title", ""), "scatter")


def frame_range(frame: _Frame, axis: str) -> tuple[float, float]:
    return (frame.x0, frame.x1) if axis == "x" else (frame.y0, frame.y1)


def line(spec: Mapping[str, Any]) -> str:
    series = list(spec["series"])
    xs = _finite([x for s in series for x in s["x"]])
    ys = _finite([y for s in series for y in s["y"]])
    frame = _Frame(_range(xs, spec.get("x_range")), _range(ys, spec.get("y_range")))
    body = frame.axes(spec.get("x_label", ""), spec.get("y_label", ""))
    if spec.get("diagonal"):
        lo, hi = max(frame.x0, frame.y0), min(frame.x1, frame.y1)
        body.append(f'<line class="ref" x1="{frame.sx(lo):.1f}" y1="{frame.sy(lo):.1f}" x2="{frame.sx(hi):.1f}" y2="{frame.sy(hi):.1f}"/>')
    for j, s in enumerate(series):
        points = [(x, y) for x, y in zip(s["x"], s["y"]) if isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(x) and math.isfinite(y)]
        color = PALETTE[j % len(PALETTE)]
        if points:
            path = " ".join(f"{frame.sx(x):.1f},{frame.sy(y):.1f}" for x, y in points)
            body.append(f'<polyline class="line" points="{path}" stroke="{color}"/>')
            for x, y in points:
                body.append(f'<circle class="dot" cx="{frame.sx(x):.1f}" cy="{frame.sy(y):.1f}" r="3" fill="{color}"><title>{escape(str(s.get("name", "")))} {_fmt(x)}, {_fmt(y)}</title></circle>')
    if len(series) > 1:
        body += _legend([s.get("name", "") for s in series], 20)
    return _svg(body, frame.height, spec.get("title", ""), "line")


def heatmap(spec: Mapping[str, Any]) -> str:
    rows = [str(r) for r in spec["rows"]][:MAX_CATEGORIES]
    cols = [str(c) for c in spec["cols"]][:MAX_CATEGORIES]
    values = [[float(v or 0) for v in row[: len(cols)]] for row in spec["values"][: len(rows)]]
    peak = max([v for row in values for v in row] + [1e-9])
    left = min(200, 12 + 7 * max((len(r) for r in rows), default=4))
    bottom_labels = min(160, 12 + 6 * max((len(c) for c in cols), default=4))
    cell = max(14, min(36, (WIDTH - left - 16) // max(len(cols), 1)))
    height = 16 + cell * len(rows) + bottom_labels + 24
    body = []
    for i, (name, row) in enumerate(zip(rows, values)):
        y = 12 + i * cell
        body.append(f'<text class="tick" x="{left - 4}" y="{y + cell / 2 + 4:.1f}" text-anchor="end">{escape(name[:28])}</text>')
        for k, v in enumerate(row):
            x = left + k * cell
            body.append(f'<rect class="cell" x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{PALETTE[0] if i != k or rows[i] != cols[k] else PALETTE[2]}" fill-opacity="{0.06 + 0.94 * v / peak:.2f}"><title>{escape(name)} → {escape(cols[k])}: {_fmt(v)}</title></rect>')
            if v and cell >= 22:
                body.append(f'<text class="cellnum" x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" text-anchor="middle">{_fmt(v)}</text>')
    base = 12 + cell * len(rows) + 6
    for k, name in enumerate(cols):
        x = left + k * cell + cell / 2
        body.append(f'<text class="tick" transform="translate({x:.1f},{base}) rotate(45)">{escape(name[:24])}</text>')
    if spec.get("x_label"):
        body.append(f'<text class="label" x="{left + cell * len(cols) / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(spec["x_label"])}</text>')
    if spec.get("y_label"):
        body.append(f'<text class="label" transform="translate(12,{12 + cell * len(rows) / 2:.0f}) rotate(-90)" text-anchor="middle">{escape(spec["y_label"])}</text>')
    return _svg(body, height, spec.get("title", ""), "heatmap")


def interval(spec: Mapping[str, Any]) -> str:
    rows = list(spec["rows"])[:MAX_CATEGORIES]
    bounds = _finite([v for r in rows for v in (r.get("low"), r.get("high"), r.get("value"))] + [0.0])
    lo, hi = float(bounds.min()), float(bounds.max())
    pad = (hi - lo) * 0.08 or 0.01
    left = min(260, 12 + 7 * max((len(str(r.get("label", ""))) for r in rows), default=4))
    height = 40 + 12 + 22 * len(rows)
    frame = _Frame((lo - pad, hi + pad), (0.0, 1.0), height=height, left=left)
    body = frame.axes(spec.get("x_label", "delta (95% CI)"), "", y_ticks=False)
    body.append(f'<line class="ref" x1="{frame.sx(0):.1f}" y1="{frame.top}" x2="{frame.sx(0):.1f}" y2="{frame.bottom}"/>')
    for i, r in enumerate(rows):
        y = frame.top + 11 + i * 22
        value, low, high = (r.get(k) for k in ("value", "low", "high"))
        body.append(f'<text class="tick" x="{left - 4}" y="{y + 4}" text-anchor="end">{escape(str(r.get("label", ""))[:36])}</text>')
        significant = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high)) and (low > 0 or high < 0)
        color = PALETTE[3] if significant and value < 0 else PALETTE[2] if significant else "#888"
        if all(isinstance(v, (int, float)) and math.isfinite(v) for v in (low, high)):
            body.append(f'<line class="ci" x1="{frame.sx(low):.1f}" y1="{y}" x2="{frame.sx(high):.1f}" y2="{y}" stroke="{color}"/>')
        if isinstance(value, (int, float)) and math.isfinite(value):
            body.append(f'<circle class="dot" cx="{frame.sx(value):.1f}" cy="{y}" r="4" fill="{color}"><title>{escape(str(r.get("label", "")))}: {_fmt(value)} [{_fmt(low if low is not None else float("nan"))}, {_fmt(high if high is not None else float("nan"))}]</title></circle>')
    return _svg(body, height, spec.get("title", ""), "interval")


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "bar": bar, "histogram": histogram, "scatter": scatter, "line": line, "heatmap": heatmap, "interval": interval,
}


def render(spec: Mapping[str, Any]) -> str:
    """SVG markup for one chart spec; an unknown ``type`` or a broken spec renders as a short
    notice instead of breaking the page (a domain's bad chart must not cost the whole report)."""
    kind = spec.get("type")
    renderer = RENDERERS.get(str(kind))
    if renderer is None:
        return f'<p class="notice">unknown chart type {escape(repr(kind))}; known: {", ".join(RENDERERS)}</p>'
    try:
        return renderer(spec)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return f'<p class="notice">chart {escape(str(spec.get("title", kind)))} could not be drawn: {escape(type(exc).__name__)}: {escape(str(exc)[:200])}</p>'
