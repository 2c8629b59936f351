"""Replay saved model outputs as if a backend had produced them.

Two file shapes are accepted, because users have both:

* JSONL rows ``{"id": ..., "output": "..."}`` (or ``"outputs": [...]`` for n > 1), matched to
  the dataset by ``id`` (configurable with ``id_key``);
* the seeds' saved-results JSON list ``[{"result": "...", "error": null, "status_code": 200,
  "time_cost": 1.2}, ...]``, matched by position.

A sample with no saved output (missing row, ``result: null`` or an ``error``) becomes a
per-sample failure with a reason, never a crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import logging

from evalkit.data import read_records
from evalkit.paths import resolve_path
from evalkit.errors import ConfigError, DataError
from evalkit.types import OnResult, Request, Result


log = logging.getLogger("evalkit.replay")


class ReplayBackend:
    """Serves outputs from a file; ``path`` is required."""

    uses_messages = False  # outputs are looked up by id/position: no prompt has to render
    light = True  # needs no torch: the run may load the metrics' libraries while it replays

    def __init__(self, path: str | None = None, id_key: str = "id", output_key: str | None = None, match: str = "auto") -> None:
        if not path:
            raise ConfigError("the replay backend needs a file of saved outputs", where="backend.path", fix="add backend.path=/path/to/outputs.jsonl")
        if match not in ("auto", "id", "position"):
            raise ConfigError(f"match must be auto, id or position, got {match!r}", where="backend.match")
        self.path = Path(resolve_path(path))
        self.id_key = id_key
        self.output_key = output_key
        records = read_records(self.path, key="backend.path")
        if not records:
            raise DataError("no saved outputs in file", where=str(self.path))
        by_position = match == "position" or (match == "auto" and all(isinstance(r, dict) and self.id_key not in r for _, r in records))
        self.by_position = by_position
        self._rows: dict[Any, tuple[str, dict[str, Any]]] = {}
        for position, (where, row) in enumerate(records):
            if not isinstance(row, dict):
                raise DataError(f"each saved output must be a JSON object, got {type(row).__name__}", where=where)
            key = position if by_position else row.get(self.id_key)
            if key is None:
                raise DataError(f"saved output has no '{self.id_key}'", where=where, fix="add ids, or set backend.match=position")
            if key in self._rows:
                log.warning("%s: id %r appears again (first at %s); the later output is used", where, key, self._rows[key][0])
            self._rows[key] = (where, row)

    def _outputs(self, row: dict[str, Any]) -> tuple[list[str] | None, str | None]:
        if row.get("error"):
            return None, f"saved error: {str(row['error'])[:120]}"
        keys = [self.output_key] if self.output_key else ["outputs", "output", "result"]
        for key in keys:
            if key in row and row[key] is not None:
                value = row[key]
                if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
                    return list(value), None
                if isinstance(value, str):
                    return [value], None
                return [json.dumps(value, ensure_ascii=False)], None
        return None, "no saved output"

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        if not self.by_position and requests and not any(r.id in self._rows for r in requests):
            request_types = {type(r.id) for r in requests}
            saved_types = {type(k) for k in self._rows}
            if request_types == saved_types:
                # Could be a resumed run whose remaining samples simply have no saved output.
                log.warning("none of the %d pending sample ids has a saved output in %s", len(requests), self.path)
        if not self.by_position and requests and not any(r.id in self._rows for r in requests) and request_types != saved_types:
            raise DataError(
                f"no saved output matches any dataset id (dataset ids like {[r.id for r in requests[:3]]!r}, "
                f"saved ids like {list(self._rows)[:3]!r})",
                where=f"backend.path={self.path}",
                fix="check backend.id_key and that both files use the same ids (and types: 5 vs \"5\"), or set backend.match=position",
            )
        for request in requests:
            key = request.index if self.by_position else request.id
            found = self._rows.get(key)
            if found is None:
                on_result(Result(index=request.index, error="no saved output for this id" if not self.by_position else "no saved output at this position"))
                continue
            _, row = found
            outputs, error = self._outputs(row)
            latency = row.get("time_cost") or row.get("latency_s")
            on_result(
                Result(
                    index=request.index,
                    outputs=outputs,
                    error=error,
                    latency_s=float(latency) if isinstance(latency, (int, float)) else None,
                    usage=row.get("usage") if isinstance(row.get("usage"), dict) else None,
                )
            )

    def score(self, requests: Sequence[Request], head: Any, on_result: OnResult) -> None:
        """Score-mode replay: ``Result.prediction`` from saved scores — LLaMA-Factory's RM
        ``generated_predictions.jsonl`` (``{"chosen", "rejected"}`` per line, by position), or
        ``{"scores": [...]}`` / ``{"score": x}`` rows. Its scores are rounded to 2 decimals, so
        equal pairs may be ties of the rounding: a warning says how many."""
        rounded = ties = 0
        for request in requests:
            found = self._rows.get(request.index if self.by_position else request.id)
            if found is None:
                on_result(Result(index=request.index, error="no saved scores for this sample"))
                continue
            where, row = found
            keys = [k for k in ("chosen", "rejected", "scores", "score") if k in row]
            if not keys:
                on_result(Result(index=request.index, error=f"no saved scores at {where} (expected chosen/rejected, scores or score)"))
                continue
            prediction = {k: row[k] for k in keys}
            if isinstance(row.get("chosen"), (int, float)) and isinstance(row.get("rejected"), (int, float)):
                rounded += all(round(v, 2) == v for v in (row["chosen"], row["rejected"]))
                ties += row["chosen"] == row["rejected"]
            on_result(Result(index=request.index, prediction=prediction))
        if rounded and rounded == len(requests):
            log.warning(
                "%s: saved scores have at most 2 decimals (LLaMA-Factory rounds generated_predictions.jsonl); "
                "%d of %d pairs are tied, some only by the rounding — prefer unrounded scores for accuracy",
                self.path, ties, len(requests),
            )

    def close(self) -> None:
        pass
