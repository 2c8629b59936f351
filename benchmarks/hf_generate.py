#!/usr/bin/env python
"""HF backend and AcceptHead metric benchmarks, each measured side by side in one run.

    python benchmarks/hf_generate.py                      # 512 prompts x 32 new tokens
    python benchmarks/hf_generate.py --prompts 128 --only generation

1. Generation: evalkit's ``backend=hf`` against a minimal length-sorted, left-padded batched
   ``generate`` script, each a whole process, on a tiny random Qwen2 chat model built offline:
   the backend driven directly (a script like the minimal one), and the ``evalkit`` console
   script as a user runs it (Hydra, the pipeline, predictions.jsonl, a fresh response cache,
   report.html; ``metrics=none``, since the minimal script computes none). Greedy outputs must
   be identical; prints the best time of ``--repeat`` interleaved runs, the spread, and the
   ratios (target <= 1.15). ``--threads N`` sets every process's torch threads (the
   children's ``OMP_NUM_THREADS``): on a shared machine, 1 keeps oversubscribed OpenMP
   threads from swamping the comparison.
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


MINIMAL = r"""
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
model_dir, prompts_file, out_file, bs, new_tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
tok.padding_side = "left"
prompts = json.load(open(prompts_file))
texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
out = [None] * len(ids)
for start in range(0, len(order), bs):
    batch = order[start:start + bs]
    enc = tok.pad({"input_ids": [ids[i] for i in batch]}, padding=True, return_tensors="pt")
    with torch.inference_mode():
        gen = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    for row, i in zip(gen[:, enc["input_ids"].shape[1]:].tolist(), batch):
        out[i] = tok.decode(row, skip_special_tokens=True)
json.dump(out, open(out_file, "w"))
"""

EVALKIT = r"""
import json, sys
from evalkit.types import GenerationConfig, Request
from evalkit_hf.backend import HFBackend
model_dir, prompts_file, out_file, bs, new_tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
prompts = json.load(open(prompts_file))
requests = [Request(index=i, id=i, messages=[{"role": "user", "content": p}]) for i, p in enumerate(prompts)]
backend = HFBackend(device="cpu", batch_size=bs, model={"path": model_dir}, generation=GenerationConfig(max_new_tokens=new_tokens))
out = [None] * len(prompts)
def on_result(r):
    out[r.index] = r.outputs[0]
backend.generate(requests, on_result)
json.dump(out, open(out_file, "w"))
"""


def _whole_process(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys) of one child process."""
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _cli_command(model_dir: Path, data: Path, run_dir: Path, cache_dir: Path, batch_size: int, new_tokens: int) -> list[str]:
    import shutil
    import sys

    shutil.rmtree(run_dir, ignore_errors=True)
    script = Path(sys.executable).with_name("evalkit")
    return [
        str(script) if script.exists() else "evalkit", "backend=hf", f"model.path={model_dir}", "backend.device=cpu",
        f"backend.batch_size={batch_size}", f"generation.max_new_tokens={new_tokens}", f"data.path={data}", "+data.require_label=false",
        "prompt.system=null", "prompt.user='{{ prompt }}'", "parser=text", "metrics=none", f"cache.dir={cache_dir}", f"hydra.run.dir={run_dir}",
    ]


def bench_generation(args: argparse.Namespace) -> None:
    """evalkit ``backend=hf`` vs a minimal length-sorted batched ``generate`` script, each a
    whole process (start, imports, loading, generation, decoding), greedy outputs compared."""
    import json
    import sys

    from evalkit_hf.tiny import build_tiny_chat_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = build_tiny_chat_model(root / "model", hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=max(2, args.hidden // 32))
        prompts = make_prompts(args.prompts)
        prompts_file = root / "prompts.json"
        prompts_file.write_text(json.dumps(prompts, ensure_ascii=False), encoding="utf-8")
        data = root / "data.jsonl"
        data.write_text("".join(json.dumps({"id": i, "prompt": p}, ensure_ascii=False) + "\n" for i, p in enumerate(prompts)), encoding="utf-8")
        rest = [str(args.batch_size), str(args.new_tokens)]
        times: dict[str, list[tuple[float, float]]] = {"minimal": [], "backend": [], "cli": []}
        for r in range(args.repeat):  # interleaved, so machine load hits all alike
            times["minimal"].append(_whole_process([sys.executable, "-c", MINIMAL, str(model_dir), str(prompts_file), str(root / "minimal.json"), *rest]))
            times["backend"].append(_whole_process([sys.executable, "-c", EVALKIT, str(model_dir), str(prompts_file), str(root / "evalkit.json"), *rest]))
            times["cli"].append(_whole_process(_cli_command(model_dir, data, root / "run", root / f"cache{r}", args.batch_size, args.new_tokens)))
        minimal_out = json.loads((root / "minimal.json").read_text(encoding="utf-8"))
        outputs = {
            "backend": json.loads((root / "evalkit.json").read_text(encoding="utf-8")),
            "cli": [json.loads(line)["output"] for line in (root / "run" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()],
        }
    same = {k: sum(a == b for a, b in zip(minimal_out, v)) for k, v in outputs.items()}
    best = {k: min(w for w, _ in v) for k, v in times.items()}
    cpu = {k: min(c for _, c in v) for k, v in times.items()}  # CPU seconds: what a busy machine inflates least
    spread = {k: f"{min(w for w, _ in v):.2f}-{max(w for w, _ in v):.2f}" for k, v in times.items()}
    threads = args.threads or "torch's default"
    print(f"[generation] {args.prompts} prompts x {args.new_tokens} new tokens, tiny Qwen2 H={args.hidden} L={args.layers}, CPU ({threads} threads), batch {args.batch_size}, whole process, best of {args.repeat}")
    print(f"  minimal length-sorted batched generate : {best['minimal']:7.2f} s  (spread {spread['minimal']}, CPU {cpu['minimal']:.2f} s)")
    print(f"  evalkit backend=hf, driven directly    : {best['backend']:7.2f} s  (spread {spread['backend']}, CPU {cpu['backend']:.2f} s)   identical greedy outputs: {same['backend']}/{len(minimal_out)}")
    print(f"  evalkit CLI backend=hf                 : {best['cli']:7.2f} s  (spread {spread['cli']}, CPU {cpu['cli']:.2f} s)   identical greedy outputs: {same['cli']}/{len(minimal_out)}")
    print(f"  ratio backend / minimal                : {best['backend'] / best['minimal']:7.2f}x wall, {cpu['backend'] / cpu['minimal']:.2f}x CPU  (target <= 1.15)")
    print(f"  ratio CLI / minimal                    : {best['cli'] / best['minimal']:7.2f}x wall, {cpu['cli'] / cpu['minimal']:.2f}x CPU  (target <= 1.15)")
    if any(v != len(minimal_out) for v in same.values()):
        raise SystemExit("outputs differ between evalkit and the minimal script")


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
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads of every process (0: torch's default)")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--only", choices=("generation", "metric"), default=None)
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)  # the child processes
        import torch

        torch.set_num_threads(args.threads)
    if args.only in (None, "generation"):
        bench_generation(args)
    if args.only in (None, "metric"):
        bench_metric(args)


if __name__ == "__main__":
    main()
