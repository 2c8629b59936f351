"""Hook implementations of evalkit_metrics."""

from __future__ import annotations

from evalkit import hookimpl  # noqa: F401
