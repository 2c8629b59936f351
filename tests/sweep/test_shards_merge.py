"""Shards (data.num_shards / data.shard_index) merged with evalkit-merge equal an unsharded run."""

from __future__ import annotations

import json

import pytest
from openpyxl import load_workbook

from tests.conftest import read_jsonl, run_cli

VOLATILE = {"wall_time_s", "merged_from"}


def _run(args, run_dir):
    proc = run_cli([*args, f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    return run_dir


def _workbook_values(path):
    """Every sheet's values, without the summary rows that describe the process (wall time,
    which shards were merged) rather than the samples."""
    wb = load_workbook(path, read_only=True)
    values = {name: [list(r) for r in wb[name].iter_rows(values_only=True)] for name in wb.sheetnames}
    values["summary"] = [row for row in values.get("summary", []) if row[0] not in VOLATILE and not str(row[0]).startswith("latency_s")]
    return values


@pytest.fixture(scope="module")
def toolcall_shards(sweep_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    args = ["+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={sweep_data['outputs']['b']}", "report.display_fields=[url,query]"]
    full = _run(args, root / "full")
    shards = [_run([*args, "data.num_shards=4", f"data.shard_index={k}"], root / f"shard{k}") for k in range(4)]
    return root, full, shards


def test_four_toolcall_shards_merge_to_the_unsharded_run(toolcall_shards):
    root, full, shards = toolcall_shards
    sizes = [len(read_jsonl(s / "predictions.jsonl")) for s in shards]
    assert sum(sizes) == 60 and all(n > 0 for n in sizes)
    out = root / "merged"
    proc = run_cli([*map(str, reversed(shards)), "--out", str(out)], prog="evalkit-merge")
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((out / "metrics.json").read_text())
    unsharded = json.loads((full / "metrics.json").read_text())
    assert {k: v for k, v in merged.items() if k not in VOLATILE} == {k: v for k, v in unsharded.items() if k not in VOLATILE}
    assert read_jsonl(out / "predictions.jsonl") == read_jsonl(full / "predictions.jsonl")
    assert _workbook_values(out / "report.xlsx") == _workbook_values(full / "report.xlsx")


def test_missing_and_duplicate_shards_are_named(toolcall_shards, tmp_path):
    root, _, shards = toolcall_shards
    proc = run_cli([str(shards[0]), str(shards[1]), str(shards[3]), "--out", str(tmp_path / "m")], prog="evalkit-merge")
    assert proc.returncode != 0 and "missing shard(s) 2 of 4" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli([*map(str, shards), str(shards[2]), "--out", str(tmp_path / "m")], prog="evalkit-merge")
    assert proc.returncode != 0 and "shard 2 of 4 given twice" in proc.stderr


def test_foreign_run_is_refused(toolcall_shards, tmp_path):
    root, full, shards = toolcall_shards
    proc = run_cli([*map(str, shards[:3]), str(full), "--out", str(tmp_path / "m")], prog="evalkit-merge")
    assert proc.returncode != 0 and "shard count" in proc.stderr


def _approx_tree(value):
    """Floats compared to 1e-9 relative: shard sums are added in another order than one run's."""
    if isinstance(value, dict):
        return {k: _approx_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx_tree(v) for v in value]
    if isinstance(value, float):
        return pytest.approx(value, rel=1e-9, abs=1e-12)
    return value


def test_four_accepthead_shards_merge_to_the_unsharded_run(tmp_path):
    # batch_size=1: float32 model outputs depend on how a batch is padded, and shards batch
    # different rows together; one row per forward pass makes every shard see identical scores.
    args = ["+experiment=accepthead", "backend.batch_size=1",
            "+metrics.accept_head_token.name=tolerance_accuracy", "+metrics.accept_head_token.average=token"]
    full = _run(args, tmp_path / "full")
    shards = [_run([*args, "data.num_shards=4", f"data.shard_index={k}"], tmp_path / f"shard{k}") for k in range(4)]
    out = tmp_path / "merged"
    proc = run_cli([*map(str, shards), "--out", str(out)], prog="evalkit-merge")
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((out / "metrics.json").read_text())
    unsharded = json.loads((full / "metrics.json").read_text())
    strip = lambda m: {k: v for k, v in m.items() if k not in VOLATILE | {"latency_s"}}
    assert strip(unsharded) == _approx_tree(strip(merged))
    assert set(unsharded["accept_head"]) == {"accuracy", "mae", "mse", "rmse"}
    timing = lambda rows: [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]
    assert timing(read_jsonl(out / "predictions.jsonl")) == timing(read_jsonl(full / "predictions.jsonl"))


def _altered_shard(shard, tmp_path, change):
    import shutil

    copy = tmp_path / f"altered-{shard.name}"
    shutil.copytree(shard, copy)
    change(copy)
    return copy


def _merge_error(args) -> str:
    proc = run_cli(args, prog="evalkit-merge")
    lines = [line for line in proc.stderr.splitlines() if line.startswith("evalkit-merge: error:")]
    assert proc.returncode != 0 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "what, expected",
    [
        ("dataset", "evaluated a different dataset"),
        ("metrics", "used different metric settings"),
        ("no-shard-info", "no shard information"),
    ],
)
def test_merge_refuses_mismatched_shards_in_one_line(toolcall_shards, tmp_path, what, expected):
    root, _, shards = toolcall_shards

    def change(run_dir):
        info = run_dir / "run_info.json"
        if what == "dataset":
            data = json.loads(info.read_text())
            data["dataset"]["sha256"] = "0" * 64
            info.write_text(json.dumps(data))
        elif what == "metrics":
            cfg = run_dir / ".hydra" / "config.yaml"
            cfg.write_text(cfg.read_text().replace("include_negative: false", "include_negative: true", 1))
        else:
            info.unlink()

    altered = _altered_shard(shards[3], tmp_path, change)
    line = _merge_error([*map(str, shards[:3]), str(altered), "--out", str(tmp_path / "m")])
    assert expected in line and str(altered) in line
