"""Numbers a user can believe: a failed request is not a prediction, and every figure the CLI
writes can be recomputed from its own ``predictions.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import error_line, read_jsonl, run_cli
from tests.metrics.reference import ref_exact_match, ref_tool_f1
from tests.servers.openai_stub import StubServer

DATA = Path(__file__).resolve().parents[1] / "api" / "data"
ROWS = [json.loads(line) for line in (DATA / "toolcall.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
# a mix that includes samples with an empty label: the ones a failed request used to "get right"
EMPTY_LABELS = sum(1 for r in ROWS if not r["label"])


def _api_run(server: StubServer, tmp_path: Path, *extra: str):
    return run_cli(
        [
            "+experiment=toolcall", "backend=api", f"backend.base_url={server.base_url}", "backend.model=m",
            f"data.path={DATA / 'toolcall.jsonl'}", f"prompt.file={DATA / 'prompt.yaml'}", f"cache.dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'run'}", "run.progress=false", "backend.max_retries=1", "backend.backoff_initial=0.01",
            "backend.backoff_max=0.05", "backend.hedge=false", *extra,
        ],
        timeout=300,
    )


@pytest.fixture
def broken_server():
    with StubServer(model="m") as server:
        server.configure(p500=1.0)  # every request answered HTTP 500
        yield server


def test_a_server_failing_every_request_scores_nothing_and_exits_incomplete(broken_server, tmp_path):
    assert EMPTY_LABELS > 0, "the data must hold empty labels for this test to mean anything"
    proc = _api_run(broken_server, tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert sum("INCOMPLETE" in line for line in proc.stderr.splitlines()) == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["num_failed"] == metrics["num_samples"] == len(ROWS)
    assert metrics["num_scored"] == 0 and metrics["complete"] is False
    assert metrics["tool_exact_match"] is None and metrics["tool_f1"] is None  # no figure from no prediction
    records = read_jsonl(tmp_path / "run" / "predictions.jsonl")
    assert all(r["error_type"] == "request" and r["prediction"] is None and "scores" not in r for r in records)


def test_failed_empty_keeps_the_old_scoring_on_request(broken_server, tmp_path):
    proc = _api_run(broken_server, tmp_path, "run.failed=empty", "run.max_failed=1.0")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    em = metrics["tool_exact_match"]
    assert em["all"]["total"] == len(ROWS) and em["all"]["correct"] == EMPTY_LABELS == em["empty"]["correct"]
    assert metrics["complete"] is False and metrics["num_scored"] == len(ROWS)


def test_rerun_sends_only_the_failed_samples(tmp_path):
    with StubServer(model="m") as server:
        server.configure(p500=1.0)
        assert _api_run(server, tmp_path).returncode == 4
        server.configure(p500=0.0)
        server.reset()
        proc = _api_run(server, tmp_path)
        stats = server.stats()
    assert proc.returncode == 0, proc.stderr
    assert stats["total"] == len(ROWS)  # each failed sample sent once more, nothing else
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["complete"] is True and metrics["num_scored"] == len(ROWS)
    assert metrics["tool_exact_match"]["all"]["correct"] == len(ROWS)  # the stub answers each row's label


def test_tool_call_figures_recomputed_from_predictions_jsonl(tmp_path):
    """The CLI's tool-call F1s equal an independent computation over its own records, with the
    composite keys the experiment configures."""
    run_dir = tmp_path / "run"
    proc = run_cli(["+experiment=toolcall", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    conf = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf" / "metrics" / "toolcall.yaml").read_text(encoding="utf-8"))
    composite = conf["tool_param_f1"]["composite_keys"]
    assert composite["truckCheck"]["values"] == ["车长", "车型"]
    records = [r for r in read_jsonl(run_dir / "predictions.jsonl") if r["error_type"] != "request"]
    preds, labels = [r["prediction"] for r in records], [r["label"] for r in records]
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    expected = {
        "tool_f1": ref_tool_f1(preds, labels, "name"),
        "tool_param_f1": ref_tool_f1(preds, labels, "param", False, composite),
        "tool_exact_match": ref_exact_match(preds, labels),
    }
    for key, value in expected.items():
        assert _close(metrics[key], value), key
    per_sample = [r["scores"]["tool_exact_match"] for r in records]
    assert sum(per_sample) == metrics["tool_exact_match"]["all"]["correct"]


def _close(a, b) -> bool:
    if isinstance(b, dict):
        return set(a) == set(b) and all(_close(a[k], b[k]) for k in b)
    return a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize(
    "override, key",
    [
        ("generation.temperature=-1", "generation.temperature"),
        ("generation.top_p=0", "generation.top_p"),
        ("generation.top_p=1.5", "generation.top_p"),
        ("generation.top_k=-2", "generation.top_k"),
        ("generation.n=0", "generation.n"),
        ("generation.max_new_tokens=-5", "generation.max_new_tokens"),
        ("generation.stop=[1]", "generation.stop[0]"),
    ],
)
def test_sampling_settings_are_validated(override, key, tmp_path):
    line = error_line(run_cli(["+experiment=toolcall", override, f"hydra.run.dir={tmp_path / 'run'}"]))
    assert key in line


def _demo_outputs(tmp_path: Path, name: str, *, fail_every: int = 0) -> Path:
    """The demo rows answered perfectly, except every ``fail_every``-th saved as a failed request."""
    from evalkit.resolvers import demo_path

    rows = [json.loads(line) for line in open(demo_path("toolcall/data.jsonl"), encoding="utf-8")]
    lines = []
    for i, row in enumerate(rows):
        if fail_every and i % fail_every == 0:
            lines.append({"id": row["id"], "output": None, "error": "timeout"})
        else:
            lines.append({"id": row["id"], "output": json.dumps({"label": row["label"]}, ensure_ascii=False)})
    path = tmp_path / name
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def test_flips_agree_with_the_metrics_when_samples_failed(tmp_path):
    """Failed samples have no verdict, in the metrics and in the flips alike (a failed request
    used to show up as a right->wrong flip)."""
    good, failing = _demo_outputs(tmp_path, "good.jsonl"), _demo_outputs(tmp_path, "failing.jsonl", fail_every=2)
    runs = []
    for name, path in (("a", good), ("b", failing)):
        run_dir = tmp_path / name
        proc = run_cli(["+experiment=toolcall", "backend=replay", f"backend.path={path}", "run.max_failed=1", f"hydra.run.dir={run_dir}"])
        assert proc.returncode == 0, proc.stderr
        runs.append(run_dir)
    proc = run_cli([str(runs[0]), str(runs[1]), "--out", str(tmp_path / "cmp")], prog="evalkit-compare")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "cmp" / "summary.json").read_text(encoding="utf-8"))
    (pair,) = summary["flips"]
    b = json.loads((runs[1] / "metrics.json").read_text(encoding="utf-8"))
    assert b["num_failed"] == 24 and b["tool_exact_match"]["all"] == {"correct": 24, "total": 24, "accuracy": 1.0}
    assert pair["metric"] == "tool_exact_match" and pair["right_to_wrong"] == [] and pair["wrong_to_right"] == []


def test_runs_without_per_sample_verdicts_say_why_they_have_no_flips(tmp_path):
    runs = []
    for name in ("a", "b"):
        run_dir = tmp_path / name
        assert run_cli(["+experiment=accepthead", f"hydra.run.dir={run_dir}"]).returncode == 0
        runs.append(run_dir)
    proc = run_cli([str(runs[0]), str(runs[1]), "--out", str(tmp_path / "cmp")], prog="evalkit-compare")
    assert proc.returncode == 0, proc.stderr
    (pair,) = json.loads((tmp_path / "cmp" / "summary.json").read_text(encoding="utf-8"))["flips"]
    assert "right/wrong" in pair["skipped"] and pair["right_to_wrong"] == pair["wrong_to_right"] == []
    records = read_jsonl(runs[0] / "predictions.jsonl")
    assert all(set(r["scores"]["accept_head"]) == {"accuracy", "mae", "mse", "rmse", "n"} for r in records if r["scores"]["accept_head"])


@pytest.mark.parametrize("mode, complete", [("native", True), ("torn", True)])
def test_seed_flow_against_a_native_function_calling_endpoint(tmp_path, mode, complete):
    """``+experiment=toolcall tools.mode=fc tools.file=...``: tools are sent, the answer's
    ``tool_calls`` (content null) are the prediction; torn arguments are per-sample parse
    errors, never a crash."""
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}} for n in ("priceCheck", "truckCheck", "loadTimeCheck", "orderManagementCheck", "settlementMethod")]
    tools_file = tmp_path / "freight_tools.json"
    tools_file.write_text(json.dumps(tools), encoding="utf-8")
    with StubServer(model="m") as server:
        server.configure(tool_mode=mode)
        proc = _api_run(server, tmp_path, "tools.mode=fc", f"tools.file={tools_file}")
        bodies = list(server.stats()["bodies"].values())
    assert proc.returncode == 0, proc.stderr
    assert bodies and all(b["tools"] == tools and b.get("tool_choice") == "auto" for b in bodies)
    records = read_jsonl(tmp_path / "run" / "predictions.jsonl")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    with_calls = [r for r in records if r["label"]]
    assert all(r["calls_source"] == "native" for r in records if r["error_type"] is None)
    if mode == "native":
        assert metrics["tool_exact_match"]["all"]["correct"] == len(ROWS) and metrics["num_parse_errors"] == 0
        assert [r["prediction"] for r in records] == [r["label"] for r in records]
    else:
        assert all(r["error_type"] == "parse" and "args_invalid_json" in r["error"] for r in with_calls if any(c.get("paramList") for c in r["label"]))
        assert metrics["num_parse_errors"] > 0 and metrics["complete"] is True
    assert metrics["tool_call_errors"]["hallucinated_function"] == 0
