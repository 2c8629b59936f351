"""Hook implementations of evalkit_replay."""

from __future__ import annotations

from evalkit import hookimpl


@hookimpl
def evalkit_register_backends(register):
    from evalkit_replay.backend import ReplayBackend

    register("replay", ReplayBackend)
