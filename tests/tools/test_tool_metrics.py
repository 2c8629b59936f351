"""bfcl and tool_call_errors metrics: DDP (2 gloo processes) and merge_state equal one process;
BFCL overview aggregates; the call-error sheet rows."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from evalkit_tools.bfcl.metric import BfclAccuracy, bfcl_accuracy
from evalkit_tools.bfcl.report import BfclReport, overview
from evalkit_tools.call_errors import ToolCallErrors, call_error_rows, tool_call_error_counts

FUNCS = [{"name": "geo.dist", "parameters": {"properties": {"a": {"type": "float"}, "unit": {"type": "string"}}, "required": ["a"]}}]
TRUTH = [{"geo.dist": {"a": [1.0], "unit": ["km", ""]}}]


def _samples() -> tuple[list, list]:
    simple = {"category": "simple_python", "functions": FUNCS, "ground_truth": TRUTH}
    irrelevant = {"category": "irrelevance", "functions": FUNCS, "ground_truth": None}
    preds = [
        [{"name": "geo_dist", "arguments": {"a": 1}}],  # int for float, optional omitted
        [{"name": "geo_dist", "arguments": {"a": 1.0, "unit": "KM"}}],  # string standardisation
        [{"name": "geo_dist", "arguments": {"a": 2.0}}],  # wrong value
        [{"name": "geo.dist", "arguments": {"a": 1.0}}],  # dotted name in fc mode
        None,  # nothing decodable
        [],
        [{"name": "geo_dist", "arguments": {"a": 1.0}}],  # a call where none should be
        None,
    ]
    labels = [simple] * 6 + [irrelevant] * 2
    return preds * 3, labels * 3


EXPECTED_ERRORS = {
    "value_error:others": 3,
    "simple_function_checker:wrong_func_name": 3,
    "ast_decoder:decoder_failed": 3,
    "simple_function_checker:wrong_count": 3,
    "irrelevance_error:decoder_success": 3,
}


def test_bfcl_metric_counts_and_sample_scores():
    preds, labels = _samples()
    result = bfcl_accuracy(preds, labels)
    assert (result["correct"], result["total"]) == (9, 24)
    assert result["error_types"] == EXPECTED_ERRORS
    assert result["per_category"]["irrelevance"] == {"accuracy": 0.5, "correct": 3, "total": 6}
    scores = BfclAccuracy().sample_scores(preds[:8], labels[:8])
    assert scores[0] == {"valid": True, "error_type": None} and scores[3] == {"valid": False, "error_type": "simple_function_checker:wrong_func_name"}
    prompt = BfclAccuracy(mode="prompt").sample_scores(preds[:8], labels[:8])
    assert prompt[3]["valid"] and not prompt[0]["valid"]  # prompt mode: names as written


def test_merge_state_equals_one_pass():
    preds, labels = _samples()
    whole = BfclAccuracy()
    whole.update(preds, labels)
    parts = [BfclAccuracy(), BfclAccuracy()]
    parts[0].update(preds[:10], labels[:10])
    parts[1].update(preds[10:], labels[10:])
    parts[0].merge_state(parts[1])
    assert parts[0].compute() == whole.compute()


def _worker(rank: int, port: int, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    preds, labels = _samples()
    bfcl, errors = BfclAccuracy(), ToolCallErrors(tools=[{"name": "geo.dist"}])
    bfcl.update(preds[rank::2], labels[rank::2])
    errors.update(preds[rank::2], labels[rank::2])
    result = {"bfcl": bfcl.compute(), "errors": errors.compute()}
    if rank == 0:
        Path(out).write_text(json.dumps(result))
    torch.distributed.destroy_process_group()


def test_ddp_equals_single_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp.json"
    mp.spawn(_worker, args=(port, str(out)), nprocs=2, join=True)
    preds, labels = _samples()
    errors = ToolCallErrors(tools=[{"name": "geo.dist"}])
    errors.update(preds, labels)
    assert json.loads(out.read_text()) == {"bfcl": bfcl_accuracy(preds, labels), "errors": errors.compute()}


def test_call_error_counts_on_seed_labels():
    preds = [[{"toolName": "a"}], [], [{"name": "zz", "arguments": {}}], None]
    labels = [[{"toolName": "a"}], [{"toolName": "a"}], [], []]
    assert tool_call_error_counts(preds, labels, frozenset({"a"})) == {"samples": 4, "calls": 2, "hallucinated_function": 1, "missed_call": 1, "spurious_call": 1}
    assert tool_call_error_counts(preds, labels)["hallucinated_function"] is None  # offered tools unknown
    metrics = {"call_errors": {"samples": 4, "calls": 2, "hallucinated_function": 1, "missed_call": 1, "spurious_call": 1}, "tool_f1": {"micro": {}}, "num_samples": 4}
    rows = call_error_rows(metrics)
    assert rows[0][:3] == ["metric", "samples", "calls"] and rows[1] == ["call_errors", 4, 2, 1, 1, 1, 0.25, 0.25]
    assert call_error_rows({"tool_f1": {}}) == []


def test_bfcl_overview_is_unweighted_non_live_and_weighted_live():
    def run(category, correct, total):
        return {"bfcl": {"accuracy": correct / total, "correct": correct, "total": total, "error_types": {}, "per_category": {category: {"accuracy": correct / total, "correct": correct, "total": total}}}}

    runs = [run("simple_python", 300, 400), run("multiple", 100, 200), run("parallel", 50, 200), run("parallel_multiple", 0, 200), run("live_simple", 129, 258), run("live_multiple", 1053, 1053)]
    result = BfclReport.summarize(runs)
    assert result["non_live"]["overall"] == pytest.approx((0.75 + 0.5 + 0.25 + 0.0) / 4) and result["non_live"]["complete"]
    assert result["live"]["overall"] == pytest.approx((129 + 1053) / (258 + 1053 + 16 + 24)) and not result["live"]["complete"]
    assert result["live"]["live_parallel"] is None and result["irrelevance"] is None
    assert BfclReport.summarize(runs + [run("multiple", 1, 2)]) is None  # one run per category
    assert overview({})["non_live"]["overall"] == 0.0
