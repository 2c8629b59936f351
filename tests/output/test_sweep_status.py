"""A sweep reports incomplete jobs (failed samples) like failed ones: listed, and non-zero exit."""

from __future__ import annotations

from tests.conftest import error_line
from tests.output.conftest import load_json, run80


def test_an_incomplete_job_is_listed_and_fails_the_sweep(sweep_data, tmp_path):
    lines = sweep_data["outputs"]["b"].read_text(encoding="utf-8").splitlines(keepends=True)
    partial = tmp_path / "outputs_partial.jsonl"
    partial.write_text("".join(lines[:-1]), encoding="utf-8")  # one sample without an answer
    sweep_dir = tmp_path / "sweep"
    proc = run80(["-m", "+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={sweep_data['outputs']['a']},{partial}",
                  f"hydra.sweep.dir={sweep_dir}"])  # fmt: skip
    line = error_line(proc)
    assert "1 sweep job(s) failed or incomplete" in line and f"{sweep_dir / '1'} (incomplete)" in line
    summary = load_json(sweep_dir / "summary.json")
    assert summary["incomplete_jobs"] == [str(sweep_dir / "1")] and summary["failed_jobs"] == []
    assert [r["figures"]["complete"] for r in summary["runs"]] == [True, False]  # still compared
    assert f"incomplete job (failed samples): {sweep_dir / '1'}" in proc.stdout  # the comparison's own line, under its table
