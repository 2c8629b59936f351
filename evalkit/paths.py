"""Resolving user-given paths the same way everywhere.

Relative paths in a config or override mean "relative to where you ran evalkit" — Hydra's
original working directory, even when a job runs elsewhere — and ``~`` is the home dir.
"""

from __future__ import annotations

from pathlib import Path


def resolve_path(path: str | Path) -> str:
    """Absolute form of a user-given path (works inside and outside a Hydra job)."""
    expanded = str(Path(str(path)).expanduser())
    try:
        from hydra.utils import to_absolute_path

        return to_absolute_path(expanded)
    except Exception:  # outside a Hydra run: the process's working directory
        return str(Path(expanded).resolve())
