"""Hook implementations of evalkit_parsers: built-in output parsers."""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_parsers(register):
    register("json_label", "evalkit_parsers.json_label:JsonLabelParser")
    register("text", "evalkit_parsers.text:TextParser")
