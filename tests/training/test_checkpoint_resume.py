"""The callback's state (last evaluated steps, best value, history) survives a checkpoint."""

from __future__ import annotations

import torch

import lightning.pytorch as L
from lightning.pytorch.callbacks import Callback

from evalkit_lightning import EvalKitCallback

from ._modules import TinyChatModule, loader, synthetic_rows
from .conftest import trainer_kwargs


def _callback() -> EvalKitCallback:
    return EvalKitCallback(
        metrics={"accept_head": {"name": "tolerance_accuracy", "tolerance": 0.1}},
        transform="sigmoid",
        generation_eval={
            "data": [{"id": 0, "query": "你好", "label": None}, {"id": 1, "query": "hello", "label": None}],
            "prompt": {"user": "{{ query }}"},
            "parser": None,
            "generation": {"max_new_tokens": 2},
        },
        every_n_train_steps=2,
        monitor="val/accept_head/accuracy",
        verbose=False,
    )


class StateProbe(Callback):
    """Snapshots another callback's state when training starts, i.e. right after the restore."""

    def __init__(self, target: EvalKitCallback) -> None:
        self.target = target
        self.snapshot: dict | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.snapshot = self.target.state_dict()


def test_checkpoint_resume_keeps_the_callback_state(tiny_lm_dir, tmp_path):
    train, val = synthetic_rows(8), synthetic_rows(4, seed=1)
    first = _callback()
    trainer = L.Trainer(**trainer_kwargs(tmp_path, callbacks=[first], max_epochs=1))
    trainer.fit(TinyChatModule(tiny_lm_dir), loader(train), loader(val))
    assert [(h["kind"], h["step"]) for h in first.history] == [("generation", 2), ("validation", 2)]
    assert first.best_step == 2 and first.last_generation_step == 2
    ckpt = tmp_path / "epoch1.ckpt"
    trainer.save_checkpoint(ckpt)
    stored = torch.load(ckpt, map_location="cpu", weights_only=False)["callbacks"][first.state_key]
    assert stored == first.state_dict()

    second = _callback()
    assert second.state_key == first.state_key
    probe = StateProbe(second)
    trainer = L.Trainer(**trainer_kwargs(tmp_path, callbacks=[second, probe], max_epochs=2))
    trainer.fit(TinyChatModule(tiny_lm_dir), loader(train), loader(val), ckpt_path=str(ckpt))

    assert probe.snapshot == first.state_dict()
    assert second.history[:2] == first.history
    assert [(h["kind"], h["step"]) for h in second.history[2:]] == [("generation", 4), ("validation", 4)]
    accuracies = {h["step"]: h["metrics"]["val/accept_head/accuracy"] for h in second.history if h["kind"] == "validation"}
    assert second.best_score == max(accuracies.values())
    assert second.best_step == max(accuracies, key=accuracies.get)


def test_state_keys_differ_between_configurations():
    a = EvalKitCallback(metrics={"accept_head": {"name": "tolerance_accuracy"}})
    b = EvalKitCallback(metrics={"token": {"name": "token_accuracy"}})
    c = EvalKitCallback(metrics={"accept_head": {"name": "tolerance_accuracy"}}, prefix="test")
    assert len({a.state_key, b.state_key, c.state_key}) == 3
