"""AcceptHead end to end: `evalkit +experiment=accepthead` against an independent numpy reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import error_line, read_jsonl
from tests.hf._cli import BackgroundRuns
from tests.hf import _reference as ref


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _make_rows(model_dir: Path, n: int = 11, seed: int = 7) -> tuple[list[dict], list[np.ndarray]]:
    """Rows of different lengths; labels near the model's own scores at a few positions,
    with small labels (< 0.01), nulls and one row with no scored position at all."""
    rng = np.random.default_rng(seed)
    ids = [rng.integers(5, 500, size=int(rng.integers(4, 40))).tolist() for _ in range(n)]
    scores = ref.accept_head_scores(model_dir, ids)
    rows = []
    for i, (row_ids, s) in enumerate(zip(ids, scores)):
        labels: list = [-100] * len(row_ids)
        if i != 3:  # row 3: nothing scored (skipped by the per-sample average)
            for pos in rng.choice(len(row_ids), size=min(len(row_ids), 5), replace=False):
                kind = rng.random()
                if kind < 0.2:
                    value = float(rng.uniform(0, 0.009))
                elif kind < 0.6:
                    value = float(s[pos] * (1 + rng.normal(0, 0.08)))
                else:
                    value = float(s[pos] + rng.normal(0, 0.2))
                labels[int(pos)] = min(1.0, max(0.0, value))
        if i == 5:
            labels[0] = None  # null = not scored, like -100
        rows.append({"id": f"r{i}", "input_ids": row_ids, "labels": labels})
    return rows, scores


@pytest.fixture(scope="module")
def runs(tiny_accept_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("accept_runs")
    rows, scores = _make_rows(tiny_accept_dir)
    data = _write_jsonl(tmp / "val.jsonl", rows)
    bad = _write_jsonl(
        tmp / "bad.jsonl",
        [
            {"id": "ok", "input_ids": [5, 6, 7], "labels": [-100, 0.5, 0.2]},
            {"id": "short", "input_ids": [5, 6, 7, 8], "labels": [-100, 0.5, 0.2]},
        ],
    )
    demo_cwd = tmp / "elsewhere"
    demo_cwd.mkdir()
    r = BackgroundRuns(tmp / "logs")
    r.start(
        "numbers",
        [
            "+experiment=accepthead",
            f"model.path={tiny_accept_dir}",
            f"data.path={data}",
            "backend.batch_size=4",
            "backend.device=cpu",
            "metrics.accept_head.tolerance=0.15",
            "+metrics.accept_token={name:tolerance_accuracy,tolerance:0.05,average:token}",
            f"hydra.run.dir={tmp / 'run'}",
        ],
        cwd=tmp,
    )
    r.start("demo", ["+experiment=accepthead", f"hydra.run.dir={tmp / 'demo_run'}"], cwd=demo_cwd)
    r.start("bad_row", ["+experiment=accepthead", f"model.path={tiny_accept_dir}", f"data.path={bad}", f"hydra.run.dir={tmp / 'bad_run'}"], cwd=tmp)
    r.start("no_model", ["+experiment=accepthead", f"model.path={tmp / 'no-such-checkpoint'}", f"hydra.run.dir={tmp / 'no_model_run'}"], cwd=tmp)
    r.rows, r.scores, r.tmp = rows, scores, tmp  # type: ignore[attr-defined]
    yield r
    r.close()


@pytest.fixture(scope="module")
def accept_run(runs):
    proc = runs.get("numbers")
    assert proc.returncode == 0, proc.stderr
    return runs.rows, runs.scores, runs.tmp / "run"


def test_metrics_equal_numpy_reference(accept_run):
    rows, scores, run_dir = accept_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    labels = [r["labels"] for r in rows]
    expected = ref.tolerance_metrics(scores, labels, tolerance=0.15)
    expected_token = ref.tolerance_metrics(scores, labels, tolerance=0.05, average="token")
    assert set(metrics["accept_head"]) == {"accuracy", "mae", "mse", "rmse"}
    assert metrics["accept_head"] == pytest.approx(expected, abs=1e-6)
    assert metrics["accept_token"] == pytest.approx(expected_token, abs=1e-6)
    assert 0 < expected["accuracy"] < 1  # the data exercises both outcomes
    assert metrics["num_samples"] == len(rows) and metrics["num_failed"] == 0


def test_predictions_are_per_token_scores_in_dataset_order(accept_run):
    rows, scores, run_dir = accept_run
    records = read_jsonl(run_dir / "predictions.jsonl")
    assert [r["id"] for r in records] == [r["id"] for r in rows]
    for record, row, score in zip(records, rows, scores):
        assert len(record["prediction"]) == len(row["input_ids"])
        np.testing.assert_allclose(record["prediction"], score, atol=2e-6)
        assert record["label"] == row["labels"]


def test_alias_experiment_composes_the_same():
    from tests.core.test_experiments_compose import compose_with
    from omegaconf import OmegaConf

    a = OmegaConf.to_container(compose_with(["+experiment=accepthead"]), resolve=True)
    b = OmegaConf.to_container(compose_with(["+experiment=acceptead"]), resolve=True)
    assert a == b
    assert a["backend"]["name"] == "hf" and a["head"]["name"] == "accept_head"
    assert a["metrics"]["accept_head"]["name"] == "tolerance_accuracy" and a["metrics"]["accept_head"]["tolerance"] == 0.1
    assert a["data"]["label_key"] == "labels"
    assert Path(a["model"]["path"], "model.safetensors").is_file() and Path(a["data"]["path"]).is_file()


def test_bad_row_is_one_line_error_naming_the_row(runs):
    line = error_line(runs.get("bad_row"))
    assert "bad.jsonl:2 (id=short)" in line and "'labels' has 3 entries but 'input_ids' has 4" in line


def test_missing_model_path_is_one_line_error(runs):
    proc = runs.get("no_model")
    line = error_line(proc)
    assert "model directory not found" in line and str(runs.tmp / "no-such-checkpoint") in line
    assert proc.returncode == 3


def test_shipped_demo_runs_from_any_directory(runs):
    proc = runs.get("demo")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((runs.tmp / "demo_run" / "metrics.json").read_text())
    assert metrics["num_samples"] == 64 and metrics["num_failed"] == 0
    result = metrics["accept_head"]
    assert set(result) == {"accuracy", "mae", "mse", "rmse"}
    assert 0 < result["accuracy"] < 1 and result["rmse"] >= result["mae"] > 0
