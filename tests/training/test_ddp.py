"""Two gloo DDP processes on CPU give the numbers of one process.

Validation metrics: each rank sees half the validation batches (DistributedSampler); the
torchmetrics states are summed across ranks before ``compute``. Generation evaluation: each
rank generates ``rows[rank::2]``; tool F1 / exact match sync their states and rank zero writes
every rank's predictions in dataset order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ._reference import tool_f1_micro

REPO = Path(__file__).resolve().parents[2]
QUERIES = ["你好", "运费多少钱？", "hello there friend", "a", "The quick brown fox jumps.", "请帮我查询从上海到北京的货车运价", "0123456789 3.14"]


@torch.no_grad()
def _reference_outputs(model_dir: Path) -> list[str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    outs = []
    for q in QUERIES:
        text = tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        enc = tok(text, return_tensors="pt", add_special_tokens=False)
        ids = model.generate(**enc, max_new_tokens=6, do_sample=False)[0, enc["input_ids"].shape[1] :].tolist()
        ids = ids[: ids.index(tok.eos_token_id)] if tok.eos_token_id in ids else ids
        outs.append(tok.decode(ids, skip_special_tokens=True))
    return outs


def test_two_process_ddp_equals_one_process(tiny_lm_dir, tmp_path):
    from tests.training.ddp_script import as_calls, run

    reference = _reference_outputs(tiny_lm_dir)
    labels = [as_calls(t if i % 3 else "wrong") for i, t in enumerate(reference)]
    eval_path = tmp_path / "eval.jsonl"
    eval_path.write_text("".join(json.dumps({"id": f"r{i}", "query": q, "label": l}, ensure_ascii=False) + "\n" for i, (q, l) in enumerate(zip(QUERIES, labels))), encoding="utf-8")

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "HF_HUB_OFFLINE": "1"}
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    ddp_dir = tmp_path / "ddp"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.training.ddp_script", str(tiny_lm_dir), str(eval_path), str(ddp_dir), "2"],
        cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # the single-process run happens meanwhile, in this process
    single = run(str(tiny_lm_dir), str(eval_path), str(tmp_path / "single"), 1)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-4000:]
    ddp = json.loads((ddp_dir / "result.json").read_text(encoding="utf-8"))

    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert (ddp["val_rows_seen_by_rank0"], single["val_rows_seen_by_rank0"]) == (8, 16)  # really sharded
    assert ddp["generated_by_rank0"] == list(range(0, len(QUERIES), 2))  # rows[rank::2]
    assert single["generated_by_rank0"] == list(range(len(QUERIES)))
    assert ddp["history"] and single["history"], "no generation evaluation ran"
    assert set(ddp["callback_metrics"]) == set(single["callback_metrics"])
    for name, value in single["callback_metrics"].items():
        assert ddp["callback_metrics"][name] == pytest.approx(value, rel=1e-6, abs=1e-7), name
    assert [(h["kind"], h["step"]) for h in ddp["history"]] == [(h["kind"], h["step"]) for h in single["history"]]
    for a, b in zip(ddp["history"], single["history"]):
        for name, value in b["metrics"].items():
            assert a["metrics"][name] == pytest.approx(value, rel=1e-12, abs=1e-12), name

    expected = tool_f1_micro([as_calls(t) for t in reference], labels)
    assert single["callback_metrics"]["val/tool_f1/micro/f1"] == pytest.approx(expected["f1"])
    assert single["callback_metrics"]["val/exact/all/accuracy"] == pytest.approx(sum(l == as_calls(t) for l, t in zip(labels, reference)) / len(QUERIES))
    assert ddp["padding_side_after"] == "right"

    def predictions(root: Path) -> list[dict]:
        (path,) = root.glob("evalkit/step_2/predictions.jsonl")
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    ddp_records, single_records = predictions(ddp_dir), predictions(tmp_path / "single")
    assert [r["id"] for r in ddp_records] == [f"r{i}" for i in range(len(QUERIES))]
    assert [r["output"] for r in ddp_records] == [r["output"] for r in single_records] == reference
