#!/usr/bin/env python
"""HF backend and AcceptHead metric benchmarks, each measured side by side in one run.

    python benchmarks/hf_generate.py                      # defaults: 64 prompts x 32 new tokens
    python benchmarks/hf_generate.py --prompts 128 --batch-size 32 --device cuda

1. Generation: evalkit's ``backend=hf`` (length-sorted, left-padded batches) against the loop
   users write first — ``model.generate`` once per prompt — on a tiny random chat model built
   offline. Greedy outputs must be identical; prints both throughputs and the ratio.
2. ``ToleranceAccuracy`` (``evalkit_metrics``) against seed 000's per-sample numpy loop on
   ``[2000, 2048]`` prediction / label arrays (about 5% of positions scored, some labels below
   the 0.01 threshold). Numbers must match; prints both times and the ratio.

Timings are wall-clock on whatever machine runs this; there are no pass/fail thresholds in the
tests — this script is where performance is looked at.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = (
    "请 帮 我 查询 从 上海 到 北京 的 货车 运价 车型 9.6米 厢式 好的 工具 "
    "the quick brown fox model eval accuracy tool call price truck value json label"
).split()


def make_prompts(n: int, seed: int = 0) -> list[str]:
    """Prompts of very different lengths (3..60 words), as real eval sets have."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60))) for _ in range(n)]


def bench_generation(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evalkit.types import GenerationConfig, Request
    from evalkit_hf.backend import HFBackend
    from evalkit_hf.tiny import build_tiny_chat_model, quiet_transformers

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_chat_model(Path(tmp) / "model", hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=max(2, args.hidden // 32))
        prompts = make_prompts(args.prompts)
        requests = [Request(index=i, id=i, messages=[{"role": "user", "content": p}]) for i, p in enumerate(prompts)]

        # Per-sample loop: what a first script does.
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(model_dir)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(args.device).eval()
        texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
        model.generate(**tok(texts[0], add_special_tokens=False, return_tensors="pt").to(args.device), max_new_tokens=2, do_sample=False)  # warm-up
        start = time.perf_counter()
        loop_out = []
        for text in texts:
            enc = tok(text, add_special_tokens=False, return_tensors="pt").to(args.device)
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=args.new_tokens, do_sample=False)
            loop_out.append(tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True))
        loop_s = time.perf_counter() - start

        backend = HFBackend(
            device=args.device, batch_size=args.batch_size, model={"path": str(model_dir)}, generation=GenerationConfig(max_new_tokens=args.new_tokens)
        )
        backend.load_model("causal_lm")
        backend.generate(requests[:1], lambda r: None)  # warm-up
        results: dict[int, list[str]] = {}
        start = time.perf_counter()
        backend.generate(requests, lambda r: results.__setitem__(r.index, r.outputs))
        batched_s = time.perf_counter() - start

    batched_out = [results[i][0] for i in range(len(prompts))]
    same = sum(a == b for a, b in zip(loop_out, batched_out))
    tokens = args.prompts * args.new_tokens
    print(f"[generation] {args.prompts} prompts x {args.new_tokens} new tokens, tiny model H={args.hidden} L={args.layers}, device={args.device}")
    print(f"  per-sample generate loop : {loop_s:7.2f} s  ({tokens / loop_s:8.1f} tok/s)")
    print(f"  evalkit backend=hf (bs={args.batch_size:<3}): {batched_s:7.2f} s  ({tokens / batched_s:8.1f} tok/s)")
    print(f"  throughput ratio         : {loop_s / batched_s:7.2f}x   identical greedy outputs: {same}/{len(prompts)}")
    if same != len(prompts):
        raise SystemExit("outputs differ between batched and per-sample generation")


def seed000_loop(preds, labels, tolerance: float = 0.1, ignore: int = -100) -> dict[str, float]:
    """Seed 000's ``ComputeAcceptHeadAccuracy`` logic, re-typed: a Python loop over samples."""
    import numpy as np

    scores: dict[str, list[float]] = {"accuracy": [], "mae": [], "mse": [], "rmse": []}
    for i in range(len(preds)):
        pred, label = preds[i], labels[i]
        mask = label != ignore
        if mask.sum() > 0:
            p, t = pred[mask], label[mask]
            rel = np.abs(p - t) / np.maximum(t, 1e-8)
            absolute = np.abs(p - t)
            correct = np.where(t < 0.01, absolute <= tolerance, rel <= tolerance)
            scores["accuracy"].append(np.mean(correct))
            mse = np.mean((p - t) ** 2)
            scores["mae"].append(np.mean(absolute))
            scores["mse"].append(mse)
            scores["rmse"].append(np.sqrt(mse))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def bench_metric(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from evalkit_metrics import ToleranceAccuracy

    rng = np.random.default_rng(0)
    shape = (args.rows, args.seq)
    preds = rng.random(shape, dtype=np.float32)
    labels = np.full(shape, -100.0, dtype=np.float32)
    scored = rng.random(shape) < 0.05
    values = np.clip(preds + rng.normal(0, 0.08, shape), 0, 1).astype(np.float32)
    labels[scored] = values[scored]
    tiny = scored & (rng.random(shape) < 0.1)  # labels below 0.01: the absolute-error branch
    labels[tiny] = rng.uniform(0, 0.009, int(tiny.sum())).astype(np.float32)

    def best_of(fn, repeat=5):
        times, out = [], None
        for _ in range(repeat):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        return min(times), out

    loop_s, expected = best_of(lambda: seed000_loop(preds, labels))

    def metric_run():
        metric = ToleranceAccuracy(tolerance=0.1)
        metric.update(torch.from_numpy(preds), torch.from_numpy(labels))
        return metric.compute()

    metric_s, got = best_of(metric_run)
    same = all(abs(float(got[k]) - expected[k]) <= 1e-6 * max(1.0, abs(expected[k])) for k in expected)
    print(f"[metric] ToleranceAccuracy on [{args.rows}, {args.seq}] ({int(scored.sum())} scored positions)")
    print(f"  seed 000 per-sample numpy loop: {loop_s * 1e3:8.1f} ms")
    print(f"  evalkit ToleranceAccuracy     : {metric_s * 1e3:8.1f} ms")
    print(f"  speed ratio                   : {loop_s / metric_s:8.2f}x   identical numbers: {same}")
    print(f"  {', '.join(f'{k}={expected[k]:.6f}' for k in expected)}")
    if not same:
        raise SystemExit(f"numbers differ: {got} vs {expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description="HF backend and AcceptHead metric benchmarks")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--only", choices=("generation", "metric"), default=None)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.only in (None, "generation"):
        bench_generation(args)
    if args.only in (None, "metric"):
        bench_metric(args)


if __name__ == "__main__":
    main()
