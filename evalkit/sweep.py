"""Hydra callback: at the end of ``evalkit -m ...`` write the sweep's comparison.

``summary.json`` / ``summary.xlsx`` and a console table land in the sweep directory: one
row per job with its overrides and headline figures, and each job's flips against job 0.
Jobs that failed (no ``metrics.json``) are listed and skipped; incomplete jobs (their
metrics say ``complete: false``: some samples failed) are compared but listed with the failed
ones, and either makes ``evalkit -m`` exit non-zero.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("evalkit")

# Job directories of the last sweep that ended without (complete) results; the CLI turns a
# non-empty list into a non-zero exit status (the callback runs in the launching process).
FAILED_JOBS: list[str] = []
# Output dirs of jobs whose task failed in this process (basic launcher), with the error line:
# such a job may have written metrics.json before its reports failed.
JOB_ERRORS: dict[str, str] = {}


def is_incomplete(job_dir: Path) -> bool:
    """A finished job with more failed samples than its ``run.max_failed`` allows."""
    import json

    try:
        metrics = json.loads((job_dir / "metrics.json").read_text(encoding="utf-8"))
        return metrics.get("complete") is False and not metrics.get("within_max_failed", False)
    except (OSError, ValueError, AttributeError):
        return False


def job_dirs(sweep_dir: Path, since: float | None = None) -> list[Path]:
    """Job directories of the sweep; with ``since``, only those this sweep (re)wrote —
    a sweep re-run into an old sweep dir must not summarise the old jobs."""
    dirs = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra").is_dir()]
    if since is not None:
        dirs = [p for p in dirs if (p / ".hydra" / "config.yaml").exists() and (p / ".hydra" / "config.yaml").stat().st_mtime >= since - 1]

    def order(p: Path) -> tuple[int, Any]:
        return (0, int(p.name)) if p.name.isdigit() else (1, p.name)

    return sorted(dirs, key=order)


def _redact_sweep_root(config: DictConfig) -> None:
    """Hydra saves the sweep's whole config (overrides included) as ``multirun.yaml`` in the
    sweep dir; scrub secrets from it like from each job's ``.hydra/``."""
    from evalkit.secrets import redact_text

    try:
        path = Path(str(config.hydra.sweep.dir)) / "multirun.yaml"
    except Exception:
        return
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        clean = redact_text(text)
        if clean != text:
            path.write_text(clean, encoding="utf-8")


class SweepSummary(Callback):
    def __init__(self) -> None:
        self._started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        import time

        from evalkit.secrets import install_log_redaction

        self._started = time.time()
        install_log_redaction()  # the launcher logs every job's overrides next

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        _redact_sweep_root(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from evalkit.compare import build_comparison, print_comparison, write_comparison
        from evalkit.errors import EvalKitError
        from evalkit.runs import load_run

        _redact_sweep_root(config)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        finished, failed = [], []
        errors = {str(Path(k).resolve()) for k in JOB_ERRORS}
        for d in job_dirs(sweep_dir, since=self._started):
            ok = (d / "metrics.json").exists() and str(d.resolve()) not in errors
            (finished if ok else failed).append(d)
        incomplete = [d for d in finished if is_incomplete(d)]
        FAILED_JOBS[:] = [str(d) for d in failed] + [f"{d} (incomplete)" for d in incomplete]
        if failed:
            log.warning("jobs without results (failed?): %s", ", ".join(str(d) for d in failed))
        if incomplete:
            log.warning("incomplete jobs (failed samples): %s", ", ".join(str(d) for d in incomplete))
        if not finished:
            return
        try:
            runs = [load_run(d) for d in finished]
            comparison = build_comparison(runs)
        except EvalKitError as exc:
            log.error("sweep summary skipped: %s", exc)
            return
        comparison["failed_jobs"] = [str(d) for d in failed]
        comparison["incomplete_jobs"] = [str(d) for d in incomplete]
        write_comparison(sweep_dir, comparison)
        from evalkit.html import write_compare_html

        write_compare_html(sweep_dir, runs, comparison=comparison)
        print_comparison(comparison)
        log.info("sweep summary written to %s", sweep_dir / "summary.json")
