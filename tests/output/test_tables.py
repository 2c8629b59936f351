"""Tables that fit: every headline figure of every run, in full, at 80 columns into a pipe."""

from __future__ import annotations

from pathlib import Path

from evalkit.console import fmt, key_figures
from tests.conftest import read_jsonl
from tests.output.conftest import load_json, run80


def _rows_by_metric(stdout: str) -> dict[str, list[list[str]]]:
    """Table lines split into cells, keyed by their first cell (a metric may have one line
    per block of columns)."""
    rows: dict[str, list[list[str]]] = {}
    for line in stdout.splitlines():
        cells = line.split()
        if len(cells) >= 2:
            rows.setdefault(cells[0], []).append(cells[1:])
    return rows


def _assert_fits(text: str, width: int = 80) -> None:
    """Table lines fit; plain lines (the legend's indented values and run dirs, the paths
    written, Hydra's own log lines) are never cut."""
    for line in text.splitlines():
        if not line.startswith(("  ", "[", "written")):
            assert len(line) <= width, f"{len(line)} columns: {line!r}"
    assert "…" not in text


def test_sweep_table_has_every_figure_of_every_job_in_full(narrow_sweep):
    sweep_dir, proc = narrow_sweep
    _assert_fits(proc.stdout)
    summary = load_json(sweep_dir / "summary.json")
    assert summary["swept_keys"] == ["backend.path"]
    assert [r["column"] for r in summary["runs"]] == ["outputs_a", "outputs_b", "outputs_c"]
    table = proc.stdout[proc.stdout.index("evalkit comparison:") :]  # after each job's own table
    rows = _rows_by_metric(table)
    header = rows["metric"][0]
    assert header == ["outputs_a", "outputs_b", "outputs_c"]
    for i, job in enumerate(("0", "1", "2")):
        figures = key_figures(load_json(sweep_dir / job / "metrics.json"))
        assert "tool_exact_match.all.accuracy" in figures and "tool_f1.micro.f1" in figures
        for name, value in figures.items():
            assert name in rows, f"{name} missing from the table:\n{proc.stdout}"
            assert rows[name][0][i] == fmt(value), (name, rows[name])
    # the legend: column name -> plain swept value, and the job's run dir on its own line
    lines = proc.stdout.splitlines()
    assert any(line.strip() == f"outputs_b: backend.path={summary['runs'][1]['swept']['backend.path']}" for line in lines)
    assert str(sweep_dir / "1") in [line.strip() for line in lines]
    assert "flips outputs_a -> outputs_b: right->wrong" in table


def test_many_runs_are_printed_in_blocks_that_fit(sweep_data, tmp_path):
    # Seven runs of the same outputs under long names: more columns than 80 columns hold.
    from evalkit.compare import build_comparison
    from evalkit.console import print_comparison
    from evalkit.runs import load_run

    run_dir = tmp_path / "run"
    proc = run80(["+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={sweep_data['outputs']['a']}", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    runs = []
    for i in range(7):
        run = load_run(run_dir)
        run.info["overrides"] = [f"backend.path=/models/checkpoint-{1000 * i}.jsonl", "backend.base_url=http\\://127.0.0.1\\:8000"]
        runs.append(run)
    comparison = build_comparison(runs)
    assert comparison["shared_overrides"] == {"backend.base_url": "http://127.0.0.1:8000"}  # escapes gone
    out = tmp_path / "table.txt"
    with out.open("w", encoding="utf-8") as f:
        print_comparison(comparison, file=f, width=80)
    text = out.read_text(encoding="utf-8")
    _assert_fits(text)
    rows = _rows_by_metric(text)
    headers = [cell for block in rows["metric"] for cell in block]
    assert headers == [f"checkpoint-{1000 * i}" for i in range(7)]
    assert len(rows["metric"]) >= 2  # several blocks, each repeating the metric names
    expected = fmt(runs[0].metrics["tool_exact_match"]["all"]["accuracy"])
    assert [cell for block in rows["tool_exact_match.all.accuracy"] for cell in block] == [expected] * 7


def test_single_run_prints_its_run_dir_on_one_plain_line(sweep_data, tmp_path):
    run_dir = tmp_path / ("a-long-directory-name-for-an-experiment-" * 2) / "2026-12-01" / "19-40-00"
    assert len(str(run_dir)) > 80
    proc = run80(["+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={sweep_data['outputs']['a']}", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert str(run_dir) in lines, proc.stdout
    table = "\n".join(line for line in lines if line != str(run_dir))
    _assert_fits(table)
    metrics = load_json(run_dir / "metrics.json")
    rows = _rows_by_metric(proc.stdout)
    assert rows["tool_exact_match.all.accuracy"][0] == [fmt(metrics["tool_exact_match"]["all"]["accuracy"])]
    assert rows["num_samples"][0] == [str(len(read_jsonl(run_dir / "predictions.jsonl")))]


def test_compare_cli_table_fits_and_names_runs(narrow_sweep, tmp_path):
    sweep_dir, _ = narrow_sweep
    out = tmp_path / "cmp"
    proc = run80([str(sweep_dir / "0"), str(sweep_dir / "2"), "--out", str(out)], prog="evalkit-compare")
    assert proc.returncode == 0, proc.stderr
    _assert_fits(proc.stdout)
    assert _rows_by_metric(proc.stdout)["metric"][0] == ["outputs_a", "outputs_c"]
    assert Path(out / "summary.json").exists() and f"  {out / 'summary.xlsx'}" in proc.stdout.splitlines()
    only = run80([str(sweep_dir / "0"), str(sweep_dir / "2"), "--out", str(out), "--figures", "tool_exact_match.*", "--figures", "num_failed"], prog="evalkit-compare")
    assert only.returncode == 0, only.stderr
    rows = _rows_by_metric(only.stdout[only.stdout.index("metric ") :])
    assert {k for k in rows if "." in k or k.startswith("num_")} == {"tool_exact_match.single.accuracy", "tool_exact_match.multi.accuracy",
                                                                 "tool_exact_match.empty.accuracy", "tool_exact_match.all.accuracy", "num_failed"}
