"""Train a tiny AcceptHead with Lightning and watch evalkit's tolerance accuracy rise.

An AcceptHead (seed 000) is a causal LM whose LM head is replaced by ``Linear(H -> 1)``: one
logit per token, ``sigmoid`` -> a score in 0..1, trained against float labels at some positions
(-100 elsewhere). Here everything is offline and small: a random 2-layer checkpoint built by
``evalkit_hf.tiny`` (its ``lm_head`` already the ``[1, H]`` regression head), synthetic rows
whose label at a position is a fixed function of the token there (so there is something to
learn), and ``EvalKitCallback`` computing seed 000's tolerance accuracy / MAE / MSE / RMSE over
the validation outputs after every epoch — logged as ``val/accept_head/<field>``.

    python examples/lightning_accept_head.py            # about a minute on a laptop CPU

The validation step only returns ``{"preds": logits, "target": labels}``; the callback does
the rest (sigmoid, masking, per-sample averaging, DDP sync, logging, best value).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader

from evalkit_hf.tiny import build_tiny_chat_model, quiet_transformers
from evalkit_lightning import EvalKitCallback

IGNORE = -100


VOCAB = range(20, 52)  # 32 distinct tokens, so each is seen often enough to learn in a minute


def token_score(token: int) -> float:
    """The synthetic target: a fixed score per token id, one of 8 levels in [0.1, 0.8]."""
    return 0.1 + 0.1 * ((token * 5) % 8)


def make_rows(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(8, 25, (1,), generator=g))
        ids = torch.randint(VOCAB.start, VOCAB.stop, (length,), generator=g).tolist()
        # the first positions are "prompt": not scored, as in LLaMA-Factory's AcceptHead data
        rows.append({"input_ids": ids, "labels": [IGNORE] * 3 + [token_score(t) for t in ids[3:]]})
    return rows


def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), float(IGNORE))
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[b, :n], mask[b, :n] = torch.tensor(r["input_ids"]), 1
        labels[b, :n] = torch.tensor(r["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class AcceptHeadModule(L.LightningModule):
    """The checkpoint's transformer body plus its ``[1, H]`` head, trained with MSE on scores."""

    def __init__(self, checkpoint: Path, lr: float = 5e-3) -> None:
        super().__init__()
        from safetensors.torch import load_file
        from transformers import AutoModel

        with quiet_transformers():  # the [1, H] lm_head is not part of the body: expected
            self.backbone = AutoModel.from_pretrained(str(checkpoint), dtype=torch.float32)
        self.backbone.train()
        tensors = load_file(str(checkpoint / "model.safetensors"))
        self.head = torch.nn.Linear(tensors["lm_head.weight"].shape[1], 1)
        self.head.load_state_dict({"weight": tensors["lm_head.weight"], "bias": tensors["lm_head.bias"]})
        self.lr = lr

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden).squeeze(-1)  # [B, T] logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["input_ids"], batch["attention_mask"])
        scored = batch["labels"] != IGNORE
        loss = torch.nn.functional.mse_loss(torch.sigmoid(logits)[scored], batch["labels"][scored])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return {"preds": self(batch["input_ids"], batch["attention_mask"]), "target": batch["labels"]}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", default=None, help="output directory (default: a temporary one)")
    args = parser.parse_args()
    L.seed_everything(0, verbose=False)
    out = Path(args.out or tempfile.mkdtemp(prefix="evalkit-accepthead-"))
    checkpoint = build_tiny_chat_model(out / "checkpoint", accept_head=True, seed=3)

    callback = EvalKitCallback(
        metrics={"accept_head": {"name": "tolerance_accuracy", "tolerance": 0.1}},
        transform="sigmoid",
        monitor="val/accept_head/accuracy",
        verbose=False,
    )
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        callbacks=[callback],
        default_root_dir=str(out),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=10,
    )
    train = DataLoader(make_rows(384, seed=0), batch_size=32, shuffle=True, collate_fn=collate)
    val = DataLoader(make_rows(64, seed=1), batch_size=32, collate_fn=collate)
    trainer.validate(AcceptHeadModule(checkpoint), val, verbose=False)  # the untrained head, for reference
    before = callback.history[-1]["metrics"]
    module = AcceptHeadModule(checkpoint)
    trainer.fit(module, train, val)

    rows = [("before training", before)] + [(f"epoch {h['epoch']} (step {h['step']})", h["metrics"]) for h in callback.history[1:]]
    print(f"{'':24s} {'accuracy':>9s} {'mae':>7s} {'rmse':>7s}")
    for label, m in rows:
        print(f"{label:24s} {m['val/accept_head/accuracy']:9.4f} {m['val/accept_head/mae']:7.4f} {m['val/accept_head/rmse']:7.4f}")
    first, last = before["val/accept_head/accuracy"], callback.history[-1]["metrics"]["val/accept_head/accuracy"]
    print(f"val/accept_head/accuracy: first {first:.4f} -> last {last:.4f} (best {callback.best_score:.4f} at step {callback.best_step})")
    print(f"logs: {trainer.log_dir}")


if __name__ == "__main__":
    main()
