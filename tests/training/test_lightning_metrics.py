"""EvalKitCallback's metrics over validation outputs, in real Lightning Trainers on CPU."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import lightning.pytorch as L
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from evalkit.errors import ConfigError, PluginError
from evalkit_lightning import EvalKitCallback
from evalkit_lightning.routes import build_routes

from ._modules import TinyChatModule, loader, synthetic_rows
from ._reference import sigmoid, tolerance_reference
from .conftest import trainer_kwargs

ACCEPT = {"accept_head": {"name": "tolerance_accuracy", "tolerance": 0.1}}


def _reference_from_outputs(module: TinyChatModule, tolerance: float = 0.1) -> dict[str, float]:
    preds, labels = [], []
    for logits, target in module.val_outputs:
        for b in range(logits.shape[0]):
            preds.append(sigmoid(logits[b].numpy()))
            labels.append(target[b].numpy())
    return tolerance_reference(preds, labels, tolerance=tolerance)


def test_logged_values_equal_an_independent_computation(tiny_lm_dir, tmp_path):
    torch.manual_seed(0)
    module = TinyChatModule(tiny_lm_dir)
    callback = EvalKitCallback(metrics=ACCEPT, transform="sigmoid", verbose=False)
    logger = CSVLogger(str(tmp_path), name="csv")
    trainer = L.Trainer(
        **trainer_kwargs(tmp_path, callbacks=[callback], max_epochs=2, logger=logger, num_sanity_val_steps=2, limit_train_batches=3)
    )
    trainer.fit(module, loader(synthetic_rows(12), shuffle=True), loader(synthetic_rows(10, seed=1), batch_size=3))

    reference = _reference_from_outputs(module)  # the last validation epoch's outputs
    for field, value in reference.items():
        assert float(trainer.callback_metrics[f"val/accept_head/{field}"]) == pytest.approx(value, rel=1e-6, abs=1e-7)
    # every validation epoch reached the logger under val/<metric>/<field>, none from sanity checking
    with open(logger.log_dir + "/metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("val/accept_head/accuracy")]
    assert len(rows) == 2  # one row per validation epoch; the sanity check logged nothing
    assert float(rows[-1]["val/accept_head/accuracy"]) == pytest.approx(reference["accuracy"], rel=1e-6)
    assert [h["step"] for h in callback.history] == [3, 6]
    assert callback.last_validation_step == 6


def test_validate_alone_and_target_from_the_batch(tiny_lm_dir, tmp_path):
    """trainer.validate() works too; a step returning bare logits takes labels from the batch."""

    class LogitsOnly(TinyChatModule):
        def validation_step(self, batch, batch_idx):
            out = super().validation_step(batch, batch_idx)
            return out["preds"]

    module = LogitsOnly(tiny_lm_dir)
    callback = EvalKitCallback(metrics={"score": {"name": "tolerance_accuracy", "tolerance": 0.2, "target_key": "labels", "transform": "sigmoid"}}, verbose=False)
    trainer = L.Trainer(**trainer_kwargs(tmp_path, callbacks=[callback]))
    (logged,) = trainer.validate(module, loader(synthetic_rows(7, seed=3), batch_size=3), verbose=False)
    reference = _reference_from_outputs(module, tolerance=0.2)
    assert logged["val/score/accuracy"] == pytest.approx(reference["accuracy"], rel=1e-6)
    assert logged["val/score/rmse"] == pytest.approx(reference["rmse"], rel=1e-6)


def test_routes_per_metric_and_transforms():
    logits = torch.tensor([[[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]]])  # [1, 3, V=3]
    scores = torch.tensor([[0.0, 1.0, -2.0]])
    labels_tok = torch.tensor([[-100, 0, 2]])
    labels_score = torch.tensor([[-100.0, 0.75, 0.12]])
    routes = build_routes(
        {
            "tok": {"name": "token_accuracy", "preds_key": "lm_logits", "target_key": "lm_labels", "transform": "argmax"},
            "score": {"name": "tolerance_accuracy", "tolerance": 0.05},
        },
        preds_key="scores",
        target_key="labels",
        transform="sigmoid",
    )
    outputs = {"lm_logits": logits, "lm_labels": labels_tok, "scores": scores}
    for route in routes.values():
        route.update(outputs, {"labels": labels_score})
    # argmax = [1, 0, 2]; shifted: pred[0]=1 vs label[1]=0 (wrong), pred[1]=0 vs label[2]=2 (wrong)
    assert routes["tok"].metric.compute()["accuracy"] == 0.0
    s = sigmoid(np.array([1.0, -2.0]))  # 0.731, 0.119 against 0.75, 0.12
    expected = np.mean([abs(s[0] - 0.75) / 0.75 <= 0.05, abs(s[1] - 0.12) / 0.12 <= 0.05])
    assert routes["score"].metric.compute()["accuracy"] == pytest.approx(expected)


def test_unknown_metric_lists_the_available_names():
    with pytest.raises(PluginError) as err:
        EvalKitCallback(metrics={"accept_head": {"name": "tolerance_acc"}})
    assert "tolerance_accuracy" in str(err.value) and "tool_f1" in str(err.value)
    assert "metrics.accept_head.name" in str(err.value)


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="available: none, sigmoid, argmax, softmax"):
        EvalKitCallback(metrics=ACCEPT, transform="sigmod")
    with pytest.raises(MisconfigurationException, match="needs `metrics` and/or `generation_eval`"):
        EvalKitCallback()
    with pytest.raises(MisconfigurationException, match="`mode` can be max, min"):
        EvalKitCallback(metrics=ACCEPT, mode="best")


def test_wrong_preds_key_lists_the_step_outputs(tiny_lm_dir, tmp_path):
    module = TinyChatModule(tiny_lm_dir)
    callback = EvalKitCallback(metrics=ACCEPT, preds_key="logits", verbose=False)
    trainer = L.Trainer(**trainer_kwargs(tmp_path, callbacks=[callback]))
    with pytest.raises(ConfigError) as err:
        trainer.validate(module, loader(synthetic_rows(2)), verbose=False)
    assert "no 'logits'; available: preds, target" in str(err.value)
    assert "metrics.accept_head.preds_key" in str(err.value)


def test_monitor_tracks_the_best_value_and_rejects_unknown_names(tiny_lm_dir, tmp_path):
    module = TinyChatModule(tiny_lm_dir)
    callback = EvalKitCallback(metrics=ACCEPT, transform="sigmoid", monitor="val/accept_head/mae", mode="min", verbose=False)
    trainer = L.Trainer(**trainer_kwargs(tmp_path, callbacks=[callback], max_epochs=3, limit_train_batches=2))
    trainer.fit(module, loader(synthetic_rows(8), shuffle=True), loader(synthetic_rows(4, seed=1)))
    maes = [h["metrics"]["val/accept_head/mae"] for h in callback.history]
    assert len(maes) == 3 and len(set(maes)) > 1  # three epochs that moved: "best" means something
    assert callback.best_score == pytest.approx(min(maes))
    assert callback.best_step == callback.history[int(np.argmin(maes))]["step"]

    wrong = EvalKitCallback(metrics=ACCEPT, transform="sigmoid", monitor="val/accuracy", verbose=False)
    trainer = L.Trainer(**trainer_kwargs(tmp_path, callbacks=[wrong]))
    with pytest.raises(MisconfigurationException) as err:
        trainer.validate(module, loader(synthetic_rows(2)), verbose=False)
    assert "`val/accuracy`" in str(err.value) and "val/accept_head/accuracy" in str(err.value)
    assert wrong.best_score is None and wrong.best_step is None  # the misconfigured one tracked nothing
