"""evalkit's built-in metrics: torchmetrics ``Metric``s with functional twins.

``from evalkit_metrics import ToleranceAccuracy, ToolCallF1, ToolCallExactMatch, TokenAccuracy``.
Names are resolved lazily (PEP 562) so that importing ``evalkit_metrics.plugin`` — which
``evalkit-plugins`` and ``evalkit --help`` do — never imports torch.
"""

from __future__ import annotations

from evalkit.lazy import lazy_exports


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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
