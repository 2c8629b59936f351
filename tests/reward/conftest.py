"""Tiny reward checkpoints for the reward tests, built offline once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def build_seq_classifier(out: Path, seed: int = 7, hidden_size: int = 64, num_hidden_layers: int = 2) -> Path:
    """A (2-layer) Qwen3 ``ForSequenceClassification`` with ``num_labels=1`` and the tiny tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from evalkit_hf.tiny import _portable_tokenizer_class, build_tokenizer, quiet_transformers

    tok = build_tokenizer(512)
    config = AutoConfig.for_model(
        "qwen3", vocab_size=512, hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=num_hidden_layers, num_attention_heads=2,
        num_key_value_heads=2, head_dim=hidden_size // 2, initializer_range=0.2, tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None, num_labels=1,
    )
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32).eval()
    with quiet_transformers():
        model.save_pretrained(out)
    tok.save_pretrained(out)
    _portable_tokenizer_class(out)
    return out


@pytest.fixture(scope="session")
def seq_rm_dir(tmp_path_factory) -> Path:
    return build_seq_classifier(tmp_path_factory.mktemp("seq_rm") / "model")


@pytest.fixture(scope="session")
def value_head_dir(tmp_path_factory) -> Path:
    """LLaMA-Factory's RM layout: the model plus value_head.safetensors (v_head.summary.*)."""
    import torch
    from safetensors.torch import save_file

    from evalkit_hf.tiny import build_tiny_chat_model

    out = build_tiny_chat_model(tmp_path_factory.mktemp("vhead") / "model", seed=8)
    g = torch.Generator().manual_seed(8)
    save_file({"v_head.summary.weight": torch.randn(1, 64, generator=g) / 8, "v_head.summary.bias": torch.randn(1, generator=g)}, str(out / "value_head.safetensors"))
    return out


@pytest.fixture(scope="session")
def accept_dir(tmp_path_factory) -> Path:
    from evalkit_hf.tiny import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("accept") / "model", seed=9, accept_head=True)


@pytest.fixture(scope="session")
def policy_ref_dirs(tmp_path_factory) -> tuple[Path, Path]:
    from evalkit_hf.tiny import build_tiny_chat_model

    return (build_tiny_chat_model(tmp_path_factory.mktemp("policy") / "model", seed=10),
            build_tiny_chat_model(tmp_path_factory.mktemp("ref") / "model", seed=11))


def assert_judge_run(tmp_path: Path, *backend_args: str) -> None:
    """``+experiment=reward head=judge`` on the demo policy through the CLI: two generations per
    pair, verdicts combined (the tiny random policy rarely writes a verdict: ties, counted so)."""
    import json

    from tests.conftest import read_jsonl, run_cli

    proc = run_cli(["+experiment=reward", "head=judge", *backend_args, "model=dpo_demo", "generation.max_new_tokens=4", f"hydra.run.dir={tmp_path}"], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    records = read_jsonl(tmp_path / "predictions.jsonl")
    assert len(records) == metrics["pairwise"]["total"] == 24 and metrics["num_failed"] == 0
    for r in records:
        pred = r["prediction"]
        assert len(pred["judgements"]) == 2 and len(pred["verdicts"]) == 2
        assert (pred["chosen"], pred["rejected"]) in ((1.0, 0.0), (0.0, 1.0), (0.5, 0.5))
    assert metrics["pairwise"]["ties"] == sum(r["prediction"]["chosen"] == 0.5 for r in records)
