"""Label checks of token-level rows, shared by score heads of any backend.

A check returns ``None`` for a valid label entry or a short phrase saying what is wrong.
"""

from __future__ import annotations

import math
from typing import Any, Callable

LabelCheck = Callable[[Any], "str | None"]


def score_label_check(ignore_index: int = -100, low: float = 0.0, high: float = 1.0) -> LabelCheck:
    """Labels of a regression head: a float in ``[low, high]``, or ``ignore_index`` / null."""

    def check(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"is {value!r}, expected a number in [{low:g}, {high:g}], {ignore_index} or null"
        if value == ignore_index:
            return None
        if math.isnan(value) or not low <= value <= high:
            return f"= {value!r} is outside [{low:g}, {high:g}] (use {ignore_index} or null for positions that are not scored)"
        return None

    return check


def token_label_check(vocab_size: int | None, ignore_index: int = -100) -> LabelCheck:
    """Labels of a language-model head: a token id, or ``ignore_index`` (SFT data's -100)."""

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"is {value!r}, expected a token id (int) or {ignore_index}"
        if value == ignore_index:
            return None
        if value < 0 or (vocab_size is not None and value >= vocab_size):
            return f"= {value} is not a token id of this model (0..{(vocab_size or 0) - 1})"
        return None

    return check
