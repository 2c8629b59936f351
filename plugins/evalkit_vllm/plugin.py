"""Hook implementations of evalkit_vllm."""

from __future__ import annotations

from evalkit import hookimpl  # noqa: F401
