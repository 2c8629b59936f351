"""evalkit.forked: a function in a forked child, its value or its error back in the parent."""

from __future__ import annotations

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
        started.write_text("yes")
        try:
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
