"""``predictions.jsonl``: each finished sample is appended and flushed the moment it completes.

Why: a killed run must keep everything finished before the kill. On start, an existing
``predictions.jsonl`` in the same run directory is read back: rows that succeeded are kept
(and not sent again), rows that failed or were cut off mid-line are dropped so they are
retried. ``finalize`` rewrites the file atomically in dataset order with each sample once.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger("evalkit")

PREDICTIONS_FILE = "predictions.jsonl"
ASIDE_FILE = "predictions.aside.jsonl"  # finished records of samples a re-run did not select


def _finite(value: Any) -> Any:
    if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _dumps(record: dict[str, Any]) -> str:
    try:
        return json.dumps(record, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:  # NaN/Infinity (e.g. parsed from model JSON) is not valid JSON: write null
        return json.dumps(_finite(record), ensure_ascii=False, default=str)


def read_predictions(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a predictions file, skipping a torn last line."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill mid-write
            if isinstance(record, dict) and "index" in record:
                yield record


def _write_atomically(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(_dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def rewrite_predictions(run_dir: str | Path, records: list[dict[str, Any]]) -> None:
    """Replace a run dir's ``predictions.jsonl`` with ``records`` atomically (e.g. after
    per-sample scores were added to a finished run's records)."""
    _write_atomically(Path(run_dir) / PREDICTIONS_FILE, records)


class PredictionStore:
    """Append-only writer with resume support, keyed by the sample's dataset ``index``."""

    def __init__(self, run_dir: str | Path, *, resume: bool = True) -> None:
        self.path = Path(run_dir) / PREDICTIONS_FILE
        self.aside_path = Path(run_dir) / ASIDE_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: dict[int, dict[str, Any]] = {}
        if resume:
            for source in (self.aside_path, self.path):  # the main file wins for a sample in both
                for record in read_predictions(source):
                    if record.get("error_type") == "request":
                        continue  # failed requests are retried
                    self.records[int(record["index"])] = record
        elif self.aside_path.exists():
            self.aside_path.unlink()  # a fresh start: records aside belong to the old setup
        # Rewrite what we keep, so the file never holds a row twice.
        self._rewrite(sorted(self.records.values(), key=lambda r: r["index"]))
        self._fh = self.path.open("a", encoding="utf-8")

    def done(self, index: int) -> bool:
        return index in self.records

    def add(self, record: dict[str, Any]) -> None:
        """Persist one finished sample now (append + flush)."""
        index = int(record["index"])
        self.records[index] = record
        self._fh.write(_dumps(record) + "\n")
        self._fh.flush()

    def _rewrite(self, records: list[dict[str, Any]], path: Path | None = None) -> None:
        _write_atomically(path or self.path, records)

    def finalize(self, keep: set[int] | None = None, *, rewrite: bool = True) -> list[dict[str, Any]]:
        """Rewrite the file in dataset order (one row per sample) and return the rows.

        ``keep``: the indices of this run's samples — rows left by an earlier run over more
        data (a larger ``data.limit``, another shard) are dropped. ``rewrite=False``: the
        caller rewrites the file with these rows itself (after scoring them), so it is left
        as appended (every finished sample flushed; a re-opened store cleans it up).
        """
        self._fh.close()
        if keep is not None:
            aside = sorted((r for i, r in self.records.items() if i not in keep), key=lambda r: r["index"])
            self.records = {i: r for i, r in self.records.items() if i in keep}
            self._set_aside(aside)
        ordered = sorted(self.records.values(), key=lambda r: r["index"])
        # Last write wins for a retried sample: records dict already holds the newest.
        if rewrite:
            self._rewrite(ordered)
        return ordered

    def _set_aside(self, aside: list[dict[str, Any]]) -> None:
        """Keep finished records this run did not select (a smaller ``data.limit``, another
        shard) in ``predictions.aside.jsonl``: a later run that selects them again reuses them."""
        if not aside:
            self.aside_path.unlink(missing_ok=True)
            return
        log.warning(
            "%d finished record(s) in %s are outside this run's samples; kept aside in %s (a later run that selects them reuses them)",
            len(aside), self.path, self.aside_path.name,
        )
        self._rewrite(aside, self.aside_path)

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the file's contents with ``records`` (:func:`rewrite_predictions`)."""
        self._rewrite(records)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
