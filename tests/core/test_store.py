"""predictions.jsonl: append + flush per sample, resume keeps successes, final file in order."""

from __future__ import annotations

import json

from evalkit.store import PredictionStore, read_predictions


def rec(i, error_type=None):
    return {"index": i, "id": f"s{i}", "output": "x", "error": "boom" if error_type else None, "error_type": error_type}


def test_each_add_is_on_disk_immediately(tmp_path):
    store = PredictionStore(tmp_path)
    store.add(rec(3))
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [3]
    store.close()


def test_resume_keeps_successes_drops_failures_and_torn_lines(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(
        json.dumps(rec(0)) + "\n" + json.dumps(rec(1, "request")) + "\n" + json.dumps(rec(2, "parse")) + "\n" + '{"index": 4, "id": "s4", "outp',
        encoding="utf-8",
    )
    store = PredictionStore(tmp_path)
    assert store.done(0) and store.done(2)
    assert not store.done(1) and not store.done(4)
    store.add(rec(4))
    store.add(rec(1))
    final = store.finalize()
    assert [r["index"] for r in final] == [0, 1, 2, 4]
    assert [r["index"] for r in read_predictions(path)] == [0, 1, 2, 4]


def test_finalize_without_rewrite_leaves_the_appended_file_for_the_callers_scored_rewrite(tmp_path):
    path = tmp_path / "predictions.jsonl"
    store = PredictionStore(tmp_path)
    for i in (2, 0, 1):
        store.add(rec(i, "request" if i == 1 else None))
    store.add(rec(1))  # the retried sample's second row
    final = store.finalize(rewrite=False)
    assert [r["index"] for r in final] == [0, 1, 2] and final[1]["error_type"] is None  # ordered, newest row wins
    assert [json.loads(line)["index"] for line in path.read_text().splitlines()] == [2, 0, 1, 1]  # as appended, each row flushed
    reopened = PredictionStore(tmp_path)  # a run that died before its rewrite: the next one cleans up
    assert [json.loads(line)["index"] for line in path.read_text().splitlines()] == [0, 1, 2]
    reopened.close()


def test_no_resume_starts_empty(tmp_path):
    (tmp_path / "predictions.jsonl").write_text(json.dumps(rec(0)) + "\n")
    store = PredictionStore(tmp_path, resume=False)
    assert not store.done(0)
    assert store.finalize() == []


def test_cache_put_many_entries_are_readable_and_later_puts_win(tmp_path):
    """(That a batch is one transaction is asserted in tests/core/test_cache.py.)"""
    from evalkit.cache import ResponseCache

    with ResponseCache(tmp_path) as cache:
        cache.put_many([("k1", {"text": "a"}), ("k2", {"text": "b"})])
        cache.put_many([])
        cache.put("k1", {"text": "a2"})
        assert cache.get_many(["k1", "k2", "k3"]) == {"k1": {"text": "a2"}, "k2": {"text": "b"}}
        assert len(cache) == 2
