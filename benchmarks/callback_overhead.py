"""Overhead of EvalKitCallback's metric path vs hand-written validation code, same model/data.

    python benchmarks/callback_overhead.py [--rows 512] [--batch-size 32] [--repeats 3]

An AcceptHead-style model (a tiny HF transformer body + ``Linear(H -> 1)``) scores the same
validation rows three ways, each computing seed 000's tolerance accuracy / MAE / MSE / RMSE
(per-sample means over scored positions, then the mean over samples):

(a) ``Lightning + EvalKitCallback``: ``validation_step`` returns ``{"preds", "target"}``; the
    callback applies the sigmoid, updates ``tolerance_accuracy`` per batch and logs
    ``val/accept_head/*`` at epoch end (``log_dict(..., sync_dist=True)``);
(b) ``Lightning, hand-written``: the same Trainer and module, but the metric code is written
    inline in ``validation_step`` / ``on_validation_epoch_end`` (per-batch torch sums, logged
    with ``self.log_dict``) — what users write without evalkit;
(c) ``plain loop, hand-written``: no Lightning — ``model.eval()``, ``torch.no_grad()``, the
    same per-batch torch sums (context: the cost of the Trainer itself).

All three must print the same numbers (to float32 rounding: evalkit sums a sample's errors in
the inputs' dtype like seed 000's ``np.mean``, the hand-written code in float64). The ratio that measures the callback is (a) / (b)
(target <= 1.10); (a) / (c) is printed too. Best of ``--repeats`` runs each, measured side by
side in one process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import logging
import warnings

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader

from evalkit_hf.tiny import build_tiny_chat_model, quiet_transformers
from evalkit_lightning import EvalKitCallback

IGNORE = -100.0
TOL, SMALL = 0.1, 0.01


def make_rows(n: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(48, 129, (1,), generator=g))
        ids = torch.randint(20, 400, (length,), generator=g)
        labels = torch.rand(length, generator=g)
        labels[torch.rand(length, generator=g) < 0.4] = IGNORE
        labels[:4] = IGNORE
        rows.append({"input_ids": ids, "labels": labels})
    return rows


def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE)
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[b, :n], mask[b, :n], labels[b, :n] = r["input_ids"], 1, r["labels"]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batch_sums(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Hand-written seed 000 metric for one batch: sums of per-sample accuracy, mae, mse, rmse
    and the number of samples with a scored position."""
    p = torch.sigmoid(logits.float())
    mask = labels != IGNORE
    diff = (p - labels).abs()
    correct = torch.where(labels < SMALL, diff <= TOL, diff / labels.clamp_min(1e-8) <= TOL) & mask
    diff = torch.where(mask, diff, 0)
    n = mask.sum(1)
    keep = n > 0
    nk = n[keep].double()
    mse = (diff * diff).sum(1, dtype=torch.float64)[keep] / nk
    return torch.stack([(correct.sum(1)[keep] / nk).sum(), (diff.sum(1, dtype=torch.float64)[keep] / nk).sum(), mse.sum(), mse.sqrt().sum(), keep.sum().double()])


def finish(sums: torch.Tensor) -> dict[str, float]:
    n = float(sums[4])
    return {k: float(v) / n for k, v in zip(("accuracy", "mae", "mse", "rmse"), sums[:4])}


class Scorer(L.LightningModule):
    def __init__(self, checkpoint: Path, inline_metric: bool) -> None:
        super().__init__()
        from transformers import AutoModel

        with quiet_transformers():
            self.backbone = AutoModel.from_pretrained(str(checkpoint), dtype=torch.float32)
        self.head = torch.nn.Linear(self.backbone.config.hidden_size, 1)
        torch.nn.init.normal_(self.head.weight, std=0.1)
        self.inline_metric = inline_metric
        self.sums = torch.zeros(5, dtype=torch.float64)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state).squeeze(-1)

    def on_validation_epoch_start(self) -> None:
        self.sums = torch.zeros(5, dtype=torch.float64)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int):
        logits = self(batch["input_ids"], batch["attention_mask"])
        if self.inline_metric:
            self.sums += batch_sums(logits, batch["labels"])
            return None
        return {"preds": logits, "target": batch["labels"]}

    def on_validation_epoch_end(self) -> None:
        if self.inline_metric:
            sums = self.trainer.strategy.reduce(self.sums, reduce_op="sum")
            self.log_dict({f"val/accept_head/{k}": v for k, v in finish(sums).items()}, sync_dist=False)


def trainer(callbacks: list) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=callbacks,
    )


def run_callback(module: Scorer, data: DataLoader) -> dict[str, float]:
    callback = EvalKitCallback(metrics={"accept_head": {"name": "tolerance_accuracy", "tolerance": TOL}}, transform="sigmoid", verbose=False)
    trainer([callback]).validate(module, data, verbose=False)
    return {k.split("/")[-1]: v for k, v in callback.history[-1]["metrics"].items()}


def run_inline(module: Scorer, data: DataLoader) -> dict[str, float]:
    t = trainer([])
    t.validate(module, data, verbose=False)
    return finish(module.sums)


@torch.no_grad()
def run_plain(module: Scorer, data: DataLoader) -> dict[str, float]:
    module.eval()
    sums = torch.zeros(5, dtype=torch.float64)
    for batch in data:
        sums += batch_sums(module(batch["input_ids"], batch["attention_mask"]), batch["labels"])
    return finish(sums)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 keeps shared machines steady)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_tiny_chat_model(Path(tmp) / "model", hidden_size=128, num_attention_heads=4, num_hidden_layers=2, seed=0)
        data = DataLoader(make_rows(args.rows), batch_size=args.batch_size, collate_fn=collate)
        with_callback, inline = Scorer(checkpoint, inline_metric=False), Scorer(checkpoint, inline_metric=True)
        inline.load_state_dict(with_callback.state_dict())
        ways = {
            "Lightning + EvalKitCallback": lambda: run_callback(with_callback, data),
            "Lightning, hand-written": lambda: run_inline(inline, data),
            "plain loop, hand-written": lambda: run_plain(inline, data),
        }
        for fn in ways.values():  # warm-up (imports, allocator, thread pools)
            fn()
        times: dict[str, float] = {name: float("inf") for name in ways}
        cpu: dict[str, float] = {name: float("inf") for name in ways}
        results: dict[str, dict[str, float]] = {}
        for _ in range(args.repeats):
            for name, fn in ways.items():  # interleaved, so drift in machine load hits all three alike
                start, start_cpu = time.perf_counter(), time.process_time()
                results[name] = fn()
                times[name] = min(times[name], time.perf_counter() - start)
                cpu[name] = min(cpu[name], time.process_time() - start_cpu)

    print(f"{args.rows} rows, batch {args.batch_size}, {args.threads} torch thread(s), best of {args.repeats}")
    print(f"{'':30s} {'wall s':>8s} {'cpu s':>8s}  {'accuracy':>10s} {'mae':>10s} {'mse':>10s} {'rmse':>10s}")
    for name in ways:
        r = results[name]
        print(f"{name:30s} {times[name]:8.3f} {cpu[name]:8.3f}  {r['accuracy']:10.6f} {r['mae']:10.6f} {r['mse']:10.6f} {r['rmse']:10.6f}")
    ref = results["plain loop, hand-written"]
    worst = max(abs(r[k] - v) / max(abs(v), 1e-12) for r in results.values() for k, v in ref.items())
    # evalkit sums each sample's errors in the inputs' float32, as seed 000's np.mean does; the
    # hand-written code sums in float64 — the figures agree to float32 rounding
    assert worst <= 1e-6, f"numbers differ (max relative difference {worst:.2e})"
    print(f"numbers: equal in all three (max relative difference {worst:.1e}, float32 rounding)")
    a, b, c = (times[n] for n in ways)
    ca, cb, cc = (cpu[n] for n in ways)
    print(f"callback vs hand-written metric code in the same Trainer: {a / b:.3f}x wall, {ca / cb:.3f}x cpu (target <= 1.10)")
    print(f"callback vs a plain PyTorch loop without Lightning:       {a / c:.3f}x wall, {ca / cc:.3f}x cpu")


if __name__ == "__main__":
    main()
