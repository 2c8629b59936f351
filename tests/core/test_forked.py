"""evalkit.forked: a function in a forked child, its value or its error back in the parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from evalkit.errors import BackendError
from evalkit.forked import ChildError, ForkedCall, can_fork

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="evalkit.forked is used only on Linux (can_fork() is False elsewhere)")


def test_the_value_comes_back_from_another_process():
    rows = [{"index": i, "text": "运费" * (i % 7)} for i in range(5000)]  # far more than a pipe buffer
    pid, value = ForkedCall(lambda: (os.getpid(), rows)).result()
    assert pid != os.getpid()
    assert value == rows


def _fail_deep_inside():
    raise BackendError("server went away", where="backend.base_url", fix="start it")


def test_an_error_is_raised_in_the_parent_as_itself_with_the_childs_traceback():
    with pytest.raises(BackendError) as info:
        ForkedCall(_fail_deep_inside).result()
    assert str(info.value) == "backend.base_url: server went away (fix: start it)"
    assert info.value.exit_code == 3
    notes = "\n".join(getattr(info.value, "__notes__", []))
    if sys.version_info >= (3, 11):
        assert "in the forked child (pid" in notes and "_fail_deep_inside" in notes


def test_an_unpicklable_result_is_a_child_error_naming_it():
    with pytest.raises(ChildError, match="cannot be sent back"):
        ForkedCall(lambda: threading.Lock()).result()


def test_a_child_killed_outright_is_a_child_error_with_its_exit_status():
    with pytest.raises(ChildError, match=r"ended without a result \(exit status -9\)"):
        ForkedCall(lambda: os.kill(os.getpid(), signal.SIGKILL)).result()


def test_interrupt_stops_the_child_as_ctrl_c_would_and_its_cleanup_runs(tmp_path):
    started, cleaned = tmp_path / "started", tmp_path / "cleaned"

    def work():
        try:  # (the signal may come while "started" is still being written)
            started.write_text("yes")
            while True:
                time.sleep(0.01)
        finally:
            cleaned.write_text("yes")

    call = ForkedCall(work)
    while not started.exists():
        time.sleep(0.01)
    call.interrupt()
    with pytest.raises(KeyboardInterrupt):
        call.result()
    assert cleaned.read_text() == "yes"
    call.wait()  # already reaped: returns at once
    with pytest.raises(ChildProcessError):
        os.waitpid(call.pid, os.WNOHANG)


def test_fork_is_only_chosen_where_it_is_safe():
    gate = threading.Event()
    thread = threading.Thread(target=gate.wait)
    thread.start()
    try:
        assert can_fork() is False  # another thread is running
    finally:
        gate.set()
        thread.join()
    fresh = subprocess.run([sys.executable, "-c", "from evalkit.forked import can_fork; print(can_fork())"], capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "True"  # a fresh CLI process: one thread, no torch
    loaded = subprocess.run([sys.executable, "-c", "import torch; from evalkit.forked import can_fork; print(can_fork())"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"  # torch already loaded: nothing to gain, more to risk


# -- the console script's pre-forked child ----------------------------------------------------
WARMED_BY: list[int] = []


def _warm_slowly():
    time.sleep(0.3)  # the parent's submit must not wait for this (a reader thread takes the job)
    WARMED_BY.append(os.getpid())


def _take_environ(environ):
    os.environ.clear()
    os.environ.update(environ)


def _report(rows):
    return os.getpid(), list(WARMED_BY), os.environ.get("EVALKIT_TEST_AFTER_FORK"), rows


def test_the_pre_forked_child_warms_up_then_runs_the_job_in_the_parents_context():
    from evalkit.forked import Prefork

    prefork = Prefork(_warm_slowly, context=lambda: (_take_environ, (dict(os.environ),)))
    os.environ["EVALKIT_TEST_AFTER_FORK"] = "set after the fork"
    try:
        rows = [{"index": i, "text": "运费" * (i % 7)} for i in range(5000)]  # job and result: far more than a pipe buffer
        call = prefork.submit(_report, rows)
        assert call is not None
        pid, warmed_by, seen, back = call.result()
    finally:
        del os.environ["EVALKIT_TEST_AFTER_FORK"]
    assert pid == prefork.pid != os.getpid()
    assert warmed_by == [pid]  # the warm-up ran in the child, before the job
    assert seen == "set after the fork"  # the context was taken in the parent at submit time
    assert back == rows
    assert WARMED_BY == []  # nothing ran here
    prefork.cancel()  # a job was handed over: the call owns the child now, cancel is a no-op
    assert prefork.submit(_report, []) is None  # one job only


def _fail_in_job():
    raise BackendError("no server", where="backend.base_url")


def test_a_job_error_comes_back_as_itself():
    from evalkit.forked import Prefork

    call = Prefork(lambda: None).submit(_fail_in_job)
    with pytest.raises(BackendError, match="no server"):
        call.result()


def test_cancel_ends_the_waiting_child_at_once_and_reaps_it():
    from evalkit.forked import Prefork

    prefork = Prefork(lambda: time.sleep(60))
    prefork.cancel()
    with pytest.raises(ChildProcessError):  # gone and reaped, not a zombie
        os.waitpid(prefork.pid, os.WNOHANG)
    assert prefork.submit(_report, []) is None
    prefork.cancel()  # idempotent


def _exited(pid):
    """Dead but not reaped, and every thread gone: a zombie leader's other threads may still
    hold its files for a moment."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        state = fh.read().rsplit(")", 1)[1].split()[0]
    return state == "Z" and os.listdir(f"/proc/{pid}/task") == [str(pid)]


def test_a_child_that_is_gone_is_not_used_and_the_caller_forks_afresh():
    from evalkit.forked import Prefork

    prefork = Prefork(lambda: os._exit(0))
    deadline = time.monotonic() + 30
    while not _exited(prefork.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert prefork.submit(_report, [1]) is None  # its end of the job pipe is closed
    with pytest.raises(ChildProcessError):
        os.waitpid(prefork.pid, os.WNOHANG)  # reaped by the failed submit


def test_the_console_script_pre_forks_only_for_plain_runs_and_warms_the_named_backend():
    from evalkit.prefork_job import backend_on_command_line, wanted

    assert wanted(["+experiment=toolcall", "backend=api", "backend.base_url=http://127.0.0.1:1/v1"])
    assert wanted(["--config-dir=conf", "+experiment=mine"]) and wanted(["-cd", "conf", "+experiment=mine"])
    for flag in ("-m", "--multirun", "--cfg", "--info", "-c", "--hydra-help", "--shell-completion"):
        assert not wanted(["+experiment=toolcall", flag])
    assert backend_on_command_line(["backend=api", "backend.base_url=x"]) == "api"
    assert backend_on_command_line(["+experiment=toolcall", "backend.name=replay", "backend=api", "backend.timeout=3"]) == "api"
    assert backend_on_command_line(["++backend='api'"]) == "api"
    assert backend_on_command_line(["+experiment=toolcall", "backend.model=m"]) is None


STRESS_CTRL_C = """
import json, os
from evalkit.forked import ForkedCall
me, outcomes = os.getpid(), []
for _ in range(20):
    try:
        call = ForkedCall(int)
        call.interrupt()
        try:
            outcomes.append(call.result())
        except KeyboardInterrupt:
            outcomes.append("interrupted")
    finally:
        if os.getpid() != me:  # a child that escaped into this loop
            print("ESCAPED", flush=True)
            os._exit(99)
print(json.dumps(outcomes))
"""


def test_a_ctrl_c_at_any_moment_never_unwinds_the_child_into_the_parents_stack():
    """SIGINT sent right after the fork reaches the child during its set-up (Python's own
    after-fork hooks, then evalkit's). It must end up as the call's KeyboardInterrupt (or be
    too late to matter): never a traceback on the terminal, never an exception that returns
    the forked child into its parent's code. (In a fresh process, as the CLI forks.)"""
    proc = subprocess.run([sys.executable, "-c", STRESS_CTRL_C], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-2000:]
    outcomes = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(outcomes) == 20 and set(outcomes) <= {0, "interrupted"}
