"""Per-sample right/wrong, read from the ``scores`` the metrics wrote on each record.

Flips, bad cases and comparisons all use this, so they agree with ``metrics.json``: a failed
sample (no prediction) has no verdict anywhere. A score is a verdict when it is a bool, or a
dict with a bool ``correct`` or ``valid``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from evalkit.records import is_failed


def as_verdict(score: Any) -> bool | None:
    if isinstance(score, bool):
        return score
    if isinstance(score, Mapping):
        for key in ("correct", "valid"):
            if isinstance(score.get(key), bool):
                return score[key]
    return None


def verdict_metric(records: Iterable[Mapping[str, Any]], preferred: str | None = None) -> str | None:
    """The metric key whose per-sample scores are verdicts (``preferred`` first, else the first found)."""
    found: list[str] = []
    for record in records:
        for key, score in (record.get("scores") or {}).items():
            if key not in found and as_verdict(score) is not None:
                found.append(key)
    if preferred in found:
        return preferred
    return found[0] if found else None


def verdict(record: Mapping[str, Any], metric: str) -> bool | None:
    """True/False for a scored sample, None for a failed or unscored one."""
    if is_failed(record):
        return None
    return as_verdict((record.get("scores") or {}).get(metric))
