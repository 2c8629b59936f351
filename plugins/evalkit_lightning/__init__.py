"""evalkit inside Lightning: ``from evalkit_lightning import EvalKitCallback``.

Names resolve lazily (PEP 562), so importing ``evalkit_lightning.plugin`` — which
``evalkit-plugins`` does — never imports torch or Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalKitCallback": "evalkit_lightning.callback",
    "instantiate_callbacks": "evalkit_lightning.instantiate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit_lightning' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
