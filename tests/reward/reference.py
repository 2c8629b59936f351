"""Independent reference implementations (plain Python loops and textbook formulas) that the
reward metrics are checked against on randomized data."""

from __future__ import annotations

import math
import statistics
from typing import Any


def _pairs(pred: Any, label: Any) -> list[tuple[float, float]]:
    if "chosen" in pred:
        return [(pred["chosen"], pred["rejected"])]
    s = pred["scores"]
    if label["kind"] == "best_of_n":
        k = label["num_correct"]
        return [(a, b) for a in s[:k] for b in s[k:]]
    r = label["ranks"]
    return [(s[i], s[j]) for i in range(len(s)) for j in range(len(s)) if r[i] < r[j]]


def _percentile(sorted_values: list[float], q: float) -> float:
    pos = (len(sorted_values) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def pairwise(preds, labels, ties="apart"):
    pairs = [(c, r, l.get("subset")) for p, l in zip(preds, labels) for c, r in _pairs(p, l)]
    margins = [c - r for c, r, _ in pairs]
    def acc(ms):
        good = sum(1 for m in ms if m > 0) + (0.5 * sum(1 for m in ms if m == 0) if ties == "half" else 0)
        return good / len(ms)
    subsets = {}
    for c, r, s in pairs:
        if s is not None:
            subsets.setdefault(s, []).append(c - r)
    sm = sorted(margins)
    return {
        "accuracy": acc(margins),
        "ties": sum(1 for m in margins if m == 0),
        "total": len(margins),
        "margin": {"mean": statistics.fmean(margins), "std": statistics.pstdev(margins), "p05": _percentile(sm, 5), "p50": _percentile(sm, 50), "p95": _percentile(sm, 95)},
        "chosen": {"mean": statistics.fmean(c for c, _, _ in pairs), "std": statistics.pstdev([c for c, _, _ in pairs]), "min": min(c for c, _, _ in pairs), "max": max(c for c, _, _ in pairs)},
        "rejected": {"mean": statistics.fmean(r for _, r, _ in pairs), "std": statistics.pstdev([r for _, r, _ in pairs]), "min": min(r for _, r, _ in pairs), "max": max(r for _, r, _ in pairs)},
        "by_subset": {s: {"accuracy": acc(ms), "total": len(ms)} for s, ms in sorted(subsets.items())},
    }


def ece(preds, labels, bins=10):
    margins = [c - r for p, l in zip(preds, labels) for c, r in _pairs(p, l)]
    groups = [[] for _ in range(bins)]
    for m in margins:
        p = 1 / (1 + math.exp(-m))
        conf = max(p, 1 - p)
        b = min(int((conf - 0.5) / (0.5 / bins)), bins - 1)
        groups[b].append((conf, 1.0 if m > 0 else 0.5 if m == 0 else 0.0))
    return sum(len(g) / len(margins) * abs(statistics.fmean(x[1] for x in g) - statistics.fmean(x[0] for x in g)) for g in groups if g)


def kendall_tau_b(x, y):
    n = len(x)
    conc = disc = tx = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            a = (x[i] > x[j]) - (x[i] < x[j])
            b = (y[i] > y[j]) - (y[i] < y[j])
            if a == 0 and b == 0:
                continue
            if a == 0:
                tx += 1
            elif b == 0:
                ty += 1
            elif a == b:
                conc += 1
            else:
                disc += 1
    denom = math.sqrt((conc + disc + tx) * (conc + disc + ty))
    return (conc - disc) / denom if denom else float("nan")


def ranking(preds, labels):
    pairs = correct = tied = 0
    taus = []
    for p, l in zip(preds, labels):
        for a, b in _pairs(p, l):
            pairs += 1
            correct += a > b
            tied += a == b
        if len(set(p["scores"])) > 1:
            taus.append(kendall_tau_b(p["scores"], [-r for r in l["ranks"]]))
    return {"pair_accuracy": correct / pairs, "pairs": pairs, "ties": tied, "kendall_tau": statistics.fmean(taus), "rows": len(preds)}


def _ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    ranks = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _pearson(x, y):
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return sxy / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))


def score_regression(preds, labels):
    x = [p["score"] for p in preds]
    y = [l["score"] for l in labels]
    mse = statistics.fmean((a - b) ** 2 for a, b in zip(x, y))
    return {"mae": statistics.fmean(abs(a - b) for a, b in zip(x, y)), "mse": mse, "rmse": math.sqrt(mse),
            "pearson": _pearson(x, y), "spearman": _pearson(_ranks(x), _ranks(y)), "total": len(x)}


def best_of_n(preds, labels):
    rows = []
    for p, l in zip(preds, labels):
        s, k = p["scores"], l["num_correct"]
        top = max(s)
        rows.append(1 / s.count(top) if max(s[:k]) == top else 0.0)
    subsets = {}
    for v, l in zip(rows, labels):
        subsets.setdefault(l["subset"], []).append(v)
    by = {k: {"accuracy": statistics.fmean(v), "total": len(v)} for k, v in sorted(subsets.items())}
    return {"accuracy": statistics.fmean(rows), "total": len(rows), "by_subset": by, "score": statistics.fmean(b["accuracy"] for b in by.values())}
