"""From final per-sample records and metric objects to the ``metrics.json`` dict.

Shared by a normal run, ``evalkit-merge`` (shards) and ``evalkit-compare``, so the three
produce figure-for-figure identical files from the same samples.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

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


def scored_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records that take part in metrics: everything except failed requests without a
    fallback prediction (a failed text request counts as the parser's empty prediction)."""
    return [r for r in records if r.get("prediction") is not None or r.get("error_type") != "request"]


def update_metrics(metrics: Mapping[str, Any], records: list[dict[str, Any]]) -> None:
    scored = scored_records(records)
    for metric in metrics.values():
        for start in range(0, len(scored), UPDATE_CHUNK):
            part = scored[start : start + UPDATE_CHUNK]
            metric.update([r["prediction"] for r in part], [r["label"] for r in part])


def metric_results(metrics: Mapping[str, Any], *, any_scored: bool) -> dict[str, Any]:
    return {key: (to_jsonable(metric.compute()) if any_scored else None) for key, metric in metrics.items()}


def record_counts(records: list[dict[str, Any]]) -> dict[str, Any]:
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
    out: dict[str, Any] = {
        "num_samples": len(records),
        "num_parse_errors": sum(1 for r in records if r.get("error_type") == "parse"),
        "num_failed": sum(1 for r in records if r.get("error_type") == "request"),
        "num_repaired": sum(1 for r in records if r.get("repaired")),
        "num_cached": sum(1 for r in records if r.get("cached")),
    }
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
