"""Fixtures for the API backend tests: a real OpenAI-compatible server on 127.0.0.1.

``stub`` starts :class:`tests.servers.openai_stub.StubServer` in a background thread (fresh
per test, no latency or faults until the test configures them). ``api_cli`` runs the
installed ``evalkit`` console script against it on the small tool-call data in ``data/``,
whose prompt embeds each row's label after ``#expect:`` so the server answers with it.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import run_cli, script
from tests.servers.openai_stub import StubServer, messages_hash

DATA = Path(__file__).resolve().parent / "data"
TOOLCALL_DATA = DATA / "toolcall.jsonl"
PROMPT = DATA / "prompt.yaml"
NUM_ROWS = sum(1 for line in TOOLCALL_DATA.read_text(encoding="utf-8").splitlines() if line.strip())

# Backoff small enough that tests spend milliseconds, not seconds, waiting.
FAST_RETRIES = ["backend.backoff_initial=0.02", "backend.backoff_max=0.2", "backend.backoff_jitter=0.5"]


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(model="m") as server:
        yield server


@pytest.fixture
def closed_url() -> Iterator[str]:
    """The URL of a port that refuses connections: bound (port 0) and held, never listening,
    so no other process can take it while the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


class StubProcess:
    """The stub server in its own process (``kill -9`` works on it); port 0, read from READY."""

    def __init__(self, *args: str) -> None:
        import sys

        stub = Path(__file__).resolve().parents[1] / "servers" / "openai_stub.py"
        self.proc = subprocess.Popen([sys.executable, str(stub), "--model", "m", *args], stdout=subprocess.PIPE, text=True)
        line = (self.proc.stdout.readline() if self.proc.stdout else "").strip()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"stub server did not start: {line!r}")
        self.base_url = line.split(" ", 1)[1]

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.base_url.rsplit("/v1", 1)[0] + "/_stats", timeout=10) as reply:
            return json.loads(reply.read())

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no goodbye to the connections in flight
        self.proc.wait(10)


@pytest.fixture
def stub_process():
    """Start stub server processes: ``stub_process("--latency", "0.05")``; all killed at the end."""
    started: list[StubProcess] = []

    def start(*args: str) -> StubProcess:
        started.append(StubProcess(*args))
        return started[-1]

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.kill()


def api_args(base_url: str, tmp_path: Path, *extra: str, run_dir: Path | None = None) -> list[str]:
    return [
        "+experiment=toolcall",
        "backend=api",
        f"backend.base_url={base_url}",
        "backend.model=m",
        f"data.path={TOOLCALL_DATA}",
        f"prompt.file={PROMPT}",
        f"cache.dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir or tmp_path / 'run'}",
        "run.progress=false",
        "report.excel=false",
        *FAST_RETRIES,
        *extra,
    ]


@pytest.fixture
def api_cli():
    """Run ``evalkit`` with the API args; returns the CompletedProcess."""

    def run(base_url: str, tmp_path: Path, *extra: str, env: dict[str, str] | None = None, run_dir: Path | None = None, timeout: float = 120):
        return run_cli(api_args(base_url, tmp_path, *extra, run_dir=run_dir), env=env, timeout=timeout)

    return run


def start_cli(base_url: str, tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``evalkit`` in the background (for the kill -9 test)."""
    import os

    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [script("evalkit"), *api_args(base_url, tmp_path, *extra)],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def complete_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a predictions file that may end in a line torn by a kill."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def row_hash(row: dict[str, Any]) -> str:
    return messages_hash(row["messages"])


def files_containing(roots: list[Path], needle: str) -> list[Path]:
    """Every file under ``roots`` whose raw bytes contain ``needle`` (SQLite WAL included)."""
    data = needle.encode("utf-8")
    hits = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file() and data in path.read_bytes():
                hits.append(path)
    return hits

