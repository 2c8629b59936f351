"""Independent reference implementations, written from the metric definitions.

Deliberately naive and per sample (lists, ``count``, permutations, numpy loops) and sharing no
code with ``evalkit_metrics``, so that a bug in the optimised, batched plugin code cannot hide
in both places.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np

NEG = "__NEGATIVE__"


# ----------------------------------------------------------------------------- tool calls
def ref_canon(value: Any) -> str:
    """Canonical parameter value: str as is, list as a sorted multiset, dict key-sorted, else str()."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        items = sorted(value, key=lambda x: json.dumps(x, sort_keys=True))
        return "L" + json.dumps(items, sort_keys=True)
    if isinstance(value, dict):
        return "D" + json.dumps(value, sort_keys=True)
    return str(value)


def ref_key_text(value: Any) -> str:
    """How a composite key's first field appears in the key: strings as they are, lists as
    their sorted items in compact JSON, dicts as key-sorted compact JSON, else str()."""
    def dump(x: Any) -> str:
        return json.dumps(x, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ",".join(sorted(dump(x) for x in value)) + "]"
    if isinstance(value, dict):
        return dump(value)
    return str(value)


def ref_composite(spec: Any) -> tuple[str, str, list[Any] | None]:
    """``[a, b]`` -> every value of a; ``{fields: [a, b], values: [...]}`` -> only those (the seed)."""
    if isinstance(spec, dict):
        return spec["fields"][0], spec["fields"][1], list(spec["values"])
    return spec[0], spec[1], None


def ref_param_items(calls: list[dict[str, Any]] | None, composite: dict[str, Any] | None) -> list[tuple[str, str]]:
    items = []
    for call in calls or []:
        params = call.get("paramList") or {}
        for name, value in params.items():
            items.append((call["toolName"] + "-" + name, ref_canon(value)))
        spec = (composite or {}).get(call["toolName"])
        if spec:
            a, b, values = ref_composite(spec)
            if a in params and b in params:
                # the seed tests `params[a] == "车长"`: a value of another type never matches
                if values is None or any(type(params[a]) is type(v) and params[a] == v for v in values):
                    items.append((call["toolName"] + "-" + a + "-" + ref_key_text(params[a]), ref_canon(params[b])))
    return items


def _multiset_hits(a: list[Any], b: list[Any]) -> int:
    rest = list(b)
    hits = 0
    for x in a:
        if x in rest:
            rest.remove(x)
            hits += 1
    return hits


def ref_tool_counts(preds: list[Any], labels: list[Any], level: str = "name", negative: bool = False, composite: dict[str, list[str]] | None = None) -> dict[str, list[int]]:
    """key -> [label_count, pred_count, hits]."""
    counts: dict[str, list[int]] = {}

    def add(key: str, lc: int, pc: int, h: int) -> None:
        row = counts.setdefault(key, [0, 0, 0])
        row[0] += lc
        row[1] += pc
        row[2] += h

    for pred, label in zip(preds, labels):
        pred = pred or []
        label = label or []
        if level == "name":
            ln = [c["toolName"] for c in label]
            pn = [c["toolName"] for c in pred]
            for key in set(ln) | set(pn):
                add(key, ln.count(key), pn.count(key), min(ln.count(key), pn.count(key)))
        else:
            li = ref_param_items(label, composite)
            pi = ref_param_items(pred, composite)
            for key in {k for k, _ in li} | {k for k, _ in pi}:
                lv = [v for k, v in li if k == key]
                pv = [v for k, v in pi if k == key]
                add(key, len(lv), len(pv), _multiset_hits(lv, pv))
        if negative and (not label or not pred):
            add(NEG, int(not label), int(not pred), int(not label and not pred))
    return counts


def ref_tool_f1(preds: list[Any], labels: list[Any], level: str = "name", negative: bool = False, composite: dict[str, list[str]] | None = None) -> dict[str, Any]:
    counts = ref_tool_counts(preds, labels, level, negative, composite)

    def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    per = {}
    for key in sorted(counts):
        lc, pc, h = counts[key]
        p, r, f = prf(h, pc - h, lc - h)
        per[key] = {"precision": p, "recall": r, "f1": f, "tp": h, "fp": pc - h, "fn": lc - h}
    tp = sum(v["tp"] for v in per.values())
    fp = sum(v["fp"] for v in per.values())
    fn = sum(v["fn"] for v in per.values())
    mp, mr, mf = prf(tp, fp, fn)
    n = len(per)
    macro = {m: (sum(v[m] for v in per.values()) / n if n else 0.0) for m in ("precision", "recall", "f1")}
    return {"micro": {"precision": mp, "recall": mr, "f1": mf}, "macro": macro, "per_tool": per}


def ref_exact_match(preds: list[Any], labels: list[Any]) -> dict[str, dict[str, Any]]:
    """Some ordering of the predicted calls equals the label's calls (paramList missing = {})."""

    def norm(calls: list[dict[str, Any]] | None) -> list[tuple[Any, Any]]:
        return [(c["toolName"], c.get("paramList") or {}) for c in calls or []]

    buckets = {"single": [0, 0], "multi": [0, 0], "empty": [0, 0], "all": [0, 0]}
    for pred, label in zip(preds, labels):
        lab, prd = norm(label), norm(pred)
        ok = len(lab) == len(prd) and any(list(perm) == lab for perm in itertools.permutations(prd))
        names = ["all"] + (["single"] if len(lab) == 1 else ["multi"] if len(lab) > 1 else ["empty"])
        for name in names:
            buckets[name][0] += ok
            buckets[name][1] += 1
    return {k: {"correct": c, "total": t, "accuracy": c / t if t else 0.0} for k, (c, t) in buckets.items()}


# ----------------------------------------------------------------------------- regression
def ref_tolerance(preds: list[np.ndarray], labels: list[np.ndarray], tolerance: float = 0.1, threshold: float = 0.01, ignore: float = -100, average: str = "sample") -> dict[str, float]:
    """Seed 000's per-sample numpy loop (sample) and its micro-averaged variant (token)."""
    acc, mae, mse, rmse = [], [], [], []
    all_correct, all_abs, all_sq = [], [], []
    for pred, label in zip(preds, labels):
        pred = np.asarray(pred)
        label = np.asarray(label)
        mask = (label != ignore) & ~np.isnan(label)
        if mask.sum() == 0:
            continue
        p, lab = pred[mask], label[mask]
        err = np.abs(p - lab)
        rel = err / np.maximum(lab, 1e-8)
        correct = np.where(lab < threshold, err <= tolerance, rel <= tolerance)
        acc.append(np.mean(correct))
        mae.append(np.mean(err))
        mse.append(np.mean((p - lab) ** 2))
        rmse.append(np.sqrt(np.mean((p - lab) ** 2)))
        all_correct.extend(correct.tolist())
        all_abs.extend(err.astype(np.float64).tolist())
        all_sq.extend(((p - lab).astype(np.float64) ** 2).tolist())
    if average == "sample":
        if not acc:
            return {k: math.nan for k in ("accuracy", "mae", "mse", "rmse")}
        return {"accuracy": float(np.mean(acc)), "mae": float(np.mean(mae)), "mse": float(np.mean(mse)), "rmse": float(np.mean(rmse))}
    n = len(all_correct)
    if not n:
        return {k: math.nan for k in ("accuracy", "mae", "mse", "rmse")}
    m = sum(all_sq) / n
    return {"accuracy": sum(all_correct) / n, "mae": sum(all_abs) / n, "mse": m, "rmse": math.sqrt(m)}


def ref_token_accuracy(preds: list[list[int]], labels: list[list[int]], ignore: int = -100, shift: bool = True, average: str = "sample") -> float:
    """LLaMA-Factory ComputeAccuracy: pred[:-1] vs label[1:] on labelled positions."""
    per_sample = []
    correct = total = 0
    for pred, label in zip(preds, labels):
        if shift:
            pred, label = pred[:-1], label[1:]
        pairs = [(p, lab) for p, lab in zip(pred, label) if lab != ignore]
        if not pairs:
            continue
        hits = sum(p == lab for p, lab in pairs)
        per_sample.append(hits / len(pairs))
        correct += hits
        total += len(pairs)
    if average == "sample":
        return sum(per_sample) / len(per_sample) if per_sample else math.nan
    return correct / total if total else math.nan
