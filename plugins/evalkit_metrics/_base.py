"""Re-export of :class:`evalkit.metric.EvalkitMetric` (moved to the core so every domain plugin
can subclass it without importing another plugin). Importing it loads torchmetrics through
:func:`evalkit.warmup.import_torchmetrics`, which leaves transformers unimported."""

from evalkit.metric import EvalkitMetric

__all__ = ["EvalkitMetric"]
