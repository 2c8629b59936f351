"""Padding side as a scoped setting.

Why: decoder-only models must be *left*-padded for batched ``generate`` (the last prompt
token has to sit next to the first new token), while training and teacher-forced scoring use
right padding. Users saw F1 silently drop because evaluation during training
generated with the training tokenizer's right padding. Switching the side inside a ``with``
block and restoring it afterwards — even when generation raises — keeps both correct.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


@contextlib.contextmanager
def padding_side(tokenizer: Any, side: str) -> Iterator[Any]:
    """Temporarily set ``tokenizer.padding_side`` (and a pad token if it has none).

    A tokenizer without a pad token borrows its EOS token for the duration, as ``generate``
    itself would; both settings are restored on exit.
    """
    if side not in ("left", "right"):
        raise ValueError(f"padding side must be 'left' or 'right', got {side!r}")
    previous_side = tokenizer.padding_side
    previous_pad = tokenizer.pad_token
    tokenizer.padding_side = side
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        yield tokenizer
    finally:
        tokenizer.padding_side = previous_side
        if previous_pad is None and tokenizer.pad_token is not None:
            tokenizer.pad_token = None


def left_padding(tokenizer: Any) -> contextlib.AbstractContextManager[Any]:
    """``with left_padding(tok): model.generate(**tok(texts, padding=True))``."""
    return padding_side(tokenizer, "left")
