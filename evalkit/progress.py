"""The run's progress: a bar in terminals, log lines everywhere else.

The pipeline calls :meth:`RunProgress.advance` for every finished sample; backends that
retry call :meth:`RunProgress.retrying`, and may publish what they are doing with
:meth:`RunProgress.update_status` (``concurrency=48, retrying=3, hedged=1``), shown in the
bar and in each log line.

When stderr is a terminal a rich bar is drawn whose columns fit 80 columns. Otherwise (nohup,
Slurm, CI, pipes) a bar would show nothing until the end, so a plain progress line goes to
the ``evalkit`` logger (console and ``run.log``) every ``EVALKIT_PROGRESS_INTERVAL`` seconds
(default 10) and at every tenth of the run, whichever comes first, plus a final line::

    progress 12/48 (25%) ok 11 failed 1 retrying 2 | 3.1/s | elapsed 0:00:04 | ETA 0:00:12
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger("evalkit")

INTERVAL_ENV = "EVALKIT_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_S = 10.0
STEPS = 10  # also log at every tenth of the run


def _clock(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "-:--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _interval() -> float:
    try:
        return max(0.05, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


class RunProgress:
    """Counts finished samples and shows them; thread-safe (API backends report from
    worker threads). ``mode`` is ``"bar"``, ``"log"`` or ``None`` (auto: bar on a terminal)."""

    def __init__(self, total: int, *, description: str = "evaluating", console: Any = None, enabled: bool = True, mode: str | None = None) -> None:
        self.total = total
        self.ok = 0
        self.failed = 0
        self.retrying_now = 0
        self.retries_total = 0
        self.status: dict[str, Any] = {}
        self.description = description
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._enabled = enabled and total > 0
        self._progress: Any = None
        self._task: Any = None
        self._interval = _interval()
        self._last_log = self._start
        self._next_step = 1
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.mode: str | None = None
        self._stats_width = 80
        if not self._enabled:
            return
        from rich.console import Console

        console = console or Console(stderr=True)
        self.mode = mode or ("bar" if console.is_terminal else "log")
        if self.mode == "bar":
            self._stats_width = max(12, console.width - 52)
            self._progress = self._make_bar(console)
            self._task = self._progress.add_task(description, total=total, stats=self._stats(short=True))

    @staticmethod
    def _make_bar(console: Any) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.table import Column

        def fixed() -> Column:
            return Column(no_wrap=True)

        # Counts and times never shrink; the stats text is cut to fit (``_stats``) and the bar
        # takes what is left, so the line fits 80 columns and elapsed/ETA always show.
        return Progress(
            TextColumn("{task.percentage:>3.0f}%", table_column=fixed()),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=5)),
            MofNCompleteColumn(table_column=fixed()),
            TextColumn("{task.fields[stats]}", table_column=Column(no_wrap=True, ratio=2)),
            TimeElapsedColumn(table_column=fixed()),
            TextColumn("ETA", table_column=fixed()),
            TimeRemainingColumn(compact=True, table_column=fixed()),
            console=console,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
            expand=True,
        )

    # -- what is shown -------------------------------------------------------------------

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self._start, 1e-9)

    def _extra(self) -> str:
        return "".join(f" {k} {v}" for k, v in self.status.items() if v is not None)

    def _stats(self, *, short: bool = False) -> str:
        if short:  # the bar: only what is not zero besides ok
            text = f"ok {self.ok}"
            if self.failed:
                text += f" fail {self.failed}"
            if self.retrying_now:
                text += f" retry {self.retrying_now}"
            text += self._extra()
            return text if len(text) <= self._stats_width else text[: self._stats_width - 1] + "…"
        return f"ok {self.ok} failed {self.failed} retrying {self.retrying_now}{self._extra()}"

    def line(self) -> str:
        """The progress log line: done/total, counts, status fields, rate, elapsed, ETA."""
        elapsed = time.monotonic() - self._start
        rate = self.done / max(elapsed, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else None
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return f"progress {self.done}/{self.total} ({pct:.0f}%) {self._stats()} | {rate:.1f}/s | elapsed {_clock(elapsed)} | ETA {_clock(eta)}"

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> "RunProgress":
        self._start = self._last_log = time.monotonic()
        if self._progress is not None:
            self._progress.start()
        elif self.mode == "log":
            self._ticker = threading.Thread(target=self._tick, name="evalkit-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        if self._progress is not None:
            self._refresh()
            self._progress.stop()
        elif self.mode == "log":
            log.info("%s", self.line().replace("progress", "progress done", 1))

    def _tick(self) -> None:
        """Log on time even when nothing finishes (all requests waiting or backing off)."""
        while not self._stop.wait(min(self._interval, 1.0)):
            with self._lock:
                if time.monotonic() - self._last_log >= self._interval:
                    self._log_now()

    def _log_now(self) -> None:
        self._last_log = time.monotonic()
        log.info("%s", self.line())

    def _refresh(self, advance: int = 0) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=advance, stats=self._stats(short=True))
        elif self.mode == "log" and self.total and self.done * STEPS >= self._next_step * self.total:
            while self.done * STEPS >= self._next_step * self.total:
                self._next_step += 1
            # the final line comes from __exit__; a fast run logs no step lines at all
            if self.done < self.total and time.monotonic() - self._last_log >= min(1.0, self._interval):
                self._log_now()

    # -- what callers report -----------------------------------------------------------------

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

    def update_status(self, **fields: Any) -> None:
        """Publish backend state shown with the counts (``concurrency=48, hedged=1``);
        ``retrying=N`` sets the retrying count itself; a field set to ``None`` is removed."""
        with self._lock:
            if "retrying" in fields:
                value = fields.pop("retrying")
                self.retrying_now = max(0, int(value or 0))
            for key, value in fields.items():
                if value is None:
                    self.status.pop(key, None)
                else:
                    self.status[key] = value
            self._refresh()
