"""Tiny real checkpoints for the HF tests, built offline once per test session.

Usage from any test in this folder (or copy the pattern into your own conftest)::

    def test_something(tiny_lm_dir):
        model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)

Each fixture builds its checkpoint in a session-scoped temporary directory with
:func:`evalkit_hf.tiny.build_tiny_chat_model` (well under a second after the first import),
so no binaries are committed and no hub is ever contacted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen3-style chat LM with untied embeddings (greedy output depends on input)."""
    from evalkit_hf.tiny import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny_lm") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same recipe on the Llama architecture, with grouped-query attention."""
    from evalkit_hf.tiny import build_tiny_chat_model

    return build_tiny_chat_model(
        tmp_path_factory.mktemp("tiny_llama") / "model", model_type="llama", num_attention_heads=4, num_key_value_heads=2, seed=1
    )


@pytest.fixture(scope="session")
def tiny_accept_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AcceptHead checkpoint: ``lm_head.weight`` [1, H] and ``lm_head.bias`` [1]."""
    from evalkit_hf.tiny import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny_accept") / "model", seed=3, accept_head=True)
