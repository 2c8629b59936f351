"""Hook implementations of evalkit_api."""

from __future__ import annotations

from evalkit import hookimpl  # noqa: F401
