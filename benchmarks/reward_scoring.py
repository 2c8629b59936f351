"""Reward-model pair scoring: evalkit's batched ``reward`` head vs. a per-pair loop vs. RewardBench.

    python benchmarks/reward_scoring.py [--pairs 256] [--batch-size 16] [--hidden 64] [--layers 2] [--repeat 3] [--threads 1] [--no-rewardbench]

One tiny Qwen3 sequence classifier (``num_labels=1``, built offline as the reward tests build
it) and the same random Chinese/English preference pairs (single-turn questions, seed 003's
format) are scored three ways, each with its model already loaded:

(a) evalkit: ``HFBackend.score`` with ``head=reward`` — render, tokenize, length-sorted
    right-padded batches of ``--batch-size`` sides (both sides of every pair in one queue);
(b) a per-pair loop: for each pair and side, the chat template, the tokenizer and one plain
    ``AutoModelForSequenceClassification`` forward pass (batch of one, no padding) — what a
    one-off script does, and the exact reference for the scores;
(c) RewardBench 0.1.4 (in its own venv with its pinned transformers 4.51, built and cached by
    ``tests/reward/refenv.py``): its ``load_and_process_dataset`` on the same pairs as JSON,
    then its default ``RewardBenchPipeline`` over its ``DataLoader`` of ``--batch-size`` pairs
    (left padding, chosen then rejected per batch), as its CLI runs it. Two figures: the
    inference loop alone (texts already rendered), and with its data processing (chat template
    through ``datasets.map``) — evalkit's figure always includes rendering and tokenizing.

Every chosen/rejected score must match the per-pair loop within 1e-4 and the accuracies must be
equal, or the script exits 1. Times are the best of ``--repeat`` runs after a warm-up; the
ratios are reference time / evalkit time (above 1.0: evalkit is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RB_DRIVER = r"""
# RewardBench's own data processing and reward pipeline, timed around its inference loop.
import json, sys, time
import torch
from transformers import AutoTokenizer, BatchEncoding
_to = BatchEncoding.to  # its pipeline moves inputs with .to("cuda"); only that device is mapped
BatchEncoding.to = lambda self, device, **kw: _to(self, "cpu" if device == "cuda" else device, **kw)
from rewardbench.models import REWARD_MODEL_CONFIG
from rewardbench.utils import load_and_process_dataset

model_dir, data, batch_size, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(int(sys.argv[5]))
import datasets
datasets.disable_caching()  # each repeat processes the pairs again
tokenizer = AutoTokenizer.from_pretrained(model_dir)
config = REWARD_MODEL_CONFIG["default"]
model = config["model_builder"](model_dir, torch_dtype=torch.float32)
kwargs = {"batch_size": batch_size, "truncation": False, "padding": True, "max_length": 512, "function_to_apply": "none", "return_token_type_ids": False}

def prepare():
    dataset = load_and_process_dataset(data, split="train", json=True, tokenizer=tokenizer, conv=None)
    dataset = dataset.remove_columns([c for c in dataset.column_names if c not in ("prompt", "text_chosen", "text_rejected")])
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False)

tokenizer.padding_side = "left"
pipe = config["pipeline_builder"]("text-classification", model=model, tokenizer=tokenizer)
if pipe.model.config.pad_token_id is None:
    pipe.model.config.pad_token_id = tokenizer.pad_token_id

def run(loader):
    chosen, rejected = [], []
    for batch in loader:
        chosen += pipe(batch["text_chosen"], **kwargs).float().cpu().numpy().reshape(-1).tolist()
        rejected += pipe(batch["text_rejected"], **kwargs).float().cpu().numpy().reshape(-1).tolist()
    return chosen, rejected

loader = prepare()
run(loader)
best = full = float("inf")
for _ in range(repeat):
    start = time.perf_counter()
    chosen, rejected = run(loader)
    best = min(best, time.perf_counter() - start)
    start = time.perf_counter()
    run(prepare())
    full = min(full, time.perf_counter() - start)
print(json.dumps({"seconds": best, "with_processing": full, "chosen": chosen, "rejected": rejected}))
"""


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    fn()  # warm-up: model load, first-call allocations
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def accuracy(chosen: list[float], rejected: list[float]) -> float:
    return sum(c > r for c, r in zip(chosen, rejected)) / len(chosen)


def run_rewardbench(model_dir: Path, rows: list[dict[str, Any]], work: Path, batch_size: int, repeat: int) -> dict[str, Any]:
    from tests.reward import refenv

    python = refenv.rewardbench_python()
    data = work / "pairs.json"
    plain = [{"id": i, "chosen": r["prompt"] + r["responses"][0], "rejected": r["prompt"] + r["responses"][1]} for i, r in enumerate(rows)]
    data.write_text(json.dumps(plain, ensure_ascii=False), encoding="utf-8")
    rb_model = refenv.rewardbench_model_copy(model_dir, work / "rb_model")
    driver = work / "rb_driver.py"
    driver.write_text(RB_DRIVER)
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(work), "TOKENIZERS_PARALLELISM": "false"}
    import torch

    proc = subprocess.run([str(python), str(driver), str(rb_model), str(data), str(batch_size), str(repeat), str(torch.get_num_threads())],
                          capture_output=True, text=True, timeout=1800, env=env, cwd=work)
    if proc.returncode != 0:
        raise SystemExit(f"RewardBench driver failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every scorer (a tiny model runs fastest and steadiest on one)")
    parser.add_argument("--no-rewardbench", action="store_true", help="skip (c): no reference venv is built")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from evalkit.types import Request
    from evalkit_hf.backend import HFBackend
    from evalkit_reward.heads import RewardHead
    from tests.reward.conftest import build_seq_classifier
    from tests.reward.test_heads import random_rows

    work = Path(tempfile.mkdtemp(prefix="evalkit-reward-bench-"))
    model_dir = build_seq_classifier(work / "rm", hidden_size=args.hidden, num_hidden_layers=args.layers)
    rows = random_rows(args.pairs, seed=13)
    for r in rows:  # RewardBench's JSON loader takes a conversation as prompt = all turns but the last
        r["prompt"] = [r["prompt"][-1]]
    print(f"{args.pairs} pairs, sequence classifier hidden={args.hidden} layers={args.layers}, batch {args.batch_size}, {torch.get_num_threads()} threads")

    backend = HFBackend(model={"path": str(model_dir)}, batch_size=args.batch_size, device="cpu")
    requests = [Request(index=i, id=i, row=r) for i, r in enumerate(rows)]

    def run_evalkit() -> list[Any]:
        out: dict[int, Any] = {}
        backend.score(requests, RewardHead(), lambda res: out.__setitem__(res.index, res))
        return [out[i].prediction for i in range(len(rows))]

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()

    def run_loop() -> list[list[float]]:
        scores = []
        for r in rows:
            pair = []
            for response in r["responses"]:
                text = tok.apply_chat_template(r["prompt"] + response, tokenize=False)
                ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
                with torch.inference_mode():
                    pair.append(model(input_ids=ids).logits[0, 0].item())
            scores.append(pair)
        return scores

    t_evalkit, preds = best_of(run_evalkit, args.repeat)
    t_loop, loop = best_of(run_loop, args.repeat)
    chosen = [p["chosen"] for p in preds]
    rejected = [p["rejected"] for p in preds]
    ok = True

    def check(name: str, other_chosen: list[float], other_rejected: list[float]) -> None:
        nonlocal ok
        worst = max(abs(a - b) for a, b in zip(chosen + rejected, other_chosen + other_rejected))
        same_acc = accuracy(chosen, rejected) == accuracy(other_chosen, other_rejected)
        print(f"  {name}: max |score difference| {worst:.2e}, accuracy {accuracy(other_chosen, other_rejected):.4f} ({'same' if same_acc else 'DIFFERENT'})")
        ok = ok and worst <= 1e-4 and same_acc

    print(f"evalkit accuracy {accuracy(chosen, rejected):.4f}")
    check("per-pair loop", [s[0] for s in loop], [s[1] for s in loop])
    rows_out = [("evalkit (batched reward head)", t_evalkit, None), ("per-pair loop", t_loop, t_loop / t_evalkit)]
    if not args.no_rewardbench:
        rb = run_rewardbench(model_dir, rows, work, args.batch_size, args.repeat)
        check("RewardBench", rb["chosen"], rb["rejected"])
        rows_out.append(("RewardBench: inference loop", rb["seconds"], rb["seconds"] / t_evalkit))
        rows_out.append(("RewardBench: + its templating", rb["with_processing"], rb["with_processing"] / t_evalkit))
    print(f"\n{'scorer':32s} {'seconds':>9s} {'pairs/s':>9s} {'ref/evalkit':>12s}")
    for name, seconds, ratio in rows_out:
        print(f"{name:32s} {seconds:9.3f} {args.pairs / seconds:9.1f} {('%.2fx' % ratio) if ratio else '':>12s}")
    if not ok:
        print("MISMATCH: the scorers disagree", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
