"""vLLM's dtype and log routing, without starting an engine (the engine test is
test_vllm_matches_hf.py)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from evalkit_vllm.logs import LOGGERS, RUN_LOG_ENV, STARTUP_LOGGERS, route_vllm_logs
from evalkit_vllm.settings import resolve_dtype


@pytest.mark.parametrize(
    "dtype, stored, on_cpu, expected",
    [
        ("auto", "float32", True, "float32"),
        ("auto", "bfloat16", True, "float32"),  # CPU: float32, as backend=hf
        ("auto", "float32", False, "float32"),  # GPU: the checkpoint's own dtype (vLLM would pick half)
        ("auto", "float16", False, "float16"),
        ("auto", None, False, "bfloat16"),
        ("half", "float32", True, "float16"),
        ("float", "bfloat16", False, "float32"),
        ("bfloat16", "float32", True, "bfloat16"),
    ],
)
def test_dtype_auto_is_resolved_as_the_hf_backend_does(tmp_path, dtype, stored, on_cpu, expected):
    (tmp_path / "config.json").write_text(json.dumps({"torch_dtype": stored} if stored else {}))
    chosen, why = resolve_dtype(dtype, str(tmp_path), on_cpu=on_cpu)
    assert chosen == expected
    assert why.startswith(f"backend.dtype={dtype}")


ENV = ("VLLM_CONFIGURE_LOGGING", "VLLM_LOGGING_CONFIG_PATH", "EVALKIT_VERBOSE", RUN_LOG_ENV, "VLLM_LOGGING_LEVEL")


@pytest.fixture
def run_logging(tmp_path):
    """A root logger shaped like Hydra's job logging (a console handler and run.log); the
    environment and loggers route_vllm_logs touches are restored afterwards."""
    import os

    saved_env = {name: os.environ.pop(name, None) for name in ENV}
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    console = logging.StreamHandler(io.StringIO())
    run_log = logging.FileHandler(tmp_path / "run.log", encoding="utf-8")
    root.handlers[:] = [console, run_log]
    root.setLevel(logging.INFO)
    touched = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate, logging.getLogger(name).level) for name in (*LOGGERS, *STARTUP_LOGGERS)}
    for name in LOGGERS:  # as in a fresh process: an earlier `import vllm` in this session set its level
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield console, tmp_path / "run.log"
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, (handlers, propagate, level) in touched.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(level)
    run_log.close()
    for name, value in saved_env.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


def test_vllm_records_reach_run_log_only(run_logging):
    import os

    console, run_log = run_logging
    assert route_vllm_logs() == str(run_log)
    assert os.environ["VLLM_CONFIGURE_LOGGING"] == "0" and os.environ[RUN_LOG_ENV] == str(run_log)
    logging.getLogger("vllm.engine").info("engine internals")
    logging.getLogger("evalkit").info("evalkit line")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "engine internals" in run_log.read_text() and "evalkit line" in run_log.read_text()
    assert "engine internals" not in console.stream.getvalue() and "evalkit line" in console.stream.getvalue()


def test_verbose_and_user_settings_leave_vllm_logging_alone(run_logging, monkeypatch):
    monkeypatch.setenv("EVALKIT_VERBOSE", "1")
    assert route_vllm_logs() is None
    monkeypatch.delenv("EVALKIT_VERBOSE")
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", "/etc/vllm-logging.json")
    assert route_vllm_logs() is None
