"""Tool-call scoring throughput: evalkit vs. a per-sample implementation of seed 002's definitions.

    python benchmarks/toolcall_metrics.py [--n 100000] [--seed 0]

Generates ``n`` synthetic samples in the seed's freight tool-call style — labels with 0..4 calls
(empty labels, repeated tools, string / list / dict / bool / int / float parameters, the
truckCheck / priceCheck composite pairs) and raw model outputs in the styles seed 002 parses
(``<think>…</think>{json}``, a fenced ```json block, trailing JSON after a blank line, and
unparseable text) — then times, side by side on the same data:

(a) evalkit: ``evalkit_parsers.json_label.JsonLabelParser`` on every output, then
    ``ToolCallF1(level="name")``, ``ToolCallF1(level="param", composite_keys=...)`` and
    ``ToolCallExactMatch`` updated in chunks of 2048 as the pipeline does;
(b) baseline: the seed notebook's parsing (split on ``</think>``, the ```json fence, the last
    blank line) and straightforward per-sample counting of the seed's three metrics, written
    below from the seed's definitions.

Numbers that share a definition must be identical: name-level P/R/F1 (per tool, micro, macro)
and exact match. The baseline's exact match uses the seed's definition with its two gaps
closed (evalkit's documented definition): calls are sorted by tool name *and* parameters
before comparing (the seed sorted by name only, so two calls of one tool in another order
failed), and a missing ``paramList`` equals ``{}``.

Param level differs on purpose: the seed counts a hit for each ``key:value`` string of the
shorter list found anywhere in the longer one, which can exceed the number of times the pair
occurs; evalkit intersects multisets. The script checks that label and prediction counts agree
per key, that evalkit's hits never exceed the seed's, and prints both results.

The ratio printed is evalkit time / baseline time (target <= 1.0).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from typing import Any

from evalkit_metrics import ToolCallExactMatch, ToolCallF1
from evalkit_parsers.json_label import JsonLabelParser

COMPOSITE = {"truckCheck": ["truckType", "value"], "priceCheck": ["priceType", "value"]}
CHUNK = 2048

# ----------------------------------------------------------------------------- synthetic data
CITIES = ["上海", "北京", "广州", "深圳", "成都", "武汉", "杭州", "南京", "西安", "重庆"]
TRUCK_LEN = ["4.2米", "6.8米", "9.6米", "13米", "17.5米"]
TRUCK_KIND = ["平板", "高栏", "厢式", "冷藏"]
GOODS = ["钢材", "家具", "水果", "电子产品", "建材", "饮料"]


def _call(rng: random.Random) -> dict[str, Any]:
    kind = rng.randrange(9)
    if kind == 0:
        t = rng.choice(["车长", "车型"])
        return {"toolName": "truckCheck", "paramList": {"truckType": t, "value": rng.choice(TRUCK_LEN if t == "车长" else TRUCK_KIND)}}
    if kind == 1:
        return {"toolName": "priceCheck", "paramList": {"priceType": rng.choice(["到车价", "总价"]), "value": f"{rng.randrange(5, 80) * 100}元"}}
    if kind == 2:
        return {"toolName": "loadTimeCheck", "paramList": {"date": f"{rng.randrange(1, 13)}月{rng.randrange(1, 29)}日", "urgent": rng.random() < 0.3}}
    if kind == 3:
        return {"toolName": "orderManagementCheck", "paramList": {"orderId": rng.randrange(1000, 1020), "action": rng.choice(["取消", "修改", "查询"])}}
    if kind == 4:
        return {"toolName": "routeCheck", "paramList": {"cities": rng.sample(CITIES, rng.randrange(1, 4))}}
    if kind == 5:
        return {"toolName": "goodsCheck", "paramList": {"goods": {"name": rng.choice(GOODS), "weight": rng.randrange(1, 30)}}}
    if kind == 6:
        return {"toolName": "volumeCheck", "paramList": {"volume": rng.choice([1.5, 2.0, 3.25, 10.0])}}
    if kind == 7:
        return {"toolName": "settlementMethod"}
    return {"toolName": "humanService", "paramList": {}}


def _label(rng: random.Random) -> list[dict[str, Any]]:
    n = rng.choices([0, 1, 2, 3, 4], weights=[15, 50, 22, 9, 4])[0]
    calls = [_call(rng) for _ in range(n)]
    if n >= 2 and rng.random() < 0.2:  # a repeated tool
        calls.append(json.loads(json.dumps(calls[0])) if rng.random() < 0.5 else _call_like(rng, calls[0]["toolName"]))
    return calls


def _call_like(rng: random.Random, name: str) -> dict[str, Any]:
    while True:
        c = _call(rng)
        if c["toolName"] == name:
            return c


def _prediction(rng: random.Random, label: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pred = json.loads(json.dumps(label))
    r = rng.random()
    if r < 0.55:
        return pred
    if r < 0.62:
        return []
    if r < 0.70 and pred:
        pred.pop(rng.randrange(len(pred)))
    elif r < 0.78:
        pred.insert(rng.randrange(len(pred) + 1), _call(rng))
    elif r < 0.88 and pred:
        i = rng.randrange(len(pred))
        pred[i] = _call_like(rng, pred[i]["toolName"])  # same tool, other parameters
    elif r < 0.94 and pred:
        pred[rng.randrange(len(pred))] = _call(rng)
    if rng.random() < 0.3:
        rng.shuffle(pred)  # the order of calls never matters
    return pred


def _render(rng: random.Random, calls: list[dict[str, Any]]) -> str:
    body = json.dumps({"label": calls}, ensure_ascii=False, indent=rng.choice([None, 2]))
    style = rng.random()
    if style < 0.40:
        return f"<think>\n用户询问运费和车型，需要调用{len(calls)}个工具。\n</think>\n\n{body}"
    if style < 0.70:
        return f"好的，根据对话，需要调用的工具如下：\n```json\n{body}\n```"
    if style < 0.92:
        return f"分析：用户的问题涉及报价。\n\n{body}"
    return rng.choice(
        [
            "抱歉，我无法判断需要调用哪个工具。",
            f"```json\n{body[: len(body) // 2]}\n```",
            f"分析：\n\n{body[:-3]}",
            "",
        ]
    )


def make_data(n: int, seed: int) -> tuple[list[list[dict[str, Any]]], list[str]]:
    rng = random.Random(seed)
    labels, outputs = [], []
    for _ in range(n):
        label = _label(rng)
        labels.append(label)
        outputs.append(_render(rng, _prediction(rng, label)))
    return labels, outputs


# ----------------------------------------------------------------------------- baseline (seed 002)
def seed_parse(text: str) -> list[Any]:
    """The seed notebook's post-processing (its think branch could crash; here it yields [])."""
    if "</think>" in text:
        try:
            return json.loads(text.split("</think>")[1].strip())["label"]
        except Exception:
            return []
    try:
        return json.loads(text.split("```json")[-1].strip()[:-3])["label"]
    except Exception:
        try:
            return json.loads(text.split("\n\n")[-1].strip())["label"]
        except Exception:
            return []


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp > 0 else 0
    r = tp / (tp + fn) if tp + fn > 0 else 0
    f = 2 * p * r / (p + r) if p + r > 0 else 0
    return p, r, f


def _summarise(counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    per = {}
    tot = [0, 0, 0]
    for tool, c in counts.items():
        tp, fp, fn = c["hit"], c["pred"] - c["hit"], c["label"] - c["hit"]
        p, r, f = _prf(tp, fp, fn)
        per[tool] = {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}
        tot[0] += tp
        tot[1] += fp
        tot[2] += fn
    mp, mr, mf = _prf(*tot)
    k = len(per)
    macro = {m: (sum(v[m] for v in per.values()) / k if k else 0) for m in ("precision", "recall", "f1")}
    return {"micro": {"precision": mp, "recall": mr, "f1": mf}, "macro": macro, "per_tool": per}


def seed_tool_metrics(labels: list[Any], preds: list[Any], neg: bool) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"label": 0, "hit": 0, "pred": 0})
    for label, pred in zip(labels, preds):
        lt = [c["toolName"] for c in label]
        pt = [c["toolName"] for c in pred]
        if neg:
            if not lt:
                counts["__NEGATIVE__"]["label"] += 1
            if not pt:
                counts["__NEGATIVE__"]["pred"] += 1
            if not lt and not pt:
                counts["__NEGATIVE__"]["hit"] += 1
        lc, pc = Counter(lt), Counter(pt)
        for tool, n in lc.items():
            counts[tool]["label"] += n
        for tool, n in pc.items():
            counts[tool]["pred"] += n
        for tool in set(lc) | set(pc):
            hit = min(lc.get(tool, 0), pc.get(tool, 0))
            if hit > 0:
                counts[tool]["hit"] += hit
    return _summarise(counts)


def _seed_param_strings(call: dict[str, Any]) -> list[str]:
    name = call.get("toolName")
    params = call.get("paramList", {})
    out = []
    for k, v in params.items():
        if type(v) is str:
            out.append(f"{name}-{k}:{v}")
        elif type(v) is list:
            out.append(f"{name}-{k}:" + json.dumps(sorted(v, key=lambda x: (len(x), x))))
        elif type(v) is dict:
            out.append(f"{name}-{k}:" + json.dumps({kk: v[kk] for kk in sorted(v)}))
        else:
            out.append(f"{name}-{k}:{v}")
    if name == "truckCheck" and "truckType" in params and "value" in params and params["truckType"] in ("车长", "车型"):
        out.append(f"{name}-truckType-{params['truckType']}:{params['value']}")
    if name == "priceCheck" and "priceType" in params and "value" in params and params["priceType"] in ("到车价", "总价"):
        out.append(f"{name}-priceType-{params['priceType']}:{params['value']}")
    return out


def seed_param_metrics(labels: list[Any], preds: list[Any]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"label": 0, "hit": 0, "pred": 0})
    for label, pred in zip(labels, preds):
        lt = [s for c in label for s in _seed_param_strings(c)]
        pt = [s for c in pred for s in _seed_param_strings(c)]
        for s in lt:
            counts[s.split(":")[0]]["label"] += 1
        for s in pt:
            counts[s.split(":")[0]]["pred"] += 1
        longer, shorter = (lt, pt) if len(lt) > len(pt) else (pt, lt)
        for s in shorter:
            if s in longer:
                counts[s.split(":")[0]]["hit"] += 1
    return _summarise(counts)


def seed_exact_match(labels: list[Any], preds: list[Any]) -> dict[str, Any]:
    def key(c: dict[str, Any]) -> tuple[str, str]:
        return c["toolName"], json.dumps(c.get("paramList") or {}, sort_keys=True)

    def norm(c: dict[str, Any]) -> tuple[Any, Any]:
        return c["toolName"], c.get("paramList") or {}

    single = [0, 0]
    multi = [0, 0]
    every = [0, 0]
    for label, pred in zip(labels, preds):
        ok = len(label) == len(pred) and [norm(c) for c in sorted(label, key=key)] == [norm(c) for c in sorted(pred, key=key)]
        if len(label) == 1:
            single[1] += 1
            single[0] += ok
        elif len(label) > 1:
            multi[1] += 1
            multi[0] += ok
        every[1] += 1
        every[0] += ok
    return {
        name: {"correct": c, "total": t, "accuracy": c / t if t else 0.0}
        for name, (c, t) in (("single", single), ("multi", multi), ("all", every))
    }


def seed_parse_all(outputs: list[str]) -> list[Any]:
    return [seed_parse(o) for o in outputs]


SEED_METRICS = {
    "tool_f1": lambda labels, preds: seed_tool_metrics(labels, preds, neg=False),
    "tool_param_f1": seed_param_metrics,
    "tool_exact_match": seed_exact_match,
}


# ----------------------------------------------------------------------------- evalkit
def evalkit_parse_all(outputs: list[str]) -> list[Any]:
    parse = JsonLabelParser()
    preds = []
    for o in outputs:
        try:
            preds.append(parse(o))
        except ValueError:
            preds.append([])  # what the pipeline records for a parse error
    return preds


def _evalkit_metric(make: Any) -> Any:
    def run(labels: list[Any], preds: list[Any]) -> Any:
        metric = make()
        for start in range(0, len(preds), CHUNK):
            metric.update(preds[start : start + CHUNK], labels[start : start + CHUNK])
        return metric.compute()

    return run


EVALKIT_METRICS = {
    "tool_f1": _evalkit_metric(lambda: ToolCallF1(level="name")),
    "tool_param_f1": _evalkit_metric(lambda: ToolCallF1(level="param", composite_keys=COMPOSITE)),
    "tool_exact_match": _evalkit_metric(ToolCallExactMatch),
}


# ----------------------------------------------------------------------------- comparison
def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def _clock(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="best of N timings per step (steps interleaved)")
    args = ap.parse_args(argv)

    t_gen, (labels, outputs) = _clock(make_data, args.n, args.seed)
    print(f"generated {args.n} samples in {t_gen:.1f}s")
    # warm-up: imports and first-call costs stay out of the timings
    warm = evalkit_parse_all(outputs[:2000])
    for fn in EVALKIT_METRICS.values():
        fn(labels[:2000], warm)

    times: dict[tuple[str, str], float] = {}
    ours: dict[str, Any] = {}
    base: dict[str, Any] = {}

    def record(side: str, step: str, seconds: float) -> None:
        times[side, step] = min(times.get((side, step), math.inf), seconds)

    for _ in range(args.repeat):  # interleaved, so a busy machine slows both sides alike
        t, base["preds"] = _clock(seed_parse_all, outputs)
        record("seed", "parse", t)
        t, ours["preds"] = _clock(evalkit_parse_all, outputs)
        record("evalkit", "parse", t)
        for key in SEED_METRICS:
            t, base[key] = _clock(SEED_METRICS[key], labels, base["preds"])
            record("seed", key, t)
            t, ours[key] = _clock(EVALKIT_METRICS[key], labels, ours["preds"])
            record("evalkit", key, t)

    ok = True
    unparsed = sum(1 for p in ours["preds"] if not p)
    same_parse = sum(a == b for a, b in zip(ours["preds"], base["preds"]))
    print(f"samples: {args.n}  empty labels: {sum(1 for l in labels if not l)}  empty predictions: {unparsed}")
    print(f"parsed predictions identical: {same_parse}/{args.n}")
    ok &= same_parse == args.n

    for key in ("tool_f1", "tool_exact_match"):
        same = _close(ours[key], base[key])
        ok &= same
        print(f"{key:18s} identical to baseline: {same}")
    m = ours["tool_f1"]["micro"]
    print(f"  tool_f1 micro P/R/F1 = {m['precision']:.4f} / {m['recall']:.4f} / {m['f1']:.4f}")
    em = ours["tool_exact_match"]
    print("  exact match " + "  ".join(f"{k}={v['correct']}/{v['total']} ({v['accuracy']:.4f})" for k, v in em.items()))

    ev, sd = ours["tool_param_f1"], base["tool_param_f1"]
    same_counts = ev["per_tool"].keys() == sd["per_tool"].keys() and all(
        ev["per_tool"][k]["tp"] + ev["per_tool"][k]["fn"] == sd["per_tool"][k]["tp"] + sd["per_tool"][k]["fn"]
        and ev["per_tool"][k]["tp"] + ev["per_tool"][k]["fp"] == sd["per_tool"][k]["tp"] + sd["per_tool"][k]["fp"]
        for k in ev["per_tool"]
    )
    never_more = all(ev["per_tool"][k]["tp"] <= sd["per_tool"][k]["tp"] for k in ev["per_tool"])
    differ = sorted(k for k in ev["per_tool"] if ev["per_tool"][k]["tp"] != sd["per_tool"][k]["tp"])
    ok &= same_counts and never_more
    print(f"tool_param_f1      label/pred counts per key identical: {same_counts}; evalkit hits <= seed hits: {never_more}")
    print(
        f"  micro F1 evalkit {ev['micro']['f1']:.4f} vs seed {sd['micro']['f1']:.4f}; "
        f"macro F1 evalkit {ev['macro']['f1']:.4f} vs seed {sd['macro']['f1']:.4f}; "
        f"{len(differ)}/{len(ev['per_tool'])} keys differ in hits"
    )
    for k in differ[:3]:
        print(f"    {k}: tp evalkit {ev['per_tool'][k]['tp']} vs seed {sd['per_tool'][k]['tp']}")
    print(
        "  why: the seed counts each key:value of the shorter list found anywhere in the longer list,\n"
        "  so a pair repeated on one side is matched against one occurrence on the other several times\n"
        "  (and fp/fn can go negative); evalkit counts the multiset intersection per key."
    )

    steps = ["parse", *SEED_METRICS]
    print(f"\n{'step':18s} {'evalkit':>9s} {'seed':>9s} {'ratio':>7s}")
    for step in steps:
        e, b = times["evalkit", step], times["seed", step]
        print(f"{step:18s} {e:8.3f}s {b:8.3f}s {e / b:7.2f}")
    em_e = sum(times["evalkit", k] for k in SEED_METRICS)
    em_b = sum(times["seed", k] for k in SEED_METRICS)
    print(f"{'metrics (3)':18s} {em_e:8.3f}s {em_b:8.3f}s {em_e / em_b:7.2f}")
    tot_e, tot_b = em_e + times["evalkit", "parse"], em_b + times["seed", "parse"]
    print(f"{'parse + metrics':18s} {tot_e:8.3f}s {tot_b:8.3f}s {tot_e / tot_b:7.2f}   (ratio evalkit/baseline, target <= 1.0)")
    print("OK: numbers agree" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
