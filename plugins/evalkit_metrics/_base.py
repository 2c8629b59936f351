"""Re-export of :class:`evalkit.metric.EvalkitMetric` (moved to the core so every domain plugin
can subclass it without importing another plugin). torchmetrics is imported first through
:func:`evalkit.warmup.import_torchmetrics`, which leaves transformers unimported."""

from evalkit.warmup import import_torchmetrics

import_torchmetrics()

from evalkit.metric import EvalkitMetric  # noqa: E402

__all__ = ["EvalkitMetric"]
