#!/usr/bin/env python
"""Build the offline AcceptHead demo shipped in ``evalkit/demo/accepthead/``.

    python scripts/build_demo_assets.py            # rebuild in place
    python scripts/build_demo_assets.py --out DIR  # somewhere else

Writes ``model/`` — a tiny random Qwen3-style checkpoint whose LM head is the AcceptHead
``Linear(64 -> 1)`` (``lm_head.weight`` [1, 64], ``lm_head.bias`` [1]), about 0.5 MB — and
``data.jsonl``: 64 rows ``{"id", "input_ids", "labels"}`` made by tokenizing short freight /
tool-call conversations with the checkpoint's chat template. Labels are -100 everywhere except
a few positions of the assistant's reply, where they are the model's own score perturbed by
seeded noise (some small, some large, a few near zero), so ``evalkit +experiment=accepthead``
shows non-trivial accuracy, MAE, MSE and RMSE and exercises both tolerance branches
(relative error for labels >= 0.01, absolute below). Everything is seeded: re-running gives
identical files.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "evalkit" / "demo" / "accepthead"
SEED = 2024
NUM_ROWS = 64

CITIES = ["上海", "北京", "广州", "深圳", "成都", "武汉", "杭州", "西安"]
TRUCKS = ["4.2米厢式货车", "6.8米高栏车", "9.6米厢式货车", "13米平板车", "冷藏车"]
GOODS = ["生鲜", "家电", "建材", "服装", "电子元件"]
QUESTIONS = [
    "请帮我查询从{a}到{b}的运价，车型是{t}。",
    "明天从{a}发一车{g}到{b}，有没有{t}？",
    "How much for a {t} from {a} to {b} carrying {g}?",
    "{a}到{b}的{g}运输需要多长时间？",
]
ANSWERS = [
    '{{"label": [{{"toolName": "priceCheck", "paramList": {{"priceType": "truck", "value": "{t}"}}}}]}}',
    '好的，我来查询{a}到{b}的{t}。{{"toolName": "truckCheck", "paramList": {{"truckType": "{t}"}}}}',
    "<think>用户关心{g}的运输。</think>从{a}到{b}大约需要两天，建议使用{t}。",
    'Sure. {{"toolName": "routePlan", "paramList": {{"from": "{a}", "to": "{b}"}}}}',
]


def build(out: Path) -> None:
    import numpy as np
    import torch

    from evalkit_hf.checkpoint import Checkpoint
    from evalkit_hf.heads import AcceptHead
    from evalkit_hf.tiny import build_tiny_chat_model, quiet_transformers

    model_dir = out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    build_tiny_chat_model(model_dir, seed=SEED, accept_head=True)

    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with quiet_transformers():
        model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    head = AcceptHead()
    head.bind(Checkpoint.from_config({"path": str(model_dir)}), hidden_size=model.config.hidden_size, device="cpu")

    rng = np.random.default_rng(SEED)
    rows = []
    for i in range(NUM_ROWS):
        fill = {
            "a": CITIES[rng.integers(len(CITIES))],
            "b": CITIES[rng.integers(len(CITIES))],
            "t": TRUCKS[rng.integers(len(TRUCKS))],
            "g": GOODS[rng.integers(len(GOODS))],
        }
        question = QUESTIONS[rng.integers(len(QUESTIONS))].format(**fill)
        answer = ANSWERS[rng.integers(len(ANSWERS))].format(**fill)
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
        full = prompt + answer + "<|im_end|>\n"
        prompt_len = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        input_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            hidden = model(input_ids=torch.tensor([input_ids])).last_hidden_state
            scores = head(hidden, torch.ones(1, len(input_ids))).squeeze(0).numpy().astype(np.float64)
        labels: list[float | int] = [-100] * len(input_ids)
        response = np.arange(prompt_len, len(input_ids))
        positions = rng.choice(response, size=min(len(response), int(rng.integers(2, 7))), replace=False)
        for pos in sorted(int(p) for p in positions):
            kind = rng.random()
            if kind < 0.1:
                value = float(rng.uniform(0.0, 0.009))  # tiny label: absolute-error branch
            elif kind < 0.6:
                value = scores[pos] * (1 + rng.normal(0, 0.06))  # mostly within 10%
            else:
                value = scores[pos] + rng.normal(0, 0.2)  # a real miss
            labels[pos] = round(float(min(1.0, max(0.0, value))), 4)
        rows.append({"id": f"ah-{i:03d}", "input_ids": input_ids, "labels": labels})

    out.mkdir(parents=True, exist_ok=True)
    with (out / "data.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1024:.0f} KiB): model/ and data.jsonl with {len(rows)} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    build(args.out)


if __name__ == "__main__":
    main()
