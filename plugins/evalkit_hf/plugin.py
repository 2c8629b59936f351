"""Hook implementations of evalkit_hf."""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_heads(register):
    from evalkit_hf.heads import LMHead

    register("lm", LMHead)
