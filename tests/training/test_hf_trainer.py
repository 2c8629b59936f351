"""Real ``transformers.Trainer`` runs with evalkit's ``compute_metrics`` /
``preprocess_logits_for_metrics`` builders (with and without ``batch_eval_metrics``) and the
generation ``TrainerCallback``; every number is checked against an independent reference
computed on the trained model afterwards."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evalkit.errors import ConfigError, PluginError
from evalkit_hf.trainer import EvalKitGenerationCallback, build_compute_metrics, build_preprocess_logits_for_metrics

from ._hf_data import PAIRS, AcceptHeadModel, PadCollator, accept_rows, sft_rows
from ._reference import sigmoid, token_accuracy_reference, tolerance_reference, tool_f1_micro


def as_calls(text: str) -> list[dict[str, str]]:
    return [{"toolName": text}]


def _args(tmp_path, batch_eval: bool, **overrides):
    from transformers import TrainingArguments

    kwargs = dict(
        output_dir=str(tmp_path / "out"),
        eval_strategy="steps",
        learning_rate=2e-3,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=3,  # uneven last batch on purpose
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        batch_eval_metrics=batch_eval,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=0,
    )
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


@torch.no_grad()
def _greedy_per_sample(model, tokenizer, queries: list[str], max_new_tokens: int) -> list[str]:
    out = []
    for q in queries:
        text = tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)[0, enc["input_ids"].shape[1] :].tolist()
        ids = ids[: ids.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in ids else ids
        out.append(tokenizer.decode(ids, skip_special_tokens=True))
    return out


@pytest.mark.parametrize("batch_eval", [False, True], ids=["whole-set", "batch_eval_metrics"])
def test_lm_trainer_token_accuracy_and_generation_callback(tiny_lm_dir, tmp_path, batch_eval):
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

    from evalkit_hf.tiny import quiet_transformers

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_lm_dir))
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(str(tiny_lm_dir), dtype=torch.float32)
    rows = sft_rows(tokenizer)
    queries = [q for q, _ in PAIRS[:5]]
    # labels: what the *initial* model would say for some rows — any fixed labels do; the
    # reference below scores the trained model's per-sample outputs against them.
    labels = [as_calls("x" if i % 2 else q) for i, q in enumerate(queries)]
    callback = EvalKitGenerationCallback(
        data=[{"id": f"g{i}", "query": q, "label": l} for i, (q, l) in enumerate(zip(queries, labels))],
        prompt={"user": "{{ query }}"},
        parser=as_calls,
        metrics={"tool_f1": {"name": "tool_f1"}},
        generation={"max_new_tokens": 5},
        batch_size=4,
    )
    trainer = Trainer(
        model=model,
        args=_args(tmp_path, batch_eval, max_steps=4, eval_steps=2),
        train_dataset=rows,
        eval_dataset=rows,
        data_collator=PadCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        compute_metrics=build_compute_metrics({"token_acc": {"name": "token_accuracy"}}),
        preprocess_logits_for_metrics=build_preprocess_logits_for_metrics("lm"),
        callbacks=[callback],
    )
    callback.bind(trainer)
    trainer.train()
    assert tokenizer.padding_side == "right"
    during = [h for h in trainer.state.log_history if "eval_token_acc_accuracy" in h]
    generated = [h for h in trainer.state.log_history if "eval_tool_f1_micro_f1" in h]
    assert [h["step"] for h in during] == [2, 4] and [h["step"] for h in generated] == [2, 4]

    final = trainer.evaluate()
    model.eval()
    pred_ids, label_ids = [], []
    with torch.no_grad():
        for r in rows:
            logits = model(input_ids=torch.tensor([r["input_ids"]])).logits[0]
            pred_ids.append(logits.argmax(-1).numpy())
            label_ids.append(np.array(r["labels"]))
    expected_acc = token_accuracy_reference(pred_ids, label_ids)
    assert final["eval_token_acc_accuracy"] == pytest.approx(expected_acc, abs=1e-12)
    assert during[-1]["eval_token_acc_accuracy"] == pytest.approx(expected_acc, abs=1e-12)  # same weights at step 4

    outputs = _greedy_per_sample(model, tokenizer, queries, 5)
    expected = tool_f1_micro([as_calls(t) for t in outputs], labels)
    assert final["eval_tool_f1_micro_f1"] == pytest.approx(expected["f1"])
    assert final["eval_tool_f1_micro_recall"] == pytest.approx(expected["recall"])
    assert generated[-1]["eval_tool_f1_micro_f1"] == pytest.approx(expected["f1"])
    records = [json.loads(line) for line in (tmp_path / "out" / "evalkit" / "step_4" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [f"g{i}" for i in range(len(queries))]
    assert [r["output"] for r in records] == outputs
    assert tokenizer.padding_side == "right"


@pytest.mark.parametrize("batch_eval", [False, True], ids=["whole-set", "batch_eval_metrics"])
def test_accept_head_trainer_metrics_equal_the_reference(tiny_lm_dir, tmp_path, batch_eval):
    from transformers import Trainer

    torch.manual_seed(0)
    model = AcceptHeadModel(tiny_lm_dir)
    train, val = accept_rows(12), accept_rows(7, seed=1)
    trainer = Trainer(
        model=model,
        args=_args(tmp_path, batch_eval, max_steps=3, eval_steps=3),
        train_dataset=train,
        eval_dataset=val,
        data_collator=PadCollator(0, float_labels=True),
        compute_metrics=build_compute_metrics({"accept_head": {"name": "tolerance_accuracy", "tolerance": 0.15}}),
        preprocess_logits_for_metrics=build_preprocess_logits_for_metrics("accept_head"),
    )
    trainer.train()
    final = trainer.evaluate()
    model.eval()
    with torch.no_grad():
        scores = [sigmoid(model(input_ids=torch.tensor([r["input_ids"]]))["logits"][0].numpy()) for r in val]
    expected = tolerance_reference(scores, [np.array(r["labels"]) for r in val], tolerance=0.15)
    for field, value in expected.items():
        assert final[f"eval_accept_head_{field}"] == pytest.approx(value, rel=1e-6, abs=1e-8), field
    during = [h for h in trainer.state.log_history if "eval_accept_head_accuracy" in h]
    assert during[0]["step"] == 3 and during[0]["eval_accept_head_mae"] == pytest.approx(final["eval_accept_head_mae"], rel=1e-9)


def test_compute_metrics_accumulates_per_batch_like_one_call():
    """compute_result=False batches accumulate; the last call returns the whole-set numbers,
    and seed 000's names are available with include_key=False."""
    from transformers import EvalPrediction

    g = np.random.default_rng(0)
    preds = g.random((10, 7))
    labels = np.where(g.random((10, 7)) < 0.3, -100.0, g.random((10, 7)))
    whole = build_compute_metrics({"accept_head": {"name": "tolerance_accuracy"}})(EvalPrediction(predictions=preds, label_ids=labels))
    batched = build_compute_metrics({"accept_head": {"name": "tolerance_accuracy"}})
    for start in range(0, 10, 4):
        out = batched(EvalPrediction(predictions=torch.tensor(preds[start : start + 4]), label_ids=torch.tensor(labels[start : start + 4])), compute_result=start + 4 >= 10)
        assert (out is None) == (start + 4 < 10)
    assert out == pytest.approx(whole)
    assert whole == pytest.approx({f"accept_head_{k}": v for k, v in tolerance_reference(list(preds), list(labels)).items()})
    bare = build_compute_metrics({"accept_head": {"name": "tolerance_accuracy"}}, include_key=False)
    assert set(bare((preds, labels))) == {"accuracy", "mae", "mse", "rmse"}


def test_preprocessors_follow_the_seed():
    logits = torch.randn(2, 5)
    assert torch.allclose(build_preprocess_logits_for_metrics("accept_head")((logits, torch.zeros(1)), None), torch.sigmoid(logits))
    assert torch.allclose(build_preprocess_logits_for_metrics("accept_head")(logits.unsqueeze(-1), None), torch.sigmoid(logits))
    lm = torch.randn(2, 5, 11)
    picked = build_preprocess_logits_for_metrics("lm")((torch.randn(2, 5), lm), None)  # the 3-D element, as LLaMA-Factory
    assert torch.equal(picked, lm.argmax(-1))
    with pytest.raises(ConfigError, match="available: accept_head, lm"):
        build_preprocess_logits_for_metrics("reward")
    with pytest.raises(PluginError, match="tolerance_accuracy"):
        build_compute_metrics({"x": {"name": "tolerance"}})
