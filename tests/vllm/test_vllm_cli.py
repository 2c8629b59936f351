"""``evalkit +experiment=toolcall backend=vllm ...`` end to end, through the console script.

The run uses two data-parallel engine replicas, each in its own spawned child process (the
isolation path): the answers must come back intact and in dataset order, equal to the
session engine's direct ``LLM.chat`` outputs for the messages evalkit recorded. A second run
into a new directory with the same cache must answer everything from the cache and start
no engine.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import read_jsonl, run_cli
from tests.vllm.conftest import MAX_MODEL_LEN

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

LIMIT = 10
MAX_NEW_TOKENS = 16


def vllm_args(model, run_dir, cache_dir, *extra):
    return [
        "+experiment=toolcall", "backend=vllm", f"model.path={model}",
        "backend.dtype=float32", f"backend.max_model_len={MAX_MODEL_LEN}",
        f"generation.max_new_tokens={MAX_NEW_TOKENS}", f"data.limit={LIMIT}",
        f"cache.dir={cache_dir}", f"hydra.run.dir={run_dir}", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def first_run(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm_cli")
    proc = run_cli(vllm_args(tiny_model_dir, root / "run1", root / "cache", "backend.data_parallel_size=2", "backend.chunk_size=3"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root, proc


def test_toolcall_run_with_isolated_replicas_equals_direct_chat(first_run, llm):
    from vllm import SamplingParams

    root, _ = first_run
    records = read_jsonl(root / "run1" / "predictions.jsonl")
    assert [r["index"] for r in records] == list(range(LIMIT)), "dataset order restored"
    assert [r["id"] for r in records] == [f"demo-{i:03d}" for i in range(LIMIT)]
    reference = llm.chat([r["messages"] for r in records], SamplingParams(temperature=0, max_tokens=MAX_NEW_TOKENS), use_tqdm=False)
    assert [r["output"] for r in records] == [out.outputs[0].text for out in reference]
    assert all(r["usage"]["prompt_tokens"] == len(out.prompt_token_ids) for r, out in zip(records, reference))
    metrics = json.loads((root / "run1" / "metrics.json").read_text())
    assert metrics["num_samples"] == LIMIT and metrics["num_failed"] == 0 and metrics["num_cached"] == 0
    assert {"tool_f1", "tool_param_f1", "tool_exact_match"} <= set(metrics)
    log = (root / "run1" / "run.log").read_text()
    assert "engine process 0 finished (5 prompt(s))" in log and "engine process 1 finished (5 prompt(s))" in log


def test_rerun_with_the_same_cache_starts_no_engine(first_run, tiny_model_dir):
    root, _ = first_run
    proc = run_cli(vllm_args(tiny_model_dir, root / "run2", root / "cache", "backend.isolate=true"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    first = read_jsonl(root / "run1" / "predictions.jsonl")
    second = read_jsonl(root / "run2" / "predictions.jsonl")
    assert [r["output"] for r in second] == [r["output"] for r in first]
    assert all(r.get("cached") is True for r in second)
    assert json.loads((root / "run2" / "metrics.json").read_text())["num_cached"] == LIMIT
    log = (root / "run2" / "run.log").read_text()
    assert f"{LIMIT} sample(s) answered from the response cache, 0 to generate" in log
    assert "prompt(s) generated" not in log and "engine process" not in log


def test_cli_runs_on_the_products_own_cpu_defaults(tiny_model_dir, tmp_path):
    """The test session sets VLLM_ENABLE_V1_MULTIPROCESSING / VLLM_CPU_KVCACHE_SPACE for its
    in-process engine; a user's shell has neither. Without them (and with no dtype given) the
    console script must still run, on the defaults evalkit itself applies."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    args = [
        "+experiment=toolcall", "backend=vllm", f"model.path={tiny_model_dir}", f"backend.max_model_len={MAX_MODEL_LEN}",
        "generation.max_new_tokens=4", "data.limit=3", "cache.enabled=false", f"hydra.run.dir={tmp_path / 'run'}",
    ]
    from tests.conftest import script
    import subprocess

    proc = subprocess.run([script("evalkit"), *args], env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_samples"] == 3 and metrics["num_failed"] == 0
    log = (tmp_path / "run" / "run.log").read_text()
    assert "float32" in log  # dtype auto resolved as backend=hf does on CPU, and said so
