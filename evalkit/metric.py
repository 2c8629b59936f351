"""The base class of evalkit's torchmetrics metrics, for built-in and third-party plugins.

Imports torchmetrics when imported, so import it only where a metric is built.
``EvalkitMetric`` fixes two torchmetrics behaviours that break shard merging: a cached
``compute()`` result survives ``merge_state`` / ``load_state_dict``, and a metric that only
received loaded or merged state warns that it was never updated.
"""

from __future__ import annotations

from typing import Any

from evalkit.warmup import import_torchmetrics

import_torchmetrics()  # torchmetrics without its eager transformers import (seconds saved)

from torchmetrics import Metric  # noqa: E402


class EvalkitMetric(Metric):
    """torchmetrics ``Metric`` whose loaded or merged state counts as an update."""

    is_differentiable = False
    full_state_update = False

    def merge_state(self, incoming_state: Any) -> None:
        super().merge_state(incoming_state)
        self._computed = None
        self._update_count = max(self._update_count, 1)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        loaded = any(prefix + key in state_dict for key in self._defaults)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if loaded:
            self._computed = None
            self._update_count = max(self._update_count, 1)
