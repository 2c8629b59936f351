"""Functional twins of the evalkit metrics: one call, one result, no state.

Each takes the same arguments as its ``Metric`` class's constructor plus ``(preds, target)``
and returns what the class's ``compute()`` would after one ``update``. The implementations
(the ``_update`` / ``_compute`` helpers the classes are built on) live in the
``functional_*`` modules; this module is the public surface, kept flat so the package needs
no sub-packages.
"""

from evalkit_metrics.functional_token import token_accuracy
from evalkit_metrics.functional_tolerance import tolerance_accuracy
from evalkit_metrics.functional_toolcall import canonical_value, tool_call_exact_match, tool_call_f1

__all__ = ["canonical_value", "token_accuracy", "tolerance_accuracy", "tool_call_exact_match", "tool_call_f1"]
