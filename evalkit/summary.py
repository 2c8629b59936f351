"""From final per-sample records and metric objects to the ``metrics.json`` dict.

Shared by a normal run, ``evalkit-merge`` (shards) and ``evalkit-compare``, so the three
produce figure-for-figure identical files from the same samples.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

UPDATE_CHUNK = 2048


def to_jsonable(value: Any) -> Any:
    """Tensors, numpy values and nested containers -> plain JSON types."""
    if hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def scored_records(records: Iterable[dict[str, Any]], *, failed: str = "exclude", empty: Any = None) -> list[dict[str, Any]]:
    """Records that take part in metrics. A failed request is no prediction: left out
    (``run.failed=exclude``, the default) or scored as the parser's empty prediction
    (``run.failed=empty``, set on the record in place)."""
    out: list[dict[str, Any]] = []
    for r in records:
        if r.get("error_type") == "request":
            if failed != "empty":
                continue
            r["prediction"] = copy.deepcopy(empty)
        out.append(r)
    return out


def update_metrics(metrics: Mapping[str, Any], scored: list[dict[str, Any]]) -> None:
    for metric in metrics.values():
        for start in range(0, len(scored), UPDATE_CHUNK):
            part = scored[start : start + UPDATE_CHUNK]
            metric.update([r["prediction"] for r in part], [r["label"] for r in part])


def add_sample_scores(metrics: Mapping[str, Any], scored: list[dict[str, Any]]) -> None:
    """``record["scores"][key]`` for every metric that scores samples (``sample_scores``)."""
    for record in scored:
        record.pop("scores", None)  # recomputed: a resumed record's old scores may be stale
    for key, metric in metrics.items():
        score = getattr(metric, "sample_scores", None)
        if not callable(score):
            continue
        for start in range(0, len(scored), UPDATE_CHUNK):
            part = scored[start : start + UPDATE_CHUNK]
            values = score([r["prediction"] for r in part], [r["label"] for r in part])
            for record, value in zip(part, values, strict=True):
                record.setdefault("scores", {})[key] = to_jsonable(value)


def metric_results(metrics: Mapping[str, Any], *, any_scored: bool) -> dict[str, Any]:
    return {key: (to_jsonable(metric.compute()) if any_scored else None) for key, metric in metrics.items()}


def record_counts(records: list[dict[str, Any]], *, num_scored: int | None = None) -> dict[str, Any]:
    """Counts, failures by reason, usage totals and latency figures over all samples."""
    usage: dict[str, int] = {}
    latencies = sorted(r["latency_s"] for r in records if r.get("latency_s") is not None)
    failures: dict[str, int] = {}
    for r in records:
        for k, v in (r.get("usage") or {}).items():
            if isinstance(v, (int, float)):
                usage[k] = usage.get(k, 0) + v
        if r.get("error_type") == "request":
            reason = str(r.get("error") or "error").split(":")[0][:60]
            failures[reason] = failures.get(reason, 0) + 1
    num_failed = sum(1 for r in records if r.get("error_type") == "request")
    out: dict[str, Any] = {
        "num_samples": len(records),
        "num_scored": len(records) - num_failed if num_scored is None else num_scored,
        "num_parse_errors": sum(1 for r in records if r.get("error_type") == "parse"),
        "num_failed": num_failed,
        "num_repaired": sum(1 for r in records if r.get("repaired")),
        "num_cached": sum(1 for r in records if r.get("cached")),
        "num_truncated": sum(1 for r in records if r.get("finish_reason") == "length"),  # cut at max_new_tokens
    }
    out["complete"] = num_failed == 0
    if failures:
        out["failures_by_reason"] = dict(sorted(failures.items()))
    if usage:
        out["usage"] = usage
    if latencies:
        out["latency_s"] = {
            "mean": round(sum(latencies) / len(latencies), 4),
            "p50": latencies[len(latencies) // 2],
            "max": latencies[-1],
            "total": round(sum(latencies), 4),
        }
    return out


def failed_share(metrics: Mapping[str, Any]) -> float:
    total = metrics.get("num_samples") or 0
    return (metrics.get("num_failed") or 0) / total if total else 0.0


def run_status(metrics: Mapping[str, Any], *, max_failed: float = 0.0) -> dict[str, Any]:
    """``complete`` (no failed sample) and whether the failed share is within ``run.max_failed``."""
    complete = not metrics.get("num_failed")
    return {"complete": complete, "within_max_failed": complete or failed_share(metrics) <= max_failed}
