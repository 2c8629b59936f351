"""Fine-tune a tiny LM with ``transformers.Trainer`` and evaluate tool calls while it trains.

The flow of seeds 001/002, offline and small: SFT rows built from evalkit's demo tool-call data
(a short prompt -> the ``{"label": [...]}`` JSON answer, loss on the answer only), a random
tiny chat model from ``evalkit_hf.tiny``, and two evalkit hooks on the Trainer:

* ``compute_metrics`` / ``preprocess_logits_for_metrics`` from
  ``evalkit_hf.trainer`` -> ``eval_token_acc_accuracy``: response-only next-token accuracy
  (argmax per batch, causal shift in the metric) — cheap, every evaluation;
* ``EvalKitGenerationCallback`` -> ``eval_tool_f1_micro_f1`` etc.: greedy generation on held-out
  rows, left-padded although the training tokenizer pads on the right, parsed by ``json_label``
  and scored with tool-call F1; ``predictions.jsonl`` per evaluation under
  ``<output_dir>/evalkit/step_<N>/``.

At the end the script also generates the held-out set the naive way — batched with the
tokenizer's training (right) padding — to show the silent F1 drop the callback avoids.

    python examples/hf_trainer_toolcall.py        # about a minute on a laptop CPU
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from importlib import resources
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

from evalkit_hf.tiny import build_tiny_chat_model, quiet_transformers
from evalkit_hf.trainer import EvalKitGenerationCallback, build_compute_metrics, build_preprocess_logits_for_metrics

IGNORE = -100
SYSTEM = "根据司机的问题输出工具调用 JSON。"
USER = "{{ query }}"


def names_only(label: list[dict]) -> list[dict]:
    """This tiny task predicts which tools to call, not their parameters."""
    return [{"toolName": call["toolName"]} for call in label]


def answer(label: list[dict]) -> str:
    """The training target: the JSON the json_label parser reads."""
    return json.dumps({"label": names_only(label)}, ensure_ascii=False)


def sft_row(tokenizer, row: dict) -> dict:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": row["query"]}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a = tokenizer(answer(row["label"]) + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    return {"input_ids": p + a, "labels": [IGNORE] * len(p) + a}


class RightPadCollator:
    """The training side: right padding, -100 on padded labels."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        out = {k: torch.full((len(rows), width), v, dtype=torch.long) for k, v in (("input_ids", self.pad_id), ("attention_mask", 0), ("labels", IGNORE))}
        for b, r in enumerate(rows):
            n = len(r["input_ids"])
            out["input_ids"][b, :n] = torch.tensor(r["input_ids"])
            out["attention_mask"][b, :n] = 1
            out["labels"][b, :n] = torch.tensor(r["labels"])
        return out


@torch.no_grad()
def right_padded_f1(model, tokenizer, rows: list[dict], max_new_tokens: int) -> float:
    """What a naive eval-during-training would report: one batch, padded on the right."""
    from evalkit_metrics import ToolCallF1
    from evalkit_parsers.json_label import JsonLabelParser

    parse = JsonLabelParser()
    prompts = [
        tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": r["query"]}], tokenize=False, add_generation_prompt=True)
        for r in rows
    ]
    assert tokenizer.padding_side == "right"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    model.eval()
    out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    preds = []
    for ids in out[:, enc["input_ids"].shape[1] :].tolist():
        try:
            preds.append(parse(tokenizer.decode(ids, skip_special_tokens=True)))
        except ValueError:
            preds.append([])
    metric = ToolCallF1()
    metric.update(preds, [names_only(r["label"]) for r in rows])
    return metric.compute()["micro"]["f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--eval-steps", type=int, default=10)
    parser.add_argument("--out", default=None, help="output directory (default: a temporary one)")
    args = parser.parse_args()
    torch.manual_seed(0)
    out = Path(args.out or tempfile.mkdtemp(prefix="evalkit-hf-toolcall-"))
    checkpoint = build_tiny_chat_model(out / "checkpoint", seed=0)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))  # padding_side="right", as for training
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32)

    demo = resources.files("evalkit.demo").joinpath("toolcall", "data.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in demo.splitlines() if line.strip()]
    train_rows, held_out = rows[:40], rows[40:]
    generation_eval = EvalKitGenerationCallback(
        data=[{"id": r["id"], "query": r["query"], "label": names_only(r["label"])} for r in held_out],
        prompt={"system": SYSTEM, "user": USER},
        parser="json_label",
        metrics={"tool_f1": {"name": "tool_f1"}, "tool_exact_match": {"name": "tool_exact_match"}},
        generation={"max_new_tokens": 32, "temperature": 0.0},
        batch_size=8,
        label_format="tool_calls",
    )
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(out / "run"),
            max_steps=args.steps,
            learning_rate=3e-3,
            lr_scheduler_type="constant",
            per_device_train_batch_size=8,
            per_device_eval_batch_size=8,
            eval_strategy="steps",
            eval_steps=args.eval_steps,
            logging_steps=args.eval_steps,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            batch_eval_metrics=True,
            disable_tqdm=True,
            seed=0,
        ),
        train_dataset=[sft_row(tokenizer, r) for r in train_rows],
        eval_dataset=[sft_row(tokenizer, r) for r in held_out],
        data_collator=RightPadCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        compute_metrics=build_compute_metrics({"token_acc": {"name": "token_accuracy"}}),
        preprocess_logits_for_metrics=build_preprocess_logits_for_metrics("lm"),
        callbacks=[generation_eval],
    )
    generation_eval.bind(trainer)  # so generation metrics reach the Trainer's loggers too
    trainer.train()

    print(f"\n{'step':>5s} {'token_acc':>10s} {'tool F1':>8s} {'exact':>7s} {'parse errors':>13s}")
    by_step: dict[int, dict] = {}
    for entry in trainer.state.log_history:
        if any(k.startswith("eval_") for k in entry):
            by_step.setdefault(entry["step"], {}).update(entry)
    for step, m in sorted(by_step.items()):
        print(
            f"{step:5d} {m.get('eval_token_acc_accuracy', float('nan')):10.4f} {m.get('eval_tool_f1_micro_f1', float('nan')):8.4f} "
            f"{m.get('eval_tool_exact_match_all_accuracy', float('nan')):7.4f} {int(m.get('eval_generation_num_parse_errors', 0)):13d}"
        )
    last = by_step[max(by_step)]
    naive = right_padded_f1(model, tokenizer, held_out, 32)
    print(f"\nheld-out tool F1 at step {max(by_step)}: evalkit (left padding) {last['eval_tool_f1_micro_f1']:.4f}"
          f" vs naive right-padded batch {naive:.4f}; tokenizer padding side afterwards: {tokenizer.padding_side}")
    print(f"predictions: {out / 'run' / 'evalkit'}")


if __name__ == "__main__":
    main()
