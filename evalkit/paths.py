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


def read_chat_template(value: str | None, *, key: str = "backend.chat_template") -> str | None:
    """``chat_template`` as every backend reads it: the template itself (it holds ``{``), or
    the path of a file holding it (relative to where evalkit ran); a path that is not a file
    is an error naming ``key``."""
    if not value:
        return None
    if "{" in value or len(value) >= 4096:
        return value
    path = Path(resolve_path(value))
    if not path.is_file():
        from evalkit.errors import ConfigError

        raise ConfigError(f"chat template file not found: {path}", where=key, fix="give a Jinja template string or the path of an existing template file (.jinja)")
    return path.read_text(encoding="utf-8")
