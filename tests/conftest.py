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
