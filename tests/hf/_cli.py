"""Start several `evalkit` CLI runs at once and collect them as tests need them.

Each run spends seconds importing torch and transformers; started together at the top of a
test module they overlap with each other and with the in-process tests. Output goes to files
(not pipes), so a chatty run can never block on a full pipe while nobody reads it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import script


class BackgroundRuns:
    """``start(name, args, cwd=...)`` now, ``get(name)`` -> ``CompletedProcess`` later."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._procs: dict[str, subprocess.Popen] = {}
        self._done: dict[str, subprocess.CompletedProcess] = {}

    def start(self, name: str, args: list[str], *, cwd: Path) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        env.pop("HYDRA_FULL_ERROR", None)
        env.pop("EVALKIT_VERBOSE", None)
        with (self.log_dir / f"{name}.out").open("w") as out, (self.log_dir / f"{name}.err").open("w") as err:
            self._procs[name] = subprocess.Popen([script("evalkit"), *args], cwd=str(cwd), env=env, stdout=out, stderr=err, text=True)

    def get(self, name: str, timeout: float = 300) -> subprocess.CompletedProcess:
        if name not in self._done:
            proc = self._procs[name]
            proc.wait(timeout=timeout)
            out = (self.log_dir / f"{name}.out").read_text()
            err = (self.log_dir / f"{name}.err").read_text()
            self._done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        return self._done[name]

    def close(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
