"""The peers' own scoring on the same tiny models and pairs (slow: reference packages are
installed outside the project venv on first use, see refenv.py):

* TRL's ``RewardTrainer.evaluate`` accuracy (one eval batch, so its batch mean is exact);
* LLaMA-Factory's ``ComputeAccuracy`` on the saved scores;
* RewardBench's own CLI in its own venv (transformers 4.51): same accuracy and per-subset
  results, and its section weighting (``calculate_scores_per_section``) equals ours.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest

from evalkit_reward import functional as F
from evalkit_reward.heads import RewardHead

from . import refenv
from .test_heads import random_rows, run_head

pytestmark = pytest.mark.slow
RB_SUBSETS = ["alpacaeval-easy", "mt-bench-hard", "donotanswer", "math-prm", "hep-python"]


def _with_path(path):
    if str(path) not in sys.path:
        sys.path.append(str(path))  # appended: the project's torch/transformers win


def test_llamafactory_compute_accuracy_on_saved_scores():
    root = refenv.llamafactory_dir()
    _with_path(root)
    for name, sub in (("llamafactory", ""), ("llamafactory.extras", "/extras"), ("llamafactory.train", "/train"), ("llamafactory.train.rm", "/train/rm")):
        if name not in sys.modules:  # skip the package __init__s (they import the whole trainer stack)
            module = types.ModuleType(name)
            module.__path__ = [f"{root}/llamafactory{sub}"]
            sys.modules[name] = module
    from llamafactory.train.rm.metric import ComputeAccuracy
    from transformers import EvalPrediction

    rng = np.random.default_rng(4)
    chosen = np.round(rng.normal(size=301), 2)
    rejected = np.where(rng.random(301) < 0.1, chosen, np.round(rng.normal(size=301), 2))
    theirs = ComputeAccuracy()(EvalPrediction(predictions=(chosen, rejected), label_ids=None))
    ours = F.pairwise_from_scores(chosen, rejected)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], abs=1e-12) and ours["ties"] > 0
    from evalkit_reward.training import RewardComputeMetrics

    assert RewardComputeMetrics()(EvalPrediction(predictions=(chosen, rejected), label_ids=None))["accuracy"] == pytest.approx(theirs["accuracy"])


def test_trl_reward_trainer_accuracy(seq_rm_dir, tmp_path):
    _with_path(refenv.trl_dir())
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from evalkit_reward.training import RewardComputeMetrics

    from trl.data_utils import _tokenize

    rows = random_rows(12, seed=5)
    tok = AutoTokenizer.from_pretrained(seq_rm_dir)
    # TRL's own tokenization (prompt + side through apply_chat_template), done here rather than in
    # its dataset.map: datasets' fingerprint hashing of tables fails with this dill/pyarrow pair.
    from datasets.table import InMemoryTable

    columns = {"chosen_ids": [_tokenize(tok, r["prompt"] + r["responses"][0])["input_ids"] for r in rows],
               "rejected_ids": [_tokenize(tok, r["prompt"] + r["responses"][1])["input_ids"] for r in rows]}
    data = Dataset(InMemoryTable.from_pydict(columns), fingerprint="evalkit-reward-ref")  # a given fingerprint: no table hashing
    model = AutoModelForSequenceClassification.from_pretrained(seq_rm_dir)
    args = RewardConfig(output_dir=str(tmp_path), per_device_eval_batch_size=len(rows), report_to=[], use_cpu=True, dataset_num_proc=None, max_length=None)
    trainer = RewardTrainer(model=model, args=args, processing_class=tok, train_dataset=data, eval_dataset=data, compute_metrics=RewardComputeMetrics())
    result = trainer.evaluate()
    ours = F.pairwise_accuracy(run_head(seq_rm_dir, RewardHead(), rows, batch_size=5), [r["label"] for r in rows])
    assert result["eval_accuracy"] == pytest.approx(ours["accuracy"])  # TRL's own logged batch accuracy
    assert result["eval_margin.mean"] == pytest.approx(ours["margin"]["mean"], abs=1e-4)  # our compute_metrics inside TRL


RB_CLI = r"""
# RewardBench's own CLI on CPU: its pipeline moves inputs with .to("cuda"); only that device is mapped.
import sys
from transformers import BatchEncoding
_to = BatchEncoding.to
BatchEncoding.to = lambda self, device, **kw: _to(self, "cpu" if device == "cuda" else device, **kw)
from rewardbench.rewardbench import main
sys.argv = ["rewardbench", *sys.argv[1:]]
main()
"""

RB_DRIVER = r"""
import json, sys
from rewardbench.constants import EXAMPLE_COUNTS, SUBSET_MAPPING
from rewardbench.utils import calculate_scores_per_section
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["subset"], []).append(r["results"])
acc = {k: sum(v) / len(v) for k, v in by.items()}
print(json.dumps({"subsets": acc, "sections": calculate_scores_per_section(EXAMPLE_COUNTS, SUBSET_MAPPING, acc),
                  "chosen": [r["scores_chosen"] for r in rows], "rejected": [r["scores_rejected"] for r in rows]}))
"""


def test_rewardbench_scores_the_same_classifier(seq_rm_dir, tmp_path):
    python = refenv.rewardbench_python()
    rng = np.random.default_rng(6)
    rows = random_rows(16, seed=6)
    data = tmp_path / "rb.json"
    # RewardBench's --load_json reads chosen/rejected as whole conversations (prompt = all but the
    # last turn); single-turn user questions keep its alternation assumption.
    for r in rows:
        r["prompt"] = [r["prompt"][-1]]
    plain = [{"id": i, "chosen": r["prompt"] + r["responses"][0], "rejected": r["prompt"] + r["responses"][1],
              "subset": RB_SUBSETS[int(rng.integers(len(RB_SUBSETS)))]} for i, r in enumerate(rows)]
    data.write_text(json.dumps(plain, ensure_ascii=False), encoding="utf-8")
    model_dir = refenv.rewardbench_model_copy(seq_rm_dir, tmp_path / "rm")
    out = tmp_path / "out"
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    cli = tmp_path / "rb_cli.py"
    cli.write_text(RB_CLI)
    proc = subprocess.run([str(python), str(cli), f"--model={model_dir}", f"--dataset={data}", "--load_json", "--not_quantized",
                           "--torch_dtype=float32", "--batch_size=4", f"--output_dir={out}/"], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    saved = tmp_path / "rm_outputs.jsonl"  # os.path.join(output_dir, f"{model}_outputs.jsonl") with an absolute model path
    driver = tmp_path / "driver.py"
    driver.write_text(RB_DRIVER)
    theirs = json.loads(subprocess.run([str(python), str(driver), str(saved)], capture_output=True, text=True, check=True, timeout=300).stdout)
    fmt_rows = [{"kind": "pair", "subset": p["subset"]} for p in plain]
    for r, label in zip(rows, fmt_rows):
        r["label"] = label
    preds = run_head(seq_rm_dir, RewardHead(), rows, batch_size=4)
    assert [p["chosen"] for p in preds] == pytest.approx(theirs["chosen"], abs=1e-4)
    assert [p["rejected"] for p in preds] == pytest.approx(theirs["rejected"], abs=1e-4)
    ours = F.rewardbench_sections(preds, fmt_rows)
    assert {k: v["accuracy"] for k, v in ours["by_subset"].items()} == pytest.approx(theirs["subsets"])
    present = {k: v for k, v in theirs["sections"].items() if k in ours["sections"]}
    assert ours["sections"] == pytest.approx(present)


RB_TIES_DRIVER = r"""
import json, sys
from rewardbench.utils import process_single_model
rows = json.load(open(sys.argv[1]))
print(json.dumps(process_single_model(rows)[1]))
"""


def test_rewardbench2_ties_score_equals_rewardbench(tmp_path):
    """RewardBench's own ``process_single_model`` (the Ties subset's scoring) on random scores:
    ref/tied rows per prompt (some prompts with only one of them), several chosen responses."""
    from evalkit_reward.metrics import BestOfN

    python = refenv.rewardbench_python()
    rng = np.random.default_rng(9)
    preds, labels, theirs_rows = [], [], []
    for prompt in range(80):
        for group in ("ref", "tied"):
            if rng.random() < 0.15:
                continue
            k = 1 if group == "ref" else int(rng.integers(2, 5))
            scores = [float(rng.normal(0.7, 1.0)) for _ in range(k)] + [float(rng.normal()) for _ in range(int(rng.integers(1, 4)))]
            preds.append({"scores": scores})
            labels.append({"kind": "best_of_n", "num_correct": k, "subset": "Ties", "ties": {"group": group, "prompt": prompt}})
            theirs_rows.append({"id": f"{group}:{prompt}", "scores": scores, "num_correct": k})
    order = rng.permutation(len(preds))  # arrival order does not matter
    data = tmp_path / "ties.json"
    data.write_text(json.dumps(theirs_rows))
    driver = tmp_path / "ties_driver.py"
    driver.write_text(RB_TIES_DRIVER)
    proc = subprocess.run([str(python), str(driver), str(data)], capture_output=True, text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    metric = BestOfN()
    for s in range(0, len(order), 17):
        part = order[s : s + 17]
        metric.update([preds[i] for i in part], [labels[i] for i in part])
    ours = metric.compute()["by_subset"]["Ties"]
    assert ours["accuracy"] == pytest.approx(theirs, abs=1e-12) and 0.0 < theirs < 1.0
    assert ours["prompts"] > 50
