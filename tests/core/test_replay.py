"""Replay backend: JSONL by id, the seeds' saved-results list by position, missing outputs."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import ConfigError, DataError
from evalkit.types import Request
from evalkit_replay.backend import ReplayBackend


def collect(backend, requests):
    results = []
    backend.generate(requests, results.append)
    return {r.index: r for r in results}


def test_jsonl_matched_by_id(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "b", "output": "B"}\n{"id": "a", "outputs": ["A1", "A2"]}\n', encoding="utf-8")
    results = collect(ReplayBackend(path=str(path)), [Request(index=0, id="a"), Request(index=1, id="b"), Request(index=2, id="c")])
    assert results[0].outputs == ["A1", "A2"] and results[1].outputs == ["B"]
    assert results[2].error == "no saved output for this id"


def test_seed_results_list_matched_by_position(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(
        json.dumps(
            [
                {"status_code": 200, "result": "第一", "error": None, "time_cost": 1.5},
                {"status_code": None, "result": None, "error": "Read timed out", "time_cost": 0},
                {"status_code": 200, "result": None, "error": None},
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    results = collect(ReplayBackend(path=str(path)), [Request(index=i, id=f"x{i}") for i in range(4)])
    assert results[0].outputs == ["第一"] and results[0].latency_s == 1.5
    assert results[1].error.startswith("saved error: Read timed out")
    assert results[2].error == "no saved output"
    assert results[3].error == "no saved output at this position"


def test_errors(tmp_path):
    with pytest.raises(ConfigError) as info:
        ReplayBackend(path=None)
    assert "backend.path" in str(info.value)
    with pytest.raises(DataError):
        ReplayBackend(path=str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "output": "x"}\n{"output": "y"}\n')
    with pytest.raises(DataError) as info:
        ReplayBackend(path=str(bad), match="id")
    assert "bad.jsonl:2" in str(info.value)
