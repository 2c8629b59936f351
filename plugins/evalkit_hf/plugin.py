"""Hook implementations of evalkit_hf.

Everything is registered as a ``"module:attr"`` string, so listing plugins (and runs that
use other backends) never imports torch or transformers.
"""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_backends(register):
    register("hf", "evalkit_hf.backend:HFBackend")


@hookimpl
def evalkit_register_heads(register):
    register("accept_head", "evalkit_hf.heads:AcceptHead")


@hookimpl
def evalkit_register_callbacks(register):
    register("hf_trainer", "evalkit_hf.trainer:EvalKitGenerationCallback")
