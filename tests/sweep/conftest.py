"""Small tool-call datasets and saved outputs of several "models" for sweep/merge tests."""

from __future__ import annotations

import json
import random

import pytest

TOOLS = ["priceCheck", "truckCheck", "loadTimeCheck", "settlementMethod"]


def _label(rng: random.Random) -> list[dict]:
    calls = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        tool = rng.choice(TOOLS)
        call = {"toolName": tool}
        if tool != "settlementMethod":
            call["paramList"] = {"value": rng.choice(["4.2米", "9.6米", "2300元", "明天"]), "n": rng.randint(1, 3)}
        calls.append(call)
    return calls


def _variant(label: list[dict], rng: random.Random, quality: float) -> str:
    if rng.random() > quality:
        label = _label(rng)  # a wrong answer
    if rng.random() < 0.05:
        return "无法判断"
    return f"<think>想一想</think>{json.dumps({'label': label}, ensure_ascii=False)}"


@pytest.fixture(scope="session")
def sweep_data(tmp_path_factory):
    """data.jsonl plus outputs of three models of different quality."""
    root = tmp_path_factory.mktemp("sweep_data")
    rng = random.Random(7)
    rows = [{"id": f"s{i}", "url": f"u{i}", "history": ["司机：在吗"], "query": f"问题{i}", "label": _label(rng)} for i in range(60)]
    (root / "data.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    outputs = {}
    for name, quality in (("a", 0.9), ("b", 0.6), ("c", 0.75)):
        path = root / f"outputs_{name}.jsonl"
        path.write_text("".join(json.dumps({"id": r["id"], "output": _variant(r["label"], rng, quality)}, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        outputs[name] = path
    return {"root": root, "data": root / "data.jsonl", "outputs": outputs, "rows": rows}
