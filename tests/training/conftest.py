"""Fixtures for the evaluation-during-training tests: a tiny real chat model, built offline.

The model comes from :func:`evalkit_hf.tiny.build_tiny_chat_model` (random weights, untied
embeddings so greedy output depends on the whole prompt, a tokenizer trained in-process) into a
session-scoped temporary directory; nothing is downloaded and no binary is committed.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Lightning's start-up tips and the "few batches" warnings are noise in these tiny runs.
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalkit_hf.tiny import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("training_tiny_lm") / "model", seed=0)


def trainer_kwargs(root: Path, **overrides):
    """A small, quiet CPU Lightning Trainer configuration."""
    kwargs = dict(
        accelerator="cpu",
        devices=1,
        default_root_dir=str(root),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        num_sanity_val_steps=0,
    )
    kwargs.update(overrides)
    return kwargs
