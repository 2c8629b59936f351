"""The reward experiments end to end through the installed console scripts."""

from __future__ import annotations

import json

import pytest
from openpyxl import load_workbook

from tests.conftest import error_line, read_jsonl, run_cli
from tests.reward.conftest import assert_judge_run


def test_reward_experiment_offline(tmp_path):
    proc = run_cli(["+experiment=reward", f"hydra.run.dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    pw = metrics["pairwise"]
    assert set(pw) == {"accuracy", "ties", "total", "margin", "chosen", "rejected", "by_subset"}
    assert pw["total"] == 24 and 0.5 < pw["accuracy"] < 1.0 and set(pw["by_subset"]) == {"物流", "客服", "安全"}
    records = read_jsonl(tmp_path / "predictions.jsonl")
    assert set(records[0]["scores"]["pairwise"]) == {"chosen", "rejected", "margin", "correct"}
    wb = load_workbook(tmp_path / "report.xlsx", read_only=True)
    assert {"pairs", "subsets"} <= set(wb.sheetnames)
    pairs = list(wb["pairs"].iter_rows(values_only=True))
    margins = [r[5] for r in pairs[1:]]
    assert margins == sorted(margins) and pairs[1][8]  # worst first, with the texts


def test_dpo_reward_experiment_offline(tmp_path):
    proc = run_cli(["+experiment=dpo_reward", "head.beta=0.5", f"hydra.run.dir={tmp_path}"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["pairwise"]["total"] == 24


def test_identical_sides_are_one_error_line(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"question": "q", "response_chosen": "same", "response_rejected": "same"}) + "\n", encoding="utf-8")
    proc = run_cli(["+experiment=reward", f"data.path={data}", f"hydra.run.dir={tmp_path / 'run'}"])
    line = error_line(proc)
    assert f"{data}:1" in line and "identical" in line


def test_llamafactory_predictions_replay_warns_about_rounding(tmp_path):
    saved = tmp_path / "generated_predictions.jsonl"
    rows = [{"prompt": "x", "chosen": round(0.1 * i, 2), "rejected": 0.5} for i in range(24)]
    saved.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    proc = run_cli(["+experiment=reward", "backend=replay", f"backend.path={saved}", f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 0, proc.stderr
    assert "2 decimals" in proc.stdout + proc.stderr + (tmp_path / "run" / "run.log").read_text()
    pw = json.loads((tmp_path / "run" / "metrics.json").read_text())["pairwise"]
    assert pw["ties"] == 1 and pw["accuracy"] == sum(r["chosen"] > 0.5 for r in rows) / 24


@pytest.mark.slow
def test_four_reward_shards_merge_to_the_unsharded_run(tmp_path):
    args = ["+experiment=reward", "backend.batch_size=1"]
    # One BLAS thread: with several, MKL may pick how many per call by the machine's load, and
    # a differently split sum rounds differently (seen once in 5th digits under a full suite).
    one_thread = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    full = tmp_path / "full"
    assert run_cli([*args, f"hydra.run.dir={full}"], env=one_thread).returncode == 0
    shards = []
    for k in range(4):
        d = tmp_path / f"s{k}"
        proc = run_cli([*args, "data.num_shards=4", f"data.shard_index={k}", f"hydra.run.dir={d}"], env=one_thread)
        assert proc.returncode == 0, proc.stderr
        shards.append(str(d))
    proc = run_cli([*shards, "--out", str(tmp_path / "merged")], prog="evalkit-merge")
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((tmp_path / "merged" / "metrics.json").read_text())
    single = json.loads((full / "metrics.json").read_text())
    assert merged["pairwise"] == single["pairwise"] and merged["calibration"] == single["calibration"]



def test_judge_head_on_the_hf_backend_through_the_cli(tmp_path):
    """``head=judge`` needs only a backend's ``generate``: the pipeline runs it over backend=hf too."""
    assert_judge_run(tmp_path, "backend=hf")
