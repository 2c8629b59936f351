"""Hook implementations of evalkit_parsers: built-in output parsers."""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_parsers(register):
    from evalkit_parsers.json_label import JsonLabelParser
    from evalkit_parsers.text import TextParser

    register("json_label", JsonLabelParser)
    register("text", TextParser)
