"""The installed `evalkit` console script: the demo runs, bad input ends with one clear line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import error_line, read_jsonl, run_cli


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    cwd = tmp_path_factory.mktemp("elsewhere")  # runs from any working directory
    proc = run_cli(["+experiment=toolcall", f"hydra.run.dir={run_dir}"], cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return run_dir, proc


def test_demo_writes_the_run_dir_contract(demo_run):
    run_dir, proc = demo_run
    for name in ("metrics.json", "predictions.jsonl", "report.xlsx", "run.log", ".hydra/config.yaml"):
        assert (run_dir / name).exists(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_samples"] == 48
    assert metrics["num_failed"] == 0 and metrics["num_parse_errors"] >= 1 and metrics["complete"] is True
    for key in ("tool_f1", "tool_param_f1"):
        assert set(metrics[key]) >= {"micro", "macro", "per_tool"}
        assert set(metrics[key]["micro"]) == {"precision", "recall", "f1"}
    assert set(metrics["tool_exact_match"]) == {"single", "multi", "empty", "all"}
    assert metrics["tool_exact_match"]["all"]["total"] == 48
    rows = read_jsonl(run_dir / "predictions.jsonl")
    assert [r["index"] for r in rows] == list(range(48))
    assert {"id", "messages", "output", "prediction", "label", "error"} <= set(rows[0])
    assert "evalkit results" in proc.stdout


def test_report_workbook_sheets(demo_run):
    from openpyxl import load_workbook

    run_dir, _ = demo_run
    wb = load_workbook(run_dir / "report.xlsx", read_only=True)
    assert wb.sheetnames == ["summary", "tools", "params", "call_errors", "badcases"]
    header = [c.value for c in next(wb["badcases"].iter_rows(max_row=1))]
    assert header[:4] == ["id", "url", "history", "query"]
    tools = {row[0]: row for row in wb["tools"].iter_rows(min_row=2, values_only=True)}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name, m in metrics["tool_f1"]["per_tool"].items():
        assert tools[name][3] == pytest.approx(m["f1"])
    assert "micro_avg" in tools
    # bad cases are exactly the samples the exact-match metric scored wrong (or that erred)
    records = read_jsonl(run_dir / "predictions.jsonl")
    wrong = {r["id"] for r in records if r["scores"]["tool_exact_match"] is False or r["error"]}
    bad = {row[0] for row in wb["badcases"].iter_rows(min_row=2, values_only=True)}
    assert bad == wrong and len(wrong) == metrics["tool_exact_match"]["all"]["total"] - metrics["tool_exact_match"]["all"]["correct"] + sum(
        1 for r in records if r["error"] and r["scores"]["tool_exact_match"]
    )


def test_rerun_in_same_dir_resumes_without_duplicates(demo_run, tmp_path):
    run_dir, _ = demo_run
    before = json.loads((run_dir / "metrics.json").read_text())
    proc = run_cli(["+experiment=toolcall", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    # it resumed: every sample was already done, so the backend was asked for nothing
    assert "evaluating 48 samples (48 already done" in (run_dir / "run.log").read_text(encoding="utf-8")
    rows = read_jsonl(run_dir / "predictions.jsonl")
    assert [r["index"] for r in rows] == list(range(48))
    after = json.loads((run_dir / "metrics.json").read_text())
    for key in ("tool_f1", "tool_param_f1", "tool_exact_match", "num_samples", "num_parse_errors", "num_failed"):
        assert after[key] == before[key]


MALFORMED = '{"id": 1, "label": []}\n{oops\n'
LABEL_NOT_LIST = '{"id": 1, "label": "priceCheck"}\n'


def _bad_data(tmp_path, text, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "make_args, needles",
    [
        (lambda t: ["data.path=" + str(_bad_data(t, MALFORMED))], ["bad.jsonl:2", "malformed JSON"]),
        (lambda t: ["data.path=" + str(_bad_data(t, LABEL_NOT_LIST))], ["bad.jsonl:1", "label must be a list"]),
        (lambda t: [f"data.path={t / 'missing.jsonl'}"], ["missing.jsonl", "not found"]),
        (lambda t: ["backend.name=nope"], ["backend.name", "unknown backend 'nope'", "replay"]),
        (lambda t: ["parser.name=nope"], ["parser.name", "unknown parser 'nope'", "json_label"]),
        (lambda t: ["metrics.tool_f1.name=nope"], ["metrics.tool_f1.name", "unknown metric 'nope'"]),
        (lambda t: ["+backend.timeot=3"], ["backend.timeot", "unknown option 'timeot'"]),
        (lambda t: ["backend.timeot=3"], ["backend.timeot"]),
        (lambda t: ["backend=nope"], ["backend/nope", "replay"]),
        (lambda t: ["generation.n=zero"], ["generation.n"]),
        (lambda t: ["prompt.file=/nonexistent/prompt.yaml"], ["prompt.file", "not found"]),
    ],
    ids=["malformed-jsonl", "label-not-list", "missing-file", "unknown-backend", "unknown-parser", "unknown-metric",
         "unknown-key-added", "unknown-key", "unknown-group-option", "wrong-type", "missing-prompt-file"],
)
def test_bad_input_gives_one_clear_line(tmp_path, make_args, needles):
    proc = run_cli(["+experiment=toolcall", f"hydra.run.dir={tmp_path / 'run'}", *make_args(tmp_path)])
    line = error_line(proc)
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"


def test_verbose_shows_the_traceback(tmp_path):
    proc = run_cli(["+experiment=toolcall", f"hydra.run.dir={tmp_path / 'run'}", "parser.name=nope", "--verbose"])
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_help_is_fast_and_imports_no_torch():
    code = (
        "import sys\n"
        "sys.argv = ['evalkit', '--help']\n"
        "from evalkit.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'httpx', 'lightning') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "evalkit: evaluate fine-tuned LLMs" in proc.stdout
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]


def test_plugins_command_lists_builtins():
    proc = run_cli(["--json"], prog="evalkit-plugins")
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["replay"]["registers"] == {"backend": ["replay"]}
    assert rows["replay"]["distribution"] == "evalkit" and rows["replay"]["version"]


def test_rerun_with_another_setup_in_the_same_dir_starts_afresh(tmp_path):
    from evalkit.resolvers import demo_path

    outputs = [json.loads(line) for line in open(demo_path("toolcall/outputs.jsonl"), encoding="utf-8")]
    labels = {json.loads(line)["id"]: json.loads(line)["label"] for line in open(demo_path("toolcall/data.jsonl"), encoding="utf-8")}
    perfect = tmp_path / "perfect.jsonl"
    perfect.write_text("".join(json.dumps({"id": o["id"], "output": json.dumps({"label": labels[o["id"]]}, ensure_ascii=False)}, ensure_ascii=False) + "\n" for o in outputs))
    run_dir = tmp_path / "run"
    assert run_cli(["+experiment=toolcall", f"hydra.run.dir={run_dir}"]).returncode == 0
    proc = run_cli(["+experiment=toolcall", "backend=replay", f"backend.path={perfect}", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # 48 perfect outputs: nothing of the first run was kept
    assert metrics["tool_exact_match"]["all"]["correct"] == 48 and metrics["num_failed"] == 0
    proc = run_cli(["+experiment=toolcall", "data.limit=10", "backend=replay", f"backend.path={perfect}", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    assert [r["index"] for r in read_jsonl(run_dir / "predictions.jsonl")] == list(range(10))
    # the 38 finished records this re-run did not select are kept aside, said once, and come back
    assert [r["index"] for r in read_jsonl(run_dir / "predictions.aside.jsonl")] == list(range(10, 48))
    assert "kept aside" in proc.stderr + (run_dir / "run.log").read_text()
    proc = run_cli(["+experiment=toolcall", "backend=replay", f"backend.path={perfect}", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    assert [r["index"] for r in read_jsonl(run_dir / "predictions.jsonl")] == list(range(48))
    assert not (run_dir / "predictions.aside.jsonl").exists()
    assert "(48 already done" in (run_dir / "run.log").read_text()


def test_prompt_overrides_work_with_the_experiment(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(["+experiment=toolcall", "prompt.system=null", "prompt.user='问：{{ query }}'", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    first = read_jsonl(run_dir / "predictions.jsonl")[0]
    assert first["messages"] == [{"role": "user", "content": "问：运费多少钱？"}]


def test_prompt_file_without_the_experiment(tmp_path):
    from evalkit.resolvers import demo_path

    run_dir = tmp_path / "run"
    proc = run_cli(["backend=replay", f"backend.path={demo_path('toolcall/outputs.jsonl')}", f"data.path={demo_path('toolcall/data.jsonl')}",
                    f"prompt.file={demo_path('toolcall/prompt.yaml')}", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    first = read_jsonl(run_dir / "predictions.jsonl")[0]
    assert [m["role"] for m in first["messages"]] == ["system", "user"]


@pytest.mark.parametrize(
    "override, needle",
    [("+foo=1", "unknown config key 'foo'"), ("+report.foo=1", "report.foo"), ("report.excel=maybe", "report.excel"),
     ("metrics.tool_f1.level=names", "one of 'name', 'param'"), ("data.limit=-1", "data.limit")],
)
def test_more_bad_config_values(tmp_path, override, needle):
    line = error_line(run_cli(["+experiment=toolcall", f"hydra.run.dir={tmp_path / 'run'}", override]))
    assert needle in line


def test_replay_ids_that_match_nothing_are_one_clear_error(tmp_path):
    outputs = tmp_path / "out.jsonl"
    outputs.write_text('{"id": 1, "output": "x"}\n{"id": 2, "output": "y"}\n')  # ints; the demo's ids are strings
    line = error_line(run_cli(["+experiment=toolcall", "backend=replay", f"backend.path={outputs}", f"hydra.run.dir={tmp_path / 'run'}"]))
    assert "no saved output matches any dataset id" in line and "backend.path" in line


def test_metric_option_typo_lists_the_valid_options(tmp_path):
    line = error_line(run_cli(["+experiment=toolcall", f"hydra.run.dir={tmp_path / 'run'}", "+metrics.tool_f1.levle=name"]))
    assert "metrics.tool_f1.levle" in line and "level" in line and "include_negative" in line
