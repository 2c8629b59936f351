"""Hydra multirun ends with a summary + flips; evalkit-compare gives the same for separate runs."""

from __future__ import annotations

import json

import pytest

from tests.conftest import read_jsonl, run_cli


def _one_by_one(sweep_data, tmp_path):
    dirs = []
    for name in ("a", "b", "c"):
        run_dir = tmp_path / f"single_{name}"
        proc = run_cli(["+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={sweep_data['outputs'][name]}",
                        "report.display_fields=[url,query]", f"hydra.run.dir={run_dir}"])
        assert proc.returncode == 0, proc.stderr
        dirs.append(run_dir)
    return dirs


def _exact(pred, label):
    canon = lambda calls: sorted(json.dumps({"toolName": c["toolName"], "paramList": c.get("paramList") or {}}, sort_keys=True) for c in calls)
    return canon(pred) == canon(label)


@pytest.fixture(scope="module")
def sweep(sweep_data, tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("sweep") / "s"
    paths = ",".join(str(sweep_data["outputs"][n]) for n in ("a", "b", "c"))
    proc = run_cli(["-m", "+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={paths}",
                    "report.display_fields=[url,query]", f"hydra.sweep.dir={sweep_dir}"])
    assert proc.returncode == 0, proc.stderr
    return sweep_dir, proc


def test_multirun_writes_summary_with_one_row_per_job(sweep):
    sweep_dir, proc = sweep
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert len(summary["runs"]) == 3 and len(summary["flips"]) == 2
    for i, row in enumerate(summary["runs"]):
        assert row["run_dir"].endswith(f"/{i}")
        assert any(o.startswith("backend.path=") for o in row["overrides"])
        metrics = json.loads((sweep_dir / str(i) / "metrics.json").read_text())
        assert row["figures"]["tool_f1.micro.f1"] == metrics["tool_f1"]["micro"]["f1"]
        assert row["figures"]["tool_exact_match.all.accuracy"] == metrics["tool_exact_match"]["all"]["accuracy"]
    assert (sweep_dir / "summary.xlsx").exists()
    assert "evalkit comparison" in proc.stdout


def test_flips_match_runs_made_one_by_one(sweep, sweep_data, tmp_path):
    sweep_dir, _ = sweep
    summary = json.loads((sweep_dir / "summary.json").read_text())
    singles = _one_by_one(sweep_data, tmp_path)
    base = {r["id"]: r for r in read_jsonl(singles[0] / "predictions.jsonl")}
    for pair, other_dir in zip(summary["flips"], singles[1:]):
        other = {r["id"]: r for r in read_jsonl(other_dir / "predictions.jsonl")}
        expected_rw = [i for i in base if _exact(base[i]["prediction"], base[i]["label"]) and not _exact(other[i]["prediction"], other[i]["label"])]
        expected_wr = [i for i in base if not _exact(base[i]["prediction"], base[i]["label"]) and _exact(other[i]["prediction"], other[i]["label"])]
        assert [r["id"] for r in pair["right_to_wrong"]] == expected_rw
        assert [r["id"] for r in pair["wrong_to_right"]] == expected_wr
        assert expected_rw or expected_wr  # the data is made so that something flips
        for item in pair["right_to_wrong"]:
            assert item["base_prediction"] == base[item["id"]]["prediction"]
            assert item["other_prediction"] == other[item["id"]]["prediction"]


def test_compare_cli_reproduces_the_sweep_summary(sweep, sweep_data, tmp_path):
    sweep_dir, _ = sweep
    singles = _one_by_one(sweep_data, tmp_path)
    out = tmp_path / "cmp"
    proc = run_cli([*map(str, singles), "--out", str(out)], prog="evalkit-compare")
    assert proc.returncode == 0, proc.stderr
    mine = json.loads((out / "summary.json").read_text())
    theirs = json.loads((sweep_dir / "summary.json").read_text())
    assert [r["figures"] for r in mine["runs"]] == [r["figures"] for r in theirs["runs"]]
    strip = lambda flips: [{k: v for k, v in f.items() if k not in ("base", "other")} for f in flips]
    assert strip(mine["flips"]) == strip(theirs["flips"])
    assert (out / "summary.xlsx").exists()


def test_compare_of_different_datasets_compares_figures_only_and_says_so(sweep_data, tmp_path):
    first = tmp_path / "r1"
    proc = run_cli(["+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={sweep_data['outputs']['a']}", f"hydra.run.dir={first}"])
    assert proc.returncode == 0, proc.stderr
    second = tmp_path / "r2"
    proc = run_cli(["+experiment=toolcall", f"hydra.run.dir={second}"])  # the shipped demo data
    assert proc.returncode == 0, proc.stderr
    proc = run_cli([str(first), str(second), "--out", str(tmp_path / "cmp")], prog="evalkit-compare")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text(encoding="utf-8"))
    assert summary["flips"] == [] and "significance" not in summary and "different data" in summary["not_paired"]
    assert len(summary["runs"]) == 2 and summary["comparability"]  # the banner's facts are recorded
    assert "data fingerprint" in (tmp_path / "cmp" / "compare.html").read_text(encoding="utf-8")  # the banner


def test_a_failing_job_does_not_stop_the_sweep_but_fails_the_command(sweep_data, tmp_path):
    sweep_dir = tmp_path / "s"
    missing = tmp_path / "missing.jsonl"
    paths = f"{sweep_data['outputs']['a']},{missing},{sweep_data['outputs']['b']}"
    proc = run_cli(["-m", "+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={paths}", f"hydra.sweep.dir={sweep_dir}"])
    assert proc.returncode == 1
    assert "1 sweep job(s) failed" in proc.stderr and "missing.jsonl" in proc.stderr
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert [r["run_dir"][-1] for r in summary["runs"]] == ["0", "2"]
    assert summary["failed_jobs"] == [str(sweep_dir / "1")]


def test_rerun_into_an_old_sweep_dir_summarises_only_the_new_jobs(sweep, sweep_data, tmp_path):
    import shutil

    old_sweep, _ = sweep
    sweep_dir = tmp_path / "reused"
    shutil.copytree(old_sweep, sweep_dir)
    proc = run_cli(["-m", "+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={sweep_data['outputs']['c']}",
                    f"hydra.sweep.dir={sweep_dir}"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert len(summary["runs"]) == 1 and summary["runs"][0]["run_dir"].endswith("/0")
