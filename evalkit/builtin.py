"""The core's own hook implementations: defaults every run may need whatever plugins are
installed (the ``lm`` head), registered through the same entry-point path as any plugin."""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_heads(register):
    register("lm", "evalkit.heads:LMHead")
