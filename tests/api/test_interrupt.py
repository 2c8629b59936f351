"""Ctrl-C of an API run (generation in a forked child): from a terminal (the whole process
group gets SIGINT) or sent to evalkit's process alone (``kill -INT``). Either way the run
stops soon, keeps what it finished, and exits 130 with its one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.api.conftest import api_args, complete_rows
from tests.conftest import script

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="evalkit forks its generation only on Linux; elsewhere a run stays in one process, whose Ctrl-C the other CLI tests cover")


def _start(base_url, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    # SIGINT back to its default before exec'ing evalkit (as in a terminal), even when whoever
    # started the tests ignores it (a background job of a non-interactive shell does)
    default_sigint = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    evalkit = script("evalkit")
    return subprocess.Popen(
        [sys.executable, "-c", default_sigint, evalkit, *api_args(base_url, tmp_path, "backend.concurrency=2")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def _wait_for_rows(path, at_least, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while len(complete_rows(path)) < at_least:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)


@pytest.mark.parametrize("target", ["process group", "evalkit only"])
def test_ctrl_c_stops_the_child_keeps_finished_samples_and_exits_130(stub_process, tmp_path, target):
    server = stub_process("--latency", "0.5")  # 2 in flight: the 24 rows take about 6 s
    proc = _start(server.base_url, tmp_path)
    predictions = tmp_path / "run" / "predictions.jsonl"
    _wait_for_rows(predictions, 3, proc)
    if target == "process group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "evalkit: interrupted; finished samples are saved" in stderr
    rows = complete_rows(predictions)
    time.sleep(1.0)  # a child left running would keep appending
    assert complete_rows(predictions) == rows
    assert 3 <= len(rows) < 24
    assert len({r["index"] for r in rows}) == len(rows)
