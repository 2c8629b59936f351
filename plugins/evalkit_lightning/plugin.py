"""Hook implementations of evalkit_lightning.

The callback is registered as a ``"module:attr"`` string: listing plugins never imports
Lightning, and ``{name: lightning, ...}`` config nodes build it only when used.
"""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_callbacks(register):
    register("lightning", "evalkit_lightning.callback:EvalKitCallback")
