"""Reward figures inside real training loops, against independent per-pair references:

* ``ImplicitRewardCallback`` (callback ``reward_dpo``) in a real ``transformers.Trainer`` that
  fine-tunes a tiny policy: at every evaluation step its figures equal a plain per-pair
  ``log π − log π_ref`` computed on a snapshot of the weights of that very step, over the whole
  held-out set (7 pairs scored in batches of 3: a mean of per-batch means would differ);
* ``EvalKitCallback`` (evalkit_lightning) with metric ``pairwise`` resolved through the registry
  in a tiny Lightning reward model trained with the Bradley–Terry loss: the logged
  ``val/pairwise/*`` equal a per-pair forward pass of the trained model.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch

from evalkit.registry import Registry
from evalkit.plugins import build_plugin_set

from .test_heads import _logp, random_rows, side_ids

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
BETA = 0.3


def test_reward_dpo_callback_is_registered():
    from evalkit_reward.training import ImplicitRewardCallback

    assert Registry(build_plugin_set()).get("callback", "reward_dpo").factory is ImplicitRewardCallback


def _reference_figures(policy, reference, tok, rows) -> dict[str, float]:
    """Per pair, per side, batch of one: beta * (log π − log π_ref) over the response tokens."""
    chosen, rejected = [], []
    for row in rows:
        pair = []
        for response in row["responses"]:
            ids, start = side_ids(tok, row, response)
            pair.append(BETA * (_logp(policy, ids, start, False) - _logp(reference, ids, start, False)))
        chosen.append(pair[0])
        rejected.append(pair[1])
    c, r = np.array(chosen), np.array(rejected)
    return {"accuracy": float(np.mean(c > r)), "total": len(rows), "margin.mean": float(np.mean(c - r)), "chosen.max": float(c.max())}


class _LMRows(torch.utils.data.Dataset):
    def __init__(self, n: int, length: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(20, 500, (n, length), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def test_implicit_reward_callback_in_a_real_trainer(policy_ref_dirs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from evalkit_reward.training import ImplicitRewardCallback

    policy_dir, ref_dir = policy_ref_dirs
    tok = AutoTokenizer.from_pretrained(policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(ref_dir, dtype=torch.float32).eval()
    rows = random_rows(7, seed=21)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    class Snapshot(TrainerCallback):  # runs before the reward callback: the weights it evaluates
        def on_step_end(self, args, state, control, model=None, **kwargs):
            snapshots[state.global_step] = copy.deepcopy(model.state_dict())

    callback = ImplicitRewardCallback(rows, tok, reference_model=reference, every_n_steps=2, beta=BETA, batch_size=3)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=4, learning_rate=2e-2, per_device_train_batch_size=4, report_to="none",
                             save_strategy="no", use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, seed=0, logging_steps=100)
    trainer = Trainer(model=policy, args=args, train_dataset=_LMRows(16), callbacks=[Snapshot(), callback])
    trainer.train()

    assert [h["step"] for h in callback.history] == [2, 4]  # every 2 steps; the end of training (step 4) is not repeated
    logged = [e for e in trainer.state.log_history if "reward_eval/accuracy" in e]
    assert [e["step"] for e in logged] == [2, 4]
    probe = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32).eval()
    figures = []
    for entry, hist in zip(logged, callback.history):
        probe.load_state_dict(snapshots[entry["step"]])
        expected = _reference_figures(probe, reference, tok, rows)
        figures.append(expected)
        assert entry["reward_eval/accuracy"] == expected["accuracy"]  # exact: a count over the whole set
        assert entry["reward_eval/total"] == 7 and hist["pairwise"]["total"] == 7
        assert entry["reward_eval/margin.mean"] == pytest.approx(expected["margin.mean"], abs=2e-4)
        assert entry["reward_eval/chosen.max"] == pytest.approx(expected["chosen.max"], abs=2e-4)
    assert figures[0]["margin.mean"] != pytest.approx(figures[1]["margin.mean"], abs=1e-3)  # training moved the policy
    assert policy.training  # the callback put the model back in training mode


def _pair_batch(tok, rows):
    """Both sides of each pair, right-padded, plus the canonical labels (a list, kept as is)."""
    def pad(seqs):
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s)
            mask[b, : len(s)] = 1
        return ids, mask

    chosen = [side_ids(tok, r, r["responses"][0])[0] for r in rows]
    rejected = [side_ids(tok, r, r["responses"][1])[0] for r in rows]
    (ci, cm), (ri, rm) = pad(chosen), pad(rejected)
    return {"chosen_ids": ci, "chosen_mask": cm, "rejected_ids": ri, "rejected_mask": rm, "target": [r["label"] for r in rows]}


def test_evalkit_callback_pairwise_in_a_lightning_reward_model(seq_rm_dir, tmp_path):
    import lightning.pytorch as L
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from evalkit_lightning import EvalKitCallback

    tok = AutoTokenizer.from_pretrained(seq_rm_dir)
    subsets = ["math", "chat"]
    val_rows = random_rows(7, seed=22)
    for i, r in enumerate(val_rows):
        r["label"] = {**r["label"], "subset": subsets[i % 2]}
    train_rows = random_rows(8, seed=23)

    class RewardModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = AutoModelForSequenceClassification.from_pretrained(seq_rm_dir, dtype=torch.float32).train()

        def scores(self, batch):
            c = self.model(input_ids=batch["chosen_ids"], attention_mask=batch["chosen_mask"]).logits[:, 0]
            r = self.model(input_ids=batch["rejected_ids"], attention_mask=batch["rejected_mask"]).logits[:, 0]
            return c, r

        def training_step(self, batch, batch_idx):
            c, r = self.scores(batch)
            return -torch.nn.functional.logsigmoid(c - r).mean()  # Bradley-Terry, as RM trainers

        def validation_step(self, batch, batch_idx):
            c, r = self.scores(batch)
            return {"preds": torch.stack([c, r], dim=1)}  # labels come from the batch's "target"

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=5e-3)

    def loader(rows, size):
        chunks = [rows[s : s + size] for s in range(0, len(rows), size)]
        return torch.utils.data.DataLoader(chunks, batch_size=None, collate_fn=lambda chunk: _pair_batch(tok, chunk))

    torch.manual_seed(0)
    module = RewardModule()
    callback = EvalKitCallback(metrics={"pairwise": {"name": "pairwise"}}, verbose=False)
    trainer = L.Trainer(accelerator="cpu", devices=1, default_root_dir=str(tmp_path), enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, logger=False, num_sanity_val_steps=0, max_epochs=1, callbacks=[callback])
    trainer.fit(module, loader(train_rows, 4), loader(val_rows, 3))  # 3 + 3 + 1 validation pairs

    module.model.eval()
    chosen, rejected = [], []
    for row in val_rows:  # the trained model, one side at a time, no padding
        with torch.no_grad():
            chosen.append(module.model(input_ids=torch.tensor([side_ids(tok, row, row["responses"][0])[0]])).logits[0, 0].item())
            rejected.append(module.model(input_ids=torch.tensor([side_ids(tok, row, row["responses"][1])[0]])).logits[0, 0].item())
    c, r = np.array(chosen), np.array(rejected)
    got = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/pairwise/")}
    assert got["val/pairwise/accuracy"] == pytest.approx(float(np.mean(c > r)), abs=1e-7)
    assert got["val/pairwise/total"] == 7
    assert got["val/pairwise/margin/mean"] == pytest.approx(float(np.mean(c - r)), abs=1e-4)
    assert got["val/pairwise/margin/p50"] == pytest.approx(float(np.median(c - r)), abs=1e-4)
    for k, name in enumerate(subsets):
        part = slice(k, None, 2)
        assert got[f"val/pairwise/by_subset/{name}/accuracy"] == pytest.approx(float(np.mean(c[part] > r[part])), abs=1e-7)
    assert callback.last_validation_step == trainer.global_step == 2
