"""evalkit's built-in metrics: torchmetrics ``Metric``s with functional twins.

``from evalkit_metrics import ToleranceAccuracy, ToolCallF1, ToolCallExactMatch, TokenAccuracy``.
Names are resolved lazily (PEP 562) so that importing ``evalkit_metrics.plugin`` — which
``evalkit-plugins`` and ``evalkit --help`` do — never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ToolCallF1": "evalkit_metrics.toolcall",
    "ToolCallExactMatch": "evalkit_metrics.toolcall",
    "ToleranceAccuracy": "evalkit_metrics.regression",
    "TokenAccuracy": "evalkit_metrics.regression",
    "tool_call_f1": "evalkit_metrics.functional_toolcall",
    "tool_call_exact_match": "evalkit_metrics.functional_toolcall",
    "tolerance_accuracy": "evalkit_metrics.functional_tolerance",
    "token_accuracy": "evalkit_metrics.functional_token",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evalkit_metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
