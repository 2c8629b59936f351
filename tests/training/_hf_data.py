"""Tiny SFT and AcceptHead datasets and models for the HF ``Trainer`` tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

IGNORE = -100

PAIRS = [
    ("运费多少钱？", '{"label": [{"toolName": "priceCheck"}]}'),
    ("要17.5米的车吗？", '{"label": [{"toolName": "truckCheck"}]}'),
    ("hello there", '{"label": []}'),
    ("平板车能拉吗？", '{"label": [{"toolName": "truckCheck"}]}'),
    ("明天几点装货？", '{"label": [{"toolName": "loadTimeCheck"}]}'),
    ("The quick brown fox", '{"label": []}'),
    ("到车价多少？", '{"label": [{"toolName": "priceCheck"}]}'),
    ("怎么结算？", '{"label": [{"toolName": "settlementMethod"}]}'),
]


def sft_rows(tokenizer: Any, pairs=PAIRS) -> list[dict[str, list[int]]]:
    """LLaMA-Factory-style SFT rows: labels are -100 on the prompt, token ids on the response."""
    rows = []
    for query, answer in pairs:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": query}], tokenize=False, add_generation_prompt=True)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        rows.append({"input_ids": p_ids + a_ids, "labels": [IGNORE] * len(p_ids) + a_ids})
    return rows


def accept_rows(n: int, seed: int = 0) -> list[dict[str, list]]:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(5, 12, (1,), generator=g))
        ids = torch.randint(20, 400, (length,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": [float(IGNORE)] * 2 + [round(0.05 + 0.9 * ((t * 37) % 100) / 100, 4) for t in ids[2:]]})
    return rows


class PadCollator:
    """Right padding (the training side): pad id for inputs, -100 for labels."""

    def __init__(self, pad_id: int, float_labels: bool = False) -> None:
        self.pad_id, self.float_labels = pad_id, float_labels

    def __call__(self, rows: list[dict[str, list]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        dtype = torch.float32 if self.float_labels else torch.long
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=dtype)
        for b, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[b, :n] = torch.tensor(r["input_ids"])
            mask[b, :n] = 1
            labels[b, :n] = torch.tensor(r["labels"], dtype=dtype)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class AcceptHeadModel(torch.nn.Module):
    """A backbone plus ``Linear(H -> 1)``; returns ``{"loss", "logits": [B, T]}`` like an
    AcceptHead model under LLaMA-Factory (MSE of sigmoid scores on labelled positions)."""

    def __init__(self, model_dir: str | Path) -> None:
        super().__init__()
        from transformers import AutoModel

        from evalkit_hf.tiny import quiet_transformers

        with quiet_transformers():
            self.backbone = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32)
        hidden = self.backbone.config.hidden_size
        self.head = torch.nn.Linear(hidden, 1)
        g = torch.Generator().manual_seed(11)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(1, hidden, generator=g) / hidden**0.5)
            self.head.bias.zero_()

    def forward(self, input_ids=None, attention_mask=None, labels=None):
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.head(hidden).squeeze(-1)
        out = {"logits": logits}
        if labels is not None:
            mask = labels != IGNORE
            out = {"loss": torch.nn.functional.mse_loss(torch.sigmoid(logits)[mask], labels[mask]), **out}
        return out
