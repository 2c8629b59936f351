"""``text``: the raw output, optionally stripped of a ``<think>`` section."""

from __future__ import annotations


class TextParser:
    empty = str

    def __init__(self, strip_think: bool = True, strip: bool = True) -> None:
        self.strip_think = strip_think
        self.strip = strip

    def __call__(self, text: str) -> str:
        if self.strip_think and "</think>" in text:
            text = text.rsplit("</think>", 1)[1]
        return text.strip() if self.strip else text
