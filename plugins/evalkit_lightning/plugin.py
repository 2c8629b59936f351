"""Hook implementations of evalkit_lightning."""

from __future__ import annotations

from evalkit import hookimpl  # noqa: F401
