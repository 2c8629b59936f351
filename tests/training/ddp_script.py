"""One small ``fit`` with EvalKitCallback on 1 process or 2 gloo DDP processes (CPU).

Run as ``python -m tests.training.ddp_script MODEL_DIR EVAL_JSONL OUT_DIR DEVICES`` from the
repository root: with ``DEVICES=2`` Lightning's ``ddp`` strategy re-launches this same command
for rank 1 (which is why it is a script, not code inside pytest). The learning rate is 0, so
every process count sees the same weights and the numbers must agree. Rank zero writes
``OUT_DIR/result.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def as_calls(text: str) -> list[dict[str, str]]:
    return [{"toolName": text}]


def run(model_dir: str, eval_path: str, out_dir: str, devices: int) -> dict:
    import lightning.pytorch as L
    from lightning.pytorch.strategies import DDPStrategy

    from evalkit.training import GenerationEval
    from evalkit_lightning import EvalKitCallback
    from tests.training._modules import TinyChatModule, loader, synthetic_rows

    generated: set[int] = set()  # dataset indices this process generated (shows the ranks split the work)
    original = GenerationEval._generate

    def counting(self, backend, shard):
        generated.update(s.index for s in shard)
        return original(self, backend, shard)

    GenerationEval._generate = counting

    L.seed_everything(0, verbose=False)
    module = TinyChatModule(model_dir, lr=0.0, optimizer="sgd")
    callback = EvalKitCallback(
        metrics={"accept_head": {"name": "tolerance_accuracy", "tolerance": 0.1}},
        transform="sigmoid",
        generation_eval={
            "data": eval_path,
            "prompt": {"user": "{{ query }}"},
            "parser": as_calls,
            "metrics": {"tool_f1": {"name": "tool_f1"}, "exact": {"name": "tool_exact_match"}},
            "generation": {"max_new_tokens": 6},
            "batch_size": 2,
        },
        every_n_train_steps=2,
        verbose=False,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=DDPStrategy(process_group_backend="gloo") if devices > 1 else "auto",
        max_steps=2,
        val_check_interval=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=out_dir,
        callbacks=[callback],
    )
    try:
        trainer.fit(module, loader(synthetic_rows(16)), loader(synthetic_rows(16, seed=1), batch_size=4))
    finally:
        GenerationEval._generate = original  # the single-process run happens inside pytest
    result = {
        "world_size": trainer.world_size,
        "callback_metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")},
        "history": callback.history,
        "val_rows_seen_by_rank0": sum(int(t.shape[0]) for _, t in module.val_outputs),
        "generated_by_rank0": sorted(generated),
        "padding_side_after": module.tokenizer.padding_side,
    }
    if trainer.is_global_zero:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "result.json").write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return result


if __name__ == "__main__":
    model_dir, eval_path, out_dir, devices = sys.argv[1:5]
    run(model_dir, eval_path, out_dir, int(devices))
