"""Small LightningModules and data for the training tests (and the DDP script).

``TinyChatModule`` wraps a real tiny HF chat model (built offline by
``evalkit_hf.tiny.build_tiny_chat_model``) as ``self.model`` / ``self.tokenizer`` — what the
callback's generation evaluation uses — plus an AcceptHead-style ``Linear(H -> 1)`` head on the
backbone's final hidden states, whose ``[B, T]`` logits ``validation_step`` returns with the
float labels. It keeps the last validation epoch's outputs so tests can recompute the metric
independently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader, Dataset

IGNORE = -100


def synthetic_rows(n: int, *, seed: int = 0, vocab: tuple[int, int] = (20, 400), min_len: int = 6, max_len: int = 14) -> list[dict[str, Any]]:
    """AcceptHead rows: the label of a scored position depends on its token (learnable)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        length = int(torch.randint(min_len, max_len + 1, (1,), generator=g))
        ids = torch.randint(vocab[0], vocab[1], (length,), generator=g).tolist()
        labels = [IGNORE, IGNORE] + [token_score(t) for t in ids[2:]]
        rows.append({"id": i, "input_ids": ids, "labels": labels})
    return rows


def token_score(token: int) -> float:
    return round(0.05 + 0.9 * ((token * 37) % 100) / 100, 4)


class RowsDataset(Dataset):
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def collate(rows: list[dict[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), float(IGNORE), dtype=torch.float32)
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[b, :n] = torch.tensor(r["input_ids"])
        mask[b, :n] = 1
        labels[b, :n] = torch.tensor(r["labels"], dtype=torch.float32)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def loader(rows: list[dict[str, Any]], batch_size: int = 4, shuffle: bool = False) -> DataLoader:
    return DataLoader(RowsDataset(rows), batch_size=batch_size, shuffle=shuffle, collate_fn=collate, num_workers=0)


class TinyChatModule(L.LightningModule):
    def __init__(self, model_dir: str | Path, lr: float = 3e-3, optimizer: str = "adam") -> None:
        super().__init__()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from evalkit_hf.tiny import quiet_transformers

        with quiet_transformers():
            self.model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        self.model.train()  # from_pretrained returns eval mode; train like a fine-tuning run would
        self.model.lm_head.requires_grad_(False)  # only the backbone and the AcceptHead learn (DDP needs every trainable parameter used)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        hidden = self.model.config.hidden_size
        g = torch.Generator().manual_seed(7)
        self.head = torch.nn.Linear(hidden, 1)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(1, hidden, generator=g) / hidden**0.5)
            self.head.bias.zero_()
        self.lr = lr
        self.optimizer_name = optimizer
        self.val_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.generate_modes: list[tuple[bool, bool]] = []  # (model.training, grad enabled) seen inside generate

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden).squeeze(-1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        mask = batch["labels"] != IGNORE
        loss = torch.nn.functional.mse_loss(torch.sigmoid(logits)[mask], batch["labels"][mask])
        self.log("train/loss", loss, prog_bar=False)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_outputs = []

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"])
        if not self.trainer.sanity_checking:
            self.val_outputs.append((logits.detach().cpu().clone(), batch["labels"].cpu().clone()))
        return {"preds": logits, "target": batch["labels"]}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr)
        return torch.optim.Adam(self.parameters(), lr=self.lr)
