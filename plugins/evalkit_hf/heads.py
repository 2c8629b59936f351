"""Heads: what the model's last layer produces."""

from __future__ import annotations


class LMHead:
    """The ordinary language-model head: generation produces text, which a parser reads."""

    mode = "generate"
