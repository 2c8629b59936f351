"""Re-export of :class:`evalkit.metric.EvalkitMetric` (moved to the core so every domain plugin
can subclass it without importing another plugin)."""

from evalkit.metric import EvalkitMetric

__all__ = ["EvalkitMetric"]
