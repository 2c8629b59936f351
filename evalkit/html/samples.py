"""The samples embedded in ``report.html``: compact, size-bounded, bad cases first.

Long strings that repeat across samples (a system prompt sent with every request) are stored
once in a string table; each field is cut at :data:`MAX_FIELD_CHARS`; samples are added until
the byte budget is spent — failed, wrong and parse-error samples before right ones, so what a
user opens the explorer for is always there — and the page says how many were left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.verdicts import as_verdict

MAX_FIELD_CHARS = 4000
BUDGET_BYTES = 4_000_000  # the page stays under ~5 MB with charts and code around it
INTERN_MIN_CHARS = 48
SUBSET_KEYS = ("subset", "category")


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _cut(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_FIELD_CHARS:
        return text, False
    return text[:MAX_FIELD_CHARS] + f"… [{len(text) - MAX_FIELD_CHARS} more characters in predictions.jsonl]", True


def record_verdict(record: Mapping[str, Any]) -> bool | None:
    """Right (all per-sample verdicts true) / wrong (any false) / None (no verdict: failed
    request, or no metric that scores right/wrong)."""
    if record.get("error_type") == "request":
        return None
    verdicts = [v for v in (as_verdict(s) for s in (record.get("scores") or {}).values()) if v is not None]
    return all(verdicts) if verdicts else None


def record_subset(record: Mapping[str, Any], row: Mapping[str, Any] | None = None) -> str | None:
    for source in (record, row or {}):
        for key in SUBSET_KEYS:
            value = source.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                return str(value)
    return None


class Strings:
    """A string table: long strings are stored once and referred to by position."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}
        self.bytes = 0

    def ref(self, text: str) -> Any:
        if len(text) < INTERN_MIN_CHARS:
            return text
        if text not in self._index:
            self._index[text] = len(self.items)
            self.items.append(text)
            self.bytes += len(text.encode("utf-8")) + 3
        return self._index[text]


def text_ref(value: Any, strings: Strings, cuts: list[int]) -> Any:
    """``value`` as text (JSON for structures), cut to size, as a string-table reference."""
    if value is None:
        return None
    text = value if isinstance(value, str) else _json(value)
    text, cut = _cut(text)
    cuts[0] += cut
    return strings.ref(text)


def compact(record: Mapping[str, Any], row: Mapping[str, Any] | None, strings: Strings, cuts: list[int]) -> dict[str, Any]:
    messages = record.get("messages") if isinstance(record.get("messages"), list) else []
    out = {
        "i": record.get("index"),
        "id": str(record.get("id")),
        "et": record.get("error_type") or "",
        "ok": record_verdict(record),
        "sub": record_subset(record, row),
        "e": record.get("error"),
        "m": [[str(m.get("role", "")), text_ref(m.get("content"), strings, cuts)] for m in messages if isinstance(m, Mapping)],
        "o": text_ref(record.get("output"), strings, cuts),
        "p": text_ref(record.get("prediction"), strings, cuts),
        "l": text_ref(record.get("label"), strings, cuts),
        "s": record.get("scores") or {},
    }
    if record.get("cached"):
        out["c"] = 1
    return out


def _priority(record: Mapping[str, Any]) -> int:
    if record.get("error_type"):
        return 0
    return {False: 0, None: 1, True: 2}[record_verdict(record)]


def sample_payload(records: Sequence[Mapping[str, Any]], rows: Mapping[int, Mapping[str, Any]] | None = None, *, budget: int = BUDGET_BYTES) -> dict[str, Any]:
    """``{"strings", "samples", "total", "embedded", "cut_fields", "budget"}`` for the explorer."""
    rows = rows or {}
    strings = Strings()
    cuts = [0]
    chosen: list[dict[str, Any]] = []
    used = 0
    order = sorted(range(len(records)), key=lambda i: _priority(records[i]))
    for position in order:
        record = records[position]
        before = strings.bytes
        item = compact(record, rows.get(record.get("index")), strings, cuts)
        size = len(_json(item).encode("utf-8")) + (strings.bytes - before)
        if used + size > budget and chosen:
            break
        used += size
        chosen.append(item)
    chosen.sort(key=lambda s: (s["i"] is None, s["i"] if isinstance(s["i"], int) else 0))
    # (the strings of the one sample that did not fit stay in the table: a few KB at most)
    return {"strings": strings.items, "samples": chosen, "total": len(records), "embedded": len(chosen), "cut_fields": cuts[0], "budget": budget}

