"""Randomised inputs for the metric tests (deterministic per seed, plain Python / numpy)."""

from __future__ import annotations

import copy
import random
from typing import Any

import numpy as np

TOOLS = ["priceCheck", "truckCheck", "loadTimeCheck", "orderManagementCheck", "settlementMethod", "地址确认", "a-b:c"]
WORDS = ["上海", "北京", "4.2米", "平板", "高栏", "到车价", "总价", "x", "y", "z", "", "带 空格", "a:b"]
# Strings that spell JSON: equal to the structure they spell only under parse_json_strings.
JSON_STRINGS = ['["a","b"]', '["a", "b"]', '{"k":"x"}', '["上海"]', "[]", "{}"]
COMPOSITE = {"truckCheck": ["truckType", "value"], "priceCheck": ["priceType", "value"], "地址确认": ["level", "city"]}
# The seed's definition: a composite key only for the listed values of the first field.
COMPOSITE_SEED = {
    "truckCheck": {"fields": ["truckType", "value"], "values": ["车长", "车型"]},
    "priceCheck": {"fields": ["priceType", "value"], "values": ["到车价", "总价"]},
    "地址确认": ["level", "city"],
}


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth == 0 else 6)
    if kind == 0:
        return rng.choice(WORDS)
    if kind == 1:
        return rng.randrange(-2, 4)  # ints, incl. 1 (== True) and 0 (== False)
    if kind == 2:
        return rng.choice([0.5, 1.0, 2.0, 2.5, -0.0])  # 1.0 == 1, 2.0 == 2
    if kind == 3:
        return rng.random() < 0.5
    if kind == 4:
        return None
    if kind == 5:
        return rng.choice(WORDS[:5] + JSON_STRINGS)
    if kind == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice("kmn"): _value(rng, depth + 1) for _ in range(rng.randrange(0, 3))}


def random_call(rng: random.Random) -> dict[str, Any]:
    name = rng.choice(TOOLS)
    shape = rng.random()
    if shape < 0.1:
        return {"toolName": name}
    if shape < 0.15:
        return {"toolName": name, "paramList": {}}
    if shape < 0.18:
        return {"toolName": name, "paramList": None}
    params: dict[str, Any] = {}
    if name == "truckCheck" and rng.random() < 0.8:
        params["truckType"] = rng.choice(["车长", "车型", "其他", 3, ["车长"], ["车型", "车长"], {"k": "车长"}])
        params["value"] = rng.choice(["4.2米", "6.8米", "平板", ["a", "b"], '["a","b"]', 1])
    elif name == "priceCheck" and rng.random() < 0.8:
        params["priceType"] = rng.choice(["到车价", "总价", "单价"])
        params["value"] = rng.choice(["100元", "200元", 300, 300.0, "300"])
    elif name == "地址确认" and rng.random() < 0.5:
        params["level"] = rng.choice(["省", "市", True])
        params["city"] = rng.choice(["上海", "北京"])
    for _ in range(rng.randrange(0, 3)):
        params[rng.choice(["p", "q", "r", "s"])] = _value(rng)
    return {"toolName": name, "paramList": params}


def random_label(rng: random.Random) -> list[dict[str, Any]]:
    n = rng.choices([0, 1, 2, 3, 4], weights=[20, 40, 22, 12, 6])[0]
    calls = [random_call(rng) for _ in range(n)]
    if calls and rng.random() < 0.25:  # repeated tool, sometimes with the very same parameters
        calls.append(copy.deepcopy(calls[0]) if rng.random() < 0.5 else {**random_call(rng), "toolName": calls[0]["toolName"]})
    rng.shuffle(calls)
    return calls


def _swap_equal_number(call: dict[str, Any]) -> dict[str, Any]:
    """Same call with numbers replaced by equal values of another type (1 -> 1.0 -> True)."""
    out = copy.deepcopy(call)
    params = out.get("paramList") or {}
    for k, v in list(params.items()):
        if type(v) is int and v in (0, 1):
            params[k] = bool(v)
        elif type(v) is int:
            params[k] = float(v)
        elif type(v) is float and v.is_integer():
            params[k] = int(v)
    return out


def random_prediction(rng: random.Random, label: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    r = rng.random()
    if r < 0.08:
        return []  # unparseable output
    if r < 0.10:
        return None  # a missing prediction
    pred = copy.deepcopy(label)
    r = rng.random()
    if r < 0.45:
        pass
    elif r < 0.55 and pred:
        pred.pop(rng.randrange(len(pred)))
    elif r < 0.65:
        pred.append(random_call(rng))
    elif r < 0.75 and pred:
        i = rng.randrange(len(pred))
        pred[i] = {**random_call(rng), "toolName": pred[i]["toolName"]}
    elif r < 0.82 and pred:
        i = rng.randrange(len(pred))
        pred[i] = _swap_equal_number(pred[i])
    elif r < 0.88 and pred:
        i = rng.randrange(len(pred))  # paramList missing <-> {}
        if not pred[i].get("paramList"):
            pred[i] = {"toolName": pred[i]["toolName"], "paramList": {}} if "paramList" not in pred[i] else {"toolName": pred[i]["toolName"]}
    elif r < 0.94:
        pred = random_label(rng)
    if rng.random() < 0.4:
        rng.shuffle(pred)
    return pred


def toolcall_data(n: int, seed: int) -> tuple[list[Any], list[Any]]:
    rng = random.Random(seed)
    labels = [random_label(rng) for _ in range(n)]
    preds = [random_prediction(rng, label) for label in labels]
    return preds, labels


def regression_data(n: int, seed: int, *, ragged: bool, dtype: Any = np.float32, length: int = 64) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-sample (scores, labels); labels in [0, 1] with small ones, exact-threshold ones and -100."""
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for i in range(n):
        t = int(rng.integers(1, length + 1)) if ragged else length
        lab = rng.random(t)
        lab[rng.random(t) < 0.2] = rng.random() * 0.012  # around the small-label threshold
        lab[rng.random(t) < 0.05] = 0.0
        lab[rng.random(t) < 0.05] = 0.01
        lab[rng.random(t) < 0.4] = -100
        if i % 17 == 0:
            lab[:] = -100  # a sample with no scored position
        noise = rng.normal(0, 0.08, t) * (rng.random(t) < 0.7)
        pred = np.clip(np.where(lab >= 0, lab, rng.random(t)) * (1 + noise) + rng.normal(0, 0.01, t), 0, 1)
        exact = rng.random(t) < 0.05
        pred[exact] = np.where(lab[exact] >= 0, lab[exact] * 1.1, pred[exact])  # on the tolerance border
        preds.append(pred.astype(dtype))
        labels.append(lab.astype(dtype))
    return preds, labels
