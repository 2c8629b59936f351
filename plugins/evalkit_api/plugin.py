"""Hook implementations of evalkit_api: registers ``backend=api`` (imported only when used)."""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_backends(register):
    register("api", "evalkit_api.backend:ApiBackend")
