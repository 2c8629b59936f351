"""The run's progress bar: done / failed / retrying counts and the completion rate.

Backends that retry (API) call :meth:`RunProgress.retrying` so users see why a run slows
down; the pipeline calls :meth:`RunProgress.advance` for every finished sample. Uses rich,
which degrades to a quiet final line when output is not a terminal (CI, pipes).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RunProgress:
    def __init__(self, total: int, *, description: str = "evaluating", console: Console | None = None, enabled: bool = True) -> None:
        self.total = total
        self.ok = 0
        self.failed = 0
        self.retrying_now = 0
        self.retries_total = 0
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._enabled = enabled and total > 0
        self._progress: Progress | None = None
        self._task: Any = None
        if self._enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console or Console(stderr=True),
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._progress.add_task(description, total=total, stats=self._stats())

    def _stats(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = (self.ok + self.failed) / elapsed
        return f"ok {self.ok} failed {self.failed} retrying {self.retrying_now} | {rate:.1f}/s"

    def __enter__(self) -> "RunProgress":
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._refresh()
            self._progress.stop()

    def _refresh(self, advance: int = 0) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=advance, stats=self._stats())

    def advance(self, ok: bool = True, n: int = 1) -> None:
        with self._lock:
            if ok:
                self.ok += n
            else:
                self.failed += n
            self._refresh(n)

    def retrying(self, delta: int) -> None:
        """A request entered (+1) or left (-1) backoff before another attempt."""
        with self._lock:
            self.retrying_now = max(0, self.retrying_now + delta)
            if delta > 0:
                self.retries_total += delta
            self._refresh()

    @property
    def rate(self) -> float:
        return (self.ok + self.failed) / max(time.monotonic() - self._start, 1e-9)
