"""Common base of the evalkit metrics: torchmetrics ``Metric`` plus state hand-over fixes.

Later tasks save a metric's ``state_dict()`` per shard and merge the shards afterwards. Two
torchmetrics behaviours get in the way and are fixed here for all evalkit metrics:

* ``merge_state`` / ``load_state_dict`` keep a cached ``compute()`` result, so computing, then
  merging, then computing again returned the stale value — the cache is dropped;
* a metric that only received loaded or merged state counts as "never updated" and warns on
  ``compute()`` — loading or merging state counts as an update.
"""

from __future__ import annotations

from typing import Any

from torchmetrics import Metric


class EvalkitMetric(Metric):
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
