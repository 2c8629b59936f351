"""`evalkit ... backend=api` end to end: the installed console script against a real server.

Every test runs the CLI in a subprocess against :class:`StubServer` on 127.0.0.1 and checks
the run directory, the cache directory and the server's own request log.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.api.conftest import NUM_ROWS, complete_rows, files_containing, row_hash, start_cli
from tests.conftest import error_line, read_jsonl

KEY_ENV = "EVALKIT_TEST_API_KEY"
KEY = "sk-evalkit-test-5f1c9a7e3b2d4c6a"


def _check_every_sample_once_and_right(run_dir: Path) -> list[dict]:
    rows = read_jsonl(run_dir / "predictions.jsonl")
    assert [r["index"] for r in rows] == list(range(NUM_ROWS))
    for row in rows:
        assert row["error"] is None, row
        assert row["prediction"] == row["label"], row  # the server echoed the row's label
    return rows


def test_every_sample_completes_when_each_meets_every_fault(stub, api_cli, tmp_path):
    # Each conversation's first five attempts fail five different ways, then it succeeds.
    stub.configure(faults=("500", "429", "slow", "malformed", "disconnect"), retry_after=0.05, slow_delay=5.0, latency=0.005, api_key=KEY)
    proc = api_cli(stub.base_url, tmp_path, "backend.timeout=1.0", "backend.hedge=false", "backend.concurrency=8", f"backend.api_key_env={KEY_ENV}", env={KEY_ENV: KEY})
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "run"
    rows = _check_every_sample_once_and_right(run_dir)
    assert all(r["attempts"] == 6 for r in rows)

    stats = stub.stats()
    assert stats["status"]["200"] == NUM_ROWS
    assert set(stats["received"].values()) == {6} and len(stats["received"]) == NUM_ROWS
    assert set(stats["answered"].values()) == {1}

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_samples"] == NUM_ROWS and metrics["num_failed"] == 0
    for field in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert metrics["usage"][field] == sum(r["usage"][field] for r in rows)
    assert metrics["latency_s"]["max"] == max(r["latency_s"] for r in rows)

    log = (run_dir / "run.log").read_text(encoding="utf-8")
    assert f"{NUM_ROWS} ok, 0 failed" in log and "HTTP 500 x24" in log and "timeout x24" in log
    # The key was sent (the server demands it) but is written nowhere.
    assert not files_containing([run_dir, tmp_path / "cache"], KEY)
    assert KEY not in proc.stdout + proc.stderr


def test_kill_9_mid_run_then_rerun_sends_only_what_is_missing(stub, api_cli, tmp_path):
    stub.configure(latency=0.15)
    preds = tmp_path / "run" / "predictions.jsonl"
    proc = start_cli(stub.base_url, tmp_path, "backend.concurrency=2")
    try:
        deadline = time.monotonic() + 60
        while len(complete_rows(preds)) < 4:
            assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no predictions appeared"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    finished = {row_hash(r) for r in complete_rows(preds) if r.get("error") is None}
    assert 4 <= len(finished) < NUM_ROWS
    before = stub.stats()

    # The same command again: every sample exactly once, finished ones not sent again.
    stub.configure(latency=0.0)
    proc2 = api_cli(stub.base_url, tmp_path, "backend.concurrency=2")
    assert proc2.returncode == 0, proc2.stderr
    rows = _check_every_sample_once_and_right(tmp_path / "run")
    after = stub.stats()
    for key in finished:
        assert after["received"][key] == before["received"][key], "a finished sample was sent again"
    assert set(after["received"]) == {row_hash(r) for r in rows}
    assert all(after["answered"][row_hash(r)] >= 1 for r in rows)

    # A new run directory (Hydra's default is a fresh timestamped one) is served by the cache.
    proc3 = api_cli(stub.base_url, tmp_path, run_dir=tmp_path / "run2")
    assert proc3.returncode == 0, proc3.stderr
    rows3 = _check_every_sample_once_and_right(tmp_path / "run2")
    assert all(r.get("cached") for r in rows3)
    assert stub.stats()["total"] == after["total"]
    assert [r["output"] for r in rows3] == [r["output"] for r in rows]


def test_wrong_key_stops_at_once_with_one_line_naming_the_variable(stub, api_cli, tmp_path):
    stub.configure(api_key="the-right-key-0000")  # the server echoes a wrong key in its 401
    proc = api_cli(stub.base_url, tmp_path, f"backend.api_key_env={KEY_ENV}", env={KEY_ENV: KEY})
    line = error_line(proc)
    assert KEY_ENV in line and "401" in line and "rejected the API key" in line
    assert KEY not in proc.stdout + proc.stderr
    assert stub.stats()["status"].get("200", 0) == 0 and stub.stats()["total"] <= 1
    assert not files_containing([tmp_path / "run", tmp_path / "cache"], KEY)


def test_missing_key_names_the_variable_it_read(stub, api_cli, tmp_path):
    stub.configure(api_key="the-right-key-0000")
    proc = api_cli(stub.base_url, tmp_path, f"backend.api_key_env={KEY_ENV}_UNSET")
    line = error_line(proc)
    assert f"{KEY_ENV}_UNSET is not set" in line


def test_invalid_request_stops_early_without_retries(stub, api_cli, tmp_path):
    stub.configure(max_tokens_limit=256)
    proc = api_cli(stub.base_url, tmp_path, "generation.max_new_tokens=4096", "backend.concurrency=2")
    line = error_line(proc)
    assert "HTTP 400" in line and "max_tokens=4096" in line and "generation.max_new_tokens" in line
    stats = stub.stats()
    assert stats["status"] == {"400": stats["total"]} and stats["total"] <= 2  # in flight, never retried
    assert complete_rows(tmp_path / "run" / "predictions.jsonl") == []


def test_unreachable_server_is_one_line_naming_base_url(api_cli, tmp_path, closed_url):
    base_url = closed_url
    proc = api_cli(base_url, tmp_path)
    line = error_line(proc)
    assert "cannot connect" in line and base_url in line and "backend.base_url" in line
