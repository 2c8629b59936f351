"""Hook implementations of evalkit_vllm: registers ``backend=vllm`` (imported lazily, so
listing plugins never imports vllm or torch)."""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_backends(register):
    register("vllm", "evalkit_vllm.backend:VLLMBackend")
