"""Generation evaluation inside Lightning: left padding, restored state, files, logged F1.

The regression the seeds describe: evaluating during training with the training tokenizer's
right padding silently changes batched ``generate`` outputs and lowers F1. Here the tiny model
shows it does (right-padded batch outputs differ from one-prompt-at-a-time outputs), while the
callback's outputs equal the per-sample ones, its F1 is the reference F1, and the tokenizer is
back on the right afterwards.
"""

from __future__ import annotations

import csv
import json

import pytest
import torch

import lightning.pytorch as L
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from evalkit_hf.trainer import GenerationEval
from evalkit_lightning import EvalKitCallback

from ._modules import TinyChatModule, loader, synthetic_rows
from ._reference import tool_f1_micro
from .conftest import trainer_kwargs

QUERIES = [
    "你好",
    "运费多少钱？",
    "hello there friend",
    "a",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "请帮我查询从上海到北京的货车运价",
]
MAX_NEW = 6


def as_calls(text: str) -> list[dict[str, str]]:
    """A stand-in parser: the whole output is one 'tool name', so F1 measures exact outputs."""
    return [{"toolName": text}]


def _prompts(tokenizer) -> list[str]:
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True) for q in QUERIES]


@torch.no_grad()
def per_sample_outputs(model, tokenizer) -> list[str]:
    """The reference: one prompt at a time, so there is no padding at all."""
    out = []
    for text in _prompts(tokenizer):
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        ids = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False)[0, enc["input_ids"].shape[1] :]
        out.append(tokenizer.decode(_until_eos(ids.tolist(), tokenizer), skip_special_tokens=True))
    return out


@torch.no_grad()
def right_padded_outputs(model, tokenizer) -> list[str]:
    """The pitfall: a batch padded on the training side (right)."""
    assert tokenizer.padding_side == "right"
    enc = tokenizer(_prompts(tokenizer), return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False)[:, enc["input_ids"].shape[1] :]
    return [tokenizer.decode(_until_eos(row, tokenizer), skip_special_tokens=True) for row in out.tolist()]


def _until_eos(ids: list[int], tokenizer) -> list[int]:
    return ids[: ids.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in ids else ids


def _generation_eval(labels: list[str], **extra) -> dict:
    rows = [{"id": f"q{i}", "query": q, "label": as_calls(t)} for i, (q, t) in enumerate(zip(QUERIES, labels))]
    return {
        "data": rows,
        "prompt": {"user": "{{ query }}"},
        "parser": as_calls,
        "metrics": {"tool_f1": {"name": "tool_f1"}},
        "generation": {"max_new_tokens": MAX_NEW},
        "batch_size": 6,
        **extra,
    }


def test_left_padding_regression_and_restored_state(tiny_lm_dir, tmp_path):
    module = TinyChatModule(tiny_lm_dir, lr=0.0, optimizer="sgd")  # weights stay as the reference saw them
    model, tokenizer = module.model, module.tokenizer
    with torch.no_grad():
        model.eval()
        reference = per_sample_outputs(model, tokenizer)
        right = right_padded_outputs(model, tokenizer)
        model.train()
    changed = [i for i, (a, b) in enumerate(zip(reference, right)) if a != b]
    assert len(changed) >= 2, "right padding should change the tiny model's outputs"
    right_f1 = tool_f1_micro([as_calls(t) for t in right], [as_calls(t) for t in reference])["f1"]
    assert right_f1 < 1.0  # the silent F1 drop of seeds 001/002

    frozen = model.model.layers[0].mlp
    frozen.eval()  # a submodule the user keeps in eval mode must stay so
    seen: list[tuple[bool, bool, str]] = []
    model.register_forward_pre_hook(lambda mod, args: seen.append((mod.training, torch.is_grad_enabled(), tokenizer.padding_side)))
    callback = EvalKitCallback(generation_eval=_generation_eval(reference), every_n_train_steps=1, verbose=False)
    trainer = L.Trainer(**trainer_kwargs(tmp_path, callbacks=[callback], max_steps=1))
    trainer.fit(module, loader(synthetic_rows(4)))

    assert seen and all(s == (False, False, "left") for s in seen)  # eval mode, no grad, left padding
    assert tokenizer.padding_side == "right"
    assert model.training and not frozen.training and module.head.training
    records = [json.loads(line) for line in (tmp_path / "evalkit" / "step_1" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [f"q{i}" for i in range(len(QUERIES))]
    assert [r["output"] for r in records] == reference
    assert float(trainer.callback_metrics["val/tool_f1/micro/f1"]) == 1.0
    assert callback.last_generation.results["tool_f1"]["micro"]["f1"] == 1.0
    saved = json.loads((tmp_path / "evalkit" / "step_1" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["tool_f1"]["micro"]["f1"] == 1.0 and saved["num_samples"] == len(QUERIES) and saved["step"] == 1


def test_padding_side_and_mode_restored_when_generate_fails(tiny_lm_dir):
    module = TinyChatModule(tiny_lm_dir)
    model, tokenizer = module.model, module.tokenizer

    def broken_generate(**kwargs):
        assert tokenizer.padding_side == "left"
        raise RuntimeError("boom")

    model.generate = broken_generate
    evaluator = GenerationEval(**_generation_eval(["x"] * len(QUERIES)))
    with pytest.raises(RuntimeError, match="boom"):
        evaluator.run(model, tokenizer)
    assert tokenizer.padding_side == "right" and model.training


def test_every_n_steps_reaches_the_logger_and_scores_against_labels(tiny_lm_dir, tmp_path):
    """Generation every 2 steps is logged even though log_every_n_steps (50) never fires, and
    its F1 equals the reference F1 against partly wrong labels."""
    module = TinyChatModule(tiny_lm_dir, lr=0.0, optimizer="sgd")
    module.model.eval()
    reference = per_sample_outputs(module.model, module.tokenizer)
    module.model.train()
    labels = [t if i % 2 == 0 else "not this" for i, t in enumerate(reference)]
    expected = tool_f1_micro([as_calls(t) for t in reference], [as_calls(t) for t in labels])
    logger = CSVLogger(str(tmp_path), name="csv")
    callback = EvalKitCallback(
        metrics={"accept_head": {"name": "tolerance_accuracy"}},
        transform="sigmoid",
        generation_eval=_generation_eval(labels, batch_size=4),
        every_n_train_steps=2,
        monitor="val/tool_f1/micro/f1",
        verbose=False,
    )
    trainer = L.Trainer(**trainer_kwargs(tmp_path, callbacks=[callback], logger=logger, max_steps=4, val_check_interval=4))
    trainer.fit(module, loader(synthetic_rows(16)), loader(synthetic_rows(4, seed=1)))
    logger.save()

    assert [(h["kind"], h["step"]) for h in callback.history] == [("generation", 2), ("generation", 4), ("validation", 4)]
    for h in callback.history[:2]:
        assert h["metrics"]["val/tool_f1/micro/f1"] == pytest.approx(expected["f1"])
        assert h["metrics"]["val/tool_f1/micro/precision"] == pytest.approx(expected["precision"])
    with open(logger.log_dir + "/metrics.csv", newline="") as fh:
        logged = [float(r["val/tool_f1/micro/f1"]) for r in csv.DictReader(fh) if r.get("val/tool_f1/micro/f1")]
    assert logged == pytest.approx([expected["f1"]] * 2)
    assert callback.best_score == pytest.approx(expected["f1"]) and callback.best_step == 2
    assert sorted(p.name for p in (tmp_path / "csv" / "version_0" / "evalkit").iterdir()) == ["step_2", "step_4"]


def test_missing_model_attribute_lists_candidates(tiny_lm_dir, tmp_path):
    module = TinyChatModule(tiny_lm_dir)
    callback = EvalKitCallback(generation_eval=_generation_eval(["x"] * len(QUERIES)), model_attr="lm", verbose=False)
    trainer = L.Trainer(**trainer_kwargs(tmp_path, callbacks=[callback]))
    with pytest.raises(MisconfigurationException, match=r"no attribute 'lm'. Attributes with `generate`: model"):
        trainer.validate(module, loader(synthetic_rows(2)), verbose=False)
