"""The reward and dpo heads against a plain transformers forward pass per side (unpadded,
batch of one) on randomized Chinese/English pairs: sequence classifier, value head, AcceptHead,
DPO with a reference and reference-free (sum and mean)."""

from __future__ import annotations

import random

import pytest
import torch

from evalkit.types import Request, ScoreHead
from evalkit_hf.backend import HFBackend
from evalkit_reward.heads import DPOHead, RewardHead
from evalkit_reward.label_format import PreferenceFormat

WORDS = ["运价", "货车", "上海", "北京", "冷藏车", "hello", "price", "truck", "每公里", "三元", "明天", "发货", "tool", "check"]


def random_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    fmt = PreferenceFormat()
    rows = []
    for i in range(n):
        words = lambda k: "".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
        raw = {"system": words(2) if rng.random() < 0.5 else "", "history": [[words(3), words(4)]] if rng.random() < 0.4 else [],
               "question": words(rng.randint(2, 6)), "response_chosen": words(rng.randint(1, 12)), "response_rejected": words(rng.randint(1, 12)) + "!"}
        rows.append(fmt.convert(raw, f"rand:{i}"))
    return rows


def run_head(path, head, rows, batch_size=3):
    backend = HFBackend(model={"path": str(path)}, batch_size=batch_size, device="cpu")
    out = {}
    backend.score([Request(index=i, id=i, row=r) for i, r in enumerate(rows)], head, lambda res: out.__setitem__(res.index, res))
    assert all(out[i].ok for i in range(len(rows))), [out[i].error for i in out]
    return [out[i].prediction for i in range(len(rows))]


def side_ids(tok, row, response):
    text = tok.apply_chat_template(row["prompt"] + response, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    prompt = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    n = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert ids[:n] == tok(prompt, add_special_tokens=False)["input_ids"]
    return ids, n


def test_heads_follow_the_score_head_contract():
    assert isinstance(RewardHead(), ScoreHead) and RewardHead.wants == "sequences" and DPOHead.mode == "score"


def assert_classifier_scores(path, rows, got):
    """Each side's score equals a plain ``ForSequenceClassification`` forward (batch of one)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    for row, pred in zip(rows, got, strict=True):
        for key, response in zip(("chosen", "rejected"), row["responses"]):
            ids, _ = side_ids(tok, row, response)
            with torch.no_grad():
                expected = model(input_ids=torch.tensor([ids])).logits[0, 0].item()
            assert pred[key] == pytest.approx(expected, abs=1e-4)


def test_sequence_classifier_equals_plain_forward(seq_rm_dir):
    rows = random_rows(11, seed=1)
    assert_classifier_scores(seq_rm_dir, rows, run_head(seq_rm_dir, RewardHead(), rows))


@pytest.mark.parametrize("kind", ["value_head", "accept_head"])
def test_value_and_accept_heads_equal_plain_forward(kind, value_head_dir, accept_dir):
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    path = value_head_dir if kind == "value_head" else accept_dir
    rows = random_rows(9, seed=2)
    head = RewardHead()
    got = run_head(path, head, rows, batch_size=4)
    assert head.resolved == kind
    if kind == "value_head":
        t = load_file(str(path / "value_head.safetensors"))
        w, b = t["v_head.summary.weight"][0], t["v_head.summary.bias"][0]
    else:
        t = load_file(str(path / "model.safetensors"))
        w, b = t["lm_head.weight"][0], t["lm_head.bias"][0]
    tok = AutoTokenizer.from_pretrained(path)
    base = AutoModel.from_pretrained(path).eval()
    for row, pred in zip(rows, got):
        for key, response in zip(("chosen", "rejected"), row["responses"]):
            ids, _ = side_ids(tok, row, response)
            with torch.no_grad():
                hidden = base(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
            assert pred[key] == pytest.approx(float(hidden @ w + b), abs=1e-4)


def _logp(model, ids, start, average):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, -1)
    values = [logp[t - 1, ids[t]].item() for t in range(start, len(ids))]
    return sum(values) / len(values) if average else sum(values)


@pytest.mark.parametrize("reference, average", [(True, "sum"), (False, "sum"), (True, "mean")])
def test_dpo_reward_equals_plain_log_ratio(policy_ref_dirs, reference, average):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy_dir, ref_dir = policy_ref_dirs
    rows = random_rows(7, seed=3)
    got = run_head(policy_dir, DPOHead(reference=str(ref_dir) if reference else None, beta=0.25, average=average), rows)
    tok = AutoTokenizer.from_pretrained(policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    ref = AutoModelForCausalLM.from_pretrained(ref_dir).eval()
    for row, pred in zip(rows, got):
        for key, response in zip(("chosen", "rejected"), row["responses"]):
            ids, start = side_ids(tok, row, response)
            expected = _logp(policy, ids, start, average == "mean") - (_logp(ref, ids, start, average == "mean") if reference else 0.0)
            assert pred[key] == pytest.approx(0.25 * expected, abs=2e-4)


def test_flat_scores_warn(seq_rm_dir, tmp_path, caplog):
    import shutil

    from safetensors.torch import load_file, save_file

    flat = tmp_path / "flat"
    shutil.copytree(seq_rm_dir, flat)
    tensors = load_file(str(flat / "model.safetensors"))
    tensors["score.weight"] = torch.zeros_like(tensors["score.weight"])
    save_file(tensors, str(flat / "model.safetensors"), metadata={"format": "pt"})
    with caplog.at_level("WARNING", logger="evalkit.reward"):
        run_head(flat, RewardHead(), random_rows(4, seed=4))
    assert "barely vary" in caplog.text
