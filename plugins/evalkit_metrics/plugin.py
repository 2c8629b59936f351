"""Hook implementations of evalkit_metrics: the built-in metrics.

Factories are ``"module:attr"`` strings, imported only when a run selects the metric, so
listing plugins never imports torch.
"""

from __future__ import annotations

from evalkit import hookimpl

METRICS = {
    "tool_f1": "evalkit_metrics.toolcall:ToolCallF1",
    "tool_exact_match": "evalkit_metrics.toolcall:ToolCallExactMatch",
    "tolerance_accuracy": "evalkit_metrics.regression:ToleranceAccuracy",
    "token_accuracy": "evalkit_metrics.regression:TokenAccuracy",
}


@hookimpl
def evalkit_register_metrics(register):
    for name, target in METRICS.items():
        register(name, target)


@hookimpl
def evalkit_register_reports(register):
    register("accept_head", "evalkit_metrics.report:AcceptHeadReport")
