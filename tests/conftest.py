"""Shared test helpers: run the installed console scripts in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def script(name: str) -> str:
    """Path of an installed console script next to the running interpreter."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    assert found, f"console script {name!r} is not installed (pip install -e .)"
    return found


def run_cli(args: list[str], *, cwd: Path | str | None = None, env: dict[str, str] | None = None, timeout: float = 300, prog: str = "evalkit") -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    full_env.pop("HYDRA_FULL_ERROR", None)
    full_env.pop("EVALKIT_VERBOSE", None)
    if env:
        full_env.update(env)
    return subprocess.run([script(prog), *args], cwd=str(cwd) if cwd else None, env=full_env, capture_output=True, text=True, timeout=timeout)


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single error line a failed run prints (asserting there is no traceback)."""
    assert proc.returncode != 0, f"expected failure, got success:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("evalkit: error:")]
    assert len(lines) == 1, f"expected exactly one error line, stderr was:\n{proc.stderr}"
    return lines[0]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def cli():
    return run_cli


def free_port() -> int:
    """A port for servers that must be told one up front (vLLM's). Servers of our own bind port
    0 and report theirs; DDP tests use :func:`rendezvous`, which needs no port at all."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rendezvous(directory: Path | str) -> str:
    """A race-free ``init_method`` for gloo process groups: a file, not a port."""
    path = Path(directory) / "ddp-rendezvous"
    path.unlink(missing_ok=True)
    return f"file://{path}"


# -- markers -----------------------------------------------------------------------------------
# `make test-fast` runs `-m "not slow and not vllm and not browser"`; these folders and files
# are marked here so a new test in them is marked without anyone remembering to.
SLOW_PATHS = (
    "tests/vllm/", "tests/sweep/", "tests/training/test_ddp.py", "tests/metrics/test_ddp.py",
    "tests/reward/test_ddp.py", "tests/reward/test_reference.py", "tests/html/test_pages.py", "tests/html/test_safety.py",
    "tests/core/test_packaging.py", "tests/api/test_resilience.py",
)
MARKS_BY_PATH = {"tests/vllm/": ("vllm",), "tests/html/test_pages.py": ("browser",), "tests/html/test_safety.py": ("browser",)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath)).resolve().relative_to(REPO).as_posix()
        if path.startswith(SLOW_PATHS):
            item.add_marker(pytest.mark.slow)
        for prefix, marks in MARKS_BY_PATH.items():
            if path.startswith(prefix):
                for mark in marks:
                    item.add_marker(getattr(pytest.mark, mark))
