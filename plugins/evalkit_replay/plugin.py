"""Hook implementations of evalkit_replay."""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_backends(register):
    register("replay", "evalkit_replay.backend:ReplayBackend")
