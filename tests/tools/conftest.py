"""Fixtures of the function-calling tests: BFCL's own checker as the reference."""

from __future__ import annotations

import pytest

from .bfcl_cases import Reference, reference


@pytest.fixture(scope="session")
def bfcl_reference() -> Reference:
    """bfcl-eval installed with --no-deps into a temp dir cached by version, its AST checker imported."""
    return reference()
