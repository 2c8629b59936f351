"""Checking token-level rows (``{"id", "input_ids": [...], "labels": [...]}``) before scoring.

Why up front: a row whose labels are one entry short, or whose label is 7.5 instead of 0.75,
does not crash a forward pass — it silently shifts or skews the metric. Every row is checked
before the model is loaded, and the first bad one stops the run with a message naming the row
and the exact entry.
"""

from __future__ import annotations

from typing import Any, Mapping

from evalkit.errors import DataError
from evalkit.labels import LabelCheck, score_label_check, token_label_check  # noqa: F401 - re-exported
from evalkit.types import Request

def row_problem(
    row: Mapping[str, Any],
    *,
    input_key: str,
    labels_key: str,
    check_label: LabelCheck,
    vocab_size: int | None,
    max_length: int | None,
) -> str | None:
    """The first problem of one row, as a short phrase, or None when the row is fine."""
    ids = row.get(input_key)
    if ids is None:
        return f"missing '{input_key}' (a list of token ids)"
    if not isinstance(ids, list):
        return f"'{input_key}' must be a list of token ids, got {type(ids).__name__}"
    if not ids:
        return f"'{input_key}' is empty"
    for i, token in enumerate(ids):
        if isinstance(token, bool) or not isinstance(token, int):
            return f"{input_key}[{i}] is {token!r}, expected a token id (int)"
        if token < 0 or (vocab_size is not None and token >= vocab_size):
            return f"{input_key}[{i}] = {token} is not a token id of this model (0..{(vocab_size or 0) - 1})"
    if max_length is not None and len(ids) > max_length:
        return f"'{input_key}' has {len(ids)} tokens, more than backend.max_length={max_length}"
    labels = row.get(labels_key)
    if labels is None:
        return f"missing '{labels_key}' (one label per token, -100 where a position is not scored)"
    if not isinstance(labels, list):
        return f"'{labels_key}' must be a list, got {type(labels).__name__}"
    if len(labels) != len(ids):
        return f"'{labels_key}' has {len(labels)} entries but '{input_key}' has {len(ids)}"
    for i, value in enumerate(labels):
        problem = check_label(value)
        if problem:
            return f"{labels_key}[{i}] {problem}"
    return None


def describe(request: Request) -> str:
    """Where a request's row is, for messages: ``file:line (id=7)``, or ``row id=7 (index 6)``
    for requests built without a location (e.g. by hand in a notebook)."""
    where = request.where
    if where:
        return f"{where} (id={request.id})"
    return f"row id={request.id} (index {request.index})"


def validate_rows(requests: list[Request], **kwargs: Any) -> None:
    """Raise :class:`DataError` for the first bad row (one line: where, what, fix)."""
    for request in requests:
        problem = row_problem(request.row, **kwargs)
        if problem:
            raise DataError(problem, where=describe(request), fix="fix that row of data.path (input_ids and labels must be equal-length lists)")
