"""Command-line overrides as users type them: a value with non-ASCII text (a Chinese file
name, ``data.path=26_0513_评测.json``) works unquoted.

Hydra's override grammar accepts only ASCII in unquoted values; evalkit quotes such a value
before Hydra parses it (each element of a ``a,b`` sweep on its own), unless it already holds
grammar of its own (quotes, brackets, braces, interpolations, sweep functions).
"""

from __future__ import annotations

import re

_GRAMMAR = re.compile(r"""['"\[\]{}()$\\]""")
_KEY = re.compile(r"^[~+]{0,2}[\w.@/\-]+=")


def quote_value(value: str) -> str:
    if not value or value.isascii() or _GRAMMAR.search(value):
        return value
    return ",".join(f"'{part}'" if part and not part.isascii() else part for part in value.split(","))


def quote_overrides(args: list[str]) -> list[str]:
    """``key=值`` -> ``key='值'`` for every override whose value is plain non-ASCII text."""
    out = []
    for arg in args:
        match = _KEY.match(arg)
        if match and not arg.startswith("-"):
            out.append(arg[: match.end()] + quote_value(arg[match.end() :]))
        else:
            out.append(arg)
    return out
