"""``ToolCallF1`` and ``ToolCallExactMatch``: torchmetrics ``Metric``s over parsed tool calls.

Thin classes: the counting lives in :mod:`evalkit_metrics.functional_toolcall`; the classes hold
the counts in states that reduce across processes (``sum`` for fixed-size counts, ``cat`` of
self-describing keyed counts for open-ended tool names — see :mod:`evalkit_metrics._keyed_counts`),
so DDP, ``merge_state`` and ``state_dict`` round trips all give the single-process result.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import torch

from evalkit_metrics._base import EvalkitMetric
from evalkit_metrics._keyed_counts import KeyedCountsMixin
from evalkit_metrics.functional_toolcall import (
    BUCKETS,
    _exact_match_compute,
    _exact_match_update,
    tool_call_exact_match_per_sample,
    _tool_f1_compute,
    _tool_f1_update,
    normalize_composite_keys,
)


class ToolCallF1(KeyedCountsMixin, EvalkitMetric):
    """Per-tool precision / recall / F1 of predicted tool calls, with micro and macro averages.

    ``update(preds, target)``: two equally long lists of samples; a sample is a list of calls
    ``{"toolName": str, "paramList": {...}}`` (a missing ``paramList`` is ``{}``; ``None`` is a
    sample without calls, e.g. an unparseable output).

    Args:
        level: ``"name"`` scores tool names; ``"param"`` scores each parameter of each call as
            the key ``"{toolName}-{param}"`` with its canonical value
            (:func:`evalkit_metrics.functional_toolcall.canonical_value`). Calls without
            parameters contribute nothing at this level.
        include_negative: add the ``__NEGATIVE__`` class for samples without calls (an empty
            label counts one label of it, an empty prediction one prediction, both one hit).
            At ``level="param"`` "empty" also means "no calls" (not "no parameters").
        composite_keys: ``{toolName: {fields: [a, b], values: [...]}}`` (or ``[a, b]`` for every
            value of ``a``, or a list of such specs per tool). When a call of that tool has both
            ``a`` and ``b`` (and ``a``'s value is one of ``values``), the extra key
            ``"{toolName}-{a}-{value of a}"`` is scored with ``b``'s value — e.g.
            ``truckCheck: {fields: [truckType, value], values: [车长, 车型]}`` gives
            ``truckCheck-truckType-车长`` scored by ``value``, exactly as the seed does.
        parse_json_strings: compare a string that spells a JSON list/dict as that structure
            (off by default: the seed compares a string as the string).
        kwargs: ``torchmetrics.Metric`` options (``sync_on_compute``, ``process_group``, ...).

    Counting (name level) follows the tool-call scripts users already have exactly: per sample and tool, ``hits = min(label
    count, prediction count)``; ``tp = hits, fp = pred_count - hits, fn = label_count - hits``.

    Deviation from those scripts at ``level="param"``: the seed counted a hit for every key:value
    string of the *shorter* list found anywhere in the longer one, so a sample could score more
    hits than the key occurs (label ``[k:1, k:2, k:3]`` vs prediction ``[k:1, k:1]`` gave two
    hits; only one ``k:1`` exists in the label) and ``fp``/``fn`` could turn negative. Here hits
    per key are the multiset intersection of the two value lists, so ``0 <= tp <= min(label,
    pred)`` always holds. On samples without repeated key:value pairs both agree.

    ``compute()`` returns plain Python: ``{"micro": {"precision", "recall", "f1"}, "macro":
    {...}, "per_tool": {key: {"precision", "recall", "f1", "tp", "fp", "fn"}}}`` (``per_tool``
    sorted by key; macro = mean over every class seen, ``__NEGATIVE__`` included when enabled;
    every ratio is 0 where undefined, also when nothing was counted).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    _keyed_prefix = "tool"
    _keyed_width = 3  # tp, fp, fn

    def __init__(
        self,
        level: Literal["name", "param"] = "name",
        include_negative: bool = False,
        composite_keys: dict[str, Any] | None = None,
        parse_json_strings: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if level not in ("name", "param"):
            raise ValueError(f"level must be 'name' or 'param', got {level!r}")
        self.level = level
        self.include_negative = bool(include_negative)
        self.composite_keys = normalize_composite_keys(composite_keys)
        self.parse_json_strings = bool(parse_json_strings)
        self._add_keyed_states()

    def update(self, preds: Sequence[Any], target: Sequence[Any]) -> None:
        """Count one batch of samples."""
        self._append_counts(_tool_f1_update(preds, target, self.level, self.include_negative, self.composite_keys, self.parse_json_strings))

    def compute(self) -> dict[str, Any]:
        return _tool_f1_compute(self._read_counts())


class ToolCallExactMatch(EvalkitMetric):
    """Share of samples whose predicted calls equal the label's calls, as a multiset.

    Two calls are equal when their ``toolName`` and ``paramList`` are equal as JSON values
    (dict key order never matters, list order inside a parameter does, numbers compare by value
    like Python's ``==`` in the seed: ``1 == 1.0 == True``); a missing / null ``paramList``
    equals ``{}``; other keys of a call (``id``, ...) are ignored. The order of the calls never
    matters. ``kwargs`` are ``torchmetrics.Metric`` options.

    Buckets: ``single`` = samples whose label has exactly one call, ``multi`` = more than one,
    ``empty`` = no call (correct iff the prediction is empty too), ``all`` = every sample, so
    the three parts add up to ``all``. ``compute()`` -> ``{"single": {"correct", "total",
    "accuracy"}, "multi": {...}, "empty": {...}, "all": {...}}``; ``sample_scores`` gives each
    sample's verdict (``True``/``False``).

    Deviation from the scripts' strict match: they sorted multi-call samples by
    ``toolName`` only (a stable sort), so two calls of the same tool in a different order
    counted as a mismatch; here order is ignored for them too. A label call without
    ``paramList`` and a predicted call with ``"paramList": {}`` are equal here (unequal in the
    seed).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        n = len(BUCKETS)  # single, multi, empty, all
        self.add_state("correct", default=torch.zeros(n, dtype=torch.int64), dist_reduce_fx="sum", persistent=True)
        self.add_state("total", default=torch.zeros(n, dtype=torch.int64), dist_reduce_fx="sum", persistent=True)

    def update(self, preds: Sequence[Any], target: Sequence[Any]) -> None:
        """Count one batch of samples."""
        correct, total = _exact_match_update(preds, target)
        self.correct += torch.tensor(correct, dtype=torch.int64, device=self.correct.device)
        self.total += torch.tensor(total, dtype=torch.int64, device=self.total.device)

    def compute(self) -> dict[str, dict[str, Any]]:
        return _exact_match_compute(self.correct.tolist(), self.total.tolist())

    def sample_scores(self, preds: Sequence[Any], target: Sequence[Any]) -> list[bool]:
        """Each sample's verdict, as counted by :meth:`update`."""
        return tool_call_exact_match_per_sample(preds, target)
