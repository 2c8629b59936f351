"""Which validation output feeds which metric: a metric plus where its (preds, target) come from.

A LightningModule's ``validation_step`` returns what it computed — usually a dict such as
``{"preds": accept_head_logits, "target": labels}`` — and each evalkit metric needs a
``(preds, target)`` pair, possibly transformed (sigmoid for AcceptHead logits, argmax for LM
logits). A *route* says where the pair comes from. Defaults are set on the callback and a
metric node may override them next to its own options::

    metrics:
      accept_head: {name: tolerance_accuracy, tolerance: 0.1}          # callback defaults
      response_acc: {name: token_accuracy, preds_key: lm_logits, transform: argmax, target_key: labels}

The target is looked up in the step's output first, then in the batch (so a step may return
just its logits and leave the labels in the batch). Nothing here imports Lightning.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, Callable

from evalkit.config import to_container
from evalkit.errors import ConfigError
from evalkit.training import TRANSFORMS, build_metrics, transform_predictions

ROUTE_KEYS = ("preds_key", "target_key", "transform")


@dataclass
class MetricRoute:
    key: str
    metric: Any
    preds_key: str
    target_key: str
    transform: str | Callable[[Any], Any] | None

    def update(self, outputs: Any, batch: Any) -> None:
        preds, target = extract_pair(outputs, batch, self.preds_key, self.target_key, metric_key=self.key)
        preds = transform_predictions(_detach(preds), self.transform)
        self.metric.update(preds, _detach(target))


def _check_transform(transform: Any, where: str) -> None:
    if transform is None or callable(transform):
        return
    if transform not in TRANSFORMS:
        raise ConfigError(f"unknown transform {transform!r}; available: {', '.join(TRANSFORMS)}", where=where)


def build_routes(
    metrics: Mapping[str, Any] | None,
    *,
    preds_key: str,
    target_key: str,
    transform: str | Callable[[Any], Any] | None,
    path: str = "metrics",
) -> dict[str, MetricRoute]:
    """Metric nodes (or objects) -> routes; route keys in a node override the defaults."""
    _check_transform(transform, "transform")
    data = to_container(metrics) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping of metric key -> metric node, got {type(data).__name__}", where=path)
    routes: dict[str, MetricRoute] = {}
    for key, node in data.items():
        if node is None:
            continue
        route = {"preds_key": preds_key, "target_key": target_key, "transform": transform}
        if isinstance(node, Mapping):
            node = dict(node)
            for name in ROUTE_KEYS:
                if name in node:
                    route[name] = node.pop(name)
            _check_transform(route["transform"], f"{path}.{key}.transform")
        metric = build_metrics({key: node}, path=path)[key]
        routes[key] = MetricRoute(key=key, metric=metric, **route)
    return routes


def _detach(x: Any) -> Any:
    return x.detach() if hasattr(x, "detach") else x


def _keys(obj: Any) -> str:
    return ", ".join(map(str, obj.keys())) if isinstance(obj, Mapping) else f"(a {type(obj).__name__})"


def extract_pair(outputs: Any, batch: Any, preds_key: str, target_key: str, *, metric_key: str = "") -> tuple[Any, Any]:
    """``(preds, target)`` from a validation step's output (dict, ``(preds, target)`` tuple, or
    a bare predictions tensor) and, for the target, the batch."""
    where = f"metrics.{metric_key}" if metric_key else "metrics"
    if outputs is None:
        raise ConfigError(
            "validation_step returned nothing, so there is nothing to score",
            where=where,
            fix=f"return e.g. {{'{preds_key}': logits, '{target_key}': labels}} from validation_step",
        )
    target = None
    if isinstance(outputs, Mapping):
        if preds_key not in outputs:
            raise ConfigError(
                f"validation_step output has no '{preds_key}'; available: {_keys(outputs)}",
                where=f"{where}.preds_key",
                fix="set preds_key to one of the available keys",
            )
        preds = outputs[preds_key]
        target = outputs.get(target_key)
    elif isinstance(outputs, (tuple, list)) and len(outputs) == 2:
        preds, target = outputs
    else:
        preds = outputs
    if target is None and isinstance(batch, Mapping) and target_key in batch:
        target = batch[target_key]
    if target is None:
        raise ConfigError(
            f"no '{target_key}' in the validation_step output ({_keys(outputs)}) nor in the batch ({_keys(batch)})",
            where=f"{where}.target_key",
            fix="return the labels from validation_step or set target_key to the batch key that holds them",
        )
    return preds, target
