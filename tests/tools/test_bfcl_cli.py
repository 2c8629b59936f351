"""``+experiment=bfcl`` through the installed console script: replayed prompt-mode outputs scored
with BFCL's verdicts per record, and a category sweep ending with BFCL's overview aggregates."""

from __future__ import annotations

import json

import pytest

from tests.conftest import read_jsonl, run_cli

from .bfcl_cases import load_rows, reference_verdict


def _python_call(answer: dict) -> str:
    name, options = next(iter(answer.items()))
    args = ", ".join(f"{k}={next(o for o in v if o != '')!r}" for k, v in options.items() if any(o != "" for o in v))
    return f"{name}({args})"


def _outputs(data_dir, categories, limit):
    lines, expected = [], {}
    for category in categories:
        for i, row in enumerate(load_rows(data_dir, category)[:limit]):
            text = "[" + ", ".join(_python_call(a) for a in row["ground_truth"]) + "]" if i % 3 else "I need more details."
            lines.append({"id": row["id"], "output": text})
            expected[row["id"]] = (category, row)
    return lines, expected


def test_prompt_mode_replay_scores_every_record_like_bfcl(tmp_path, bfcl_reference):
    from evalkit_tools.pythonic import PythonCallError, parse_python_calls

    lines, expected = _outputs(bfcl_reference.data_dir, ["parallel"], 12)
    saved = tmp_path / "outputs.jsonl"
    saved.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    run_dir = tmp_path / "run"
    proc = run_cli(
        ["+experiment=bfcl", "tools.mode=prompt", "backend=replay", f"backend.path={saved}", "data.category=parallel", "data.limit=12",
         f"data.bfcl_dir={bfcl_reference.data_dir}", f"hydra.run.dir={run_dir}", "run.progress=false"]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_jsonl(run_dir / "predictions.jsonl")
    assert len(records) == 12
    for record in records:
        category, row = expected[record["id"]]
        text = next(line["output"] for line in lines if line["id"] == record["id"])
        try:
            decoded = parse_python_calls(text)
        except PythonCallError:
            decoded = None
        valid, error = reference_verdict(bfcl_reference, category, row["function"], row["ground_truth"], decoded, fc=False)
        assert record["scores"]["bfcl"] == {"valid": valid, "error_type": error}
        assert "Python 3 syntax" in record["messages"][0]["content"]  # the functions are listed in the system prompt
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["bfcl"]["total"] == 12 and metrics["bfcl"]["correct"] == 8
    score_file = (run_dir / "bfcl_score.json").read_text().splitlines()
    assert json.loads(score_file[0]) == {"accuracy": 8 / 12, "correct_count": 8, "total_count": 12} and len(score_file) == 5


def test_category_sweep_ends_with_bfcl_overview(tmp_path, bfcl_reference):
    categories = ["simple_python", "multiple", "live_simple"]
    lines, _ = _outputs(bfcl_reference.data_dir, categories, 6)
    saved = tmp_path / "outputs.jsonl"
    saved.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    proc = run_cli(
        ["-m", "+experiment=bfcl", "tools.mode=prompt", "backend=replay", f"backend.path={saved}", f"data.category={','.join(categories)}",
         "data.limit=6", f"data.bfcl_dir={bfcl_reference.data_dir}", f"hydra.sweep.dir={tmp_path / 'sweep'}", "run.progress=false"],
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    overview = summary["aggregates"]["bfcl"]
    assert overview["non_live"]["simple_python"] == overview["non_live"]["multiple"] == 4 / 6
    assert overview["non_live"]["overall"] == (4 / 6 + 4 / 6 + 0 + 0) / 4 and not overview["non_live"]["complete"]
    assert overview["live"]["overall"] == 4 / (6 + 1053 + 16 + 24)
