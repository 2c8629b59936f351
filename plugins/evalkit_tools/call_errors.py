"""``tool_call_errors``: the three call-level mistakes the F1s hide, on any tool-call data.

* ``hallucinated_function`` — predicted calls to a name that is not among the offered tools
  (the offered names come from BFCL labels, or from ``tools_file`` / ``tools``; without them
  the count is ``null``);
* ``missed_call`` — samples whose label has calls and whose prediction has none;
* ``spurious_call`` — samples whose label is empty and whose prediction is not.

Labels and predictions may be in any call dialect (:mod:`evalkit_tools.calls`); a ``None``
prediction (nothing decodable) has no calls. Sum states: DDP-exact and mergeable.
``call_error_rows`` turns a run's ``metrics.json`` into the rows of the report's sheet.
"""

from __future__ import annotations

import json
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from evalkit.metric import EvalkitMetric
from evalkit.toolspec import fc_name, function_docs
from evalkit_tools.calls import CallError, call_names

from evalkit_tools.error_sheet import COLUMNS, COUNTS, call_error_rows  # noqa: E402,F401 - kept importable here


def _names(calls: Any) -> list[str]:
    try:
        return call_names(calls)
    except (CallError, TypeError, AttributeError):
        return []


def _label_calls(label: Any) -> list[str]:
    if isinstance(label, Mapping) and "functions" in label:  # a BFCL label
        return [name for call in label.get("ground_truth") or [] for name in call]
    return _names(label)


def _offered(label: Any, fixed: frozenset[str] | None) -> frozenset[str] | None:
    if isinstance(label, Mapping) and isinstance(label.get("functions"), list):
        names = [f["name"] for f in label["functions"] if isinstance(f, Mapping) and "name" in f]
        return frozenset(names) | frozenset(fc_name(n) for n in names)
    return fixed


def _tool_names(tools: Any) -> frozenset[str]:
    names = [doc["name"] for doc in function_docs(tools) if isinstance(doc.get("name"), str)]
    return frozenset(names) | frozenset(fc_name(n) for n in names)


def tool_call_error_counts(preds: Sequence[Any], targets: Sequence[Any], offered: frozenset[str] | None = None) -> dict[str, int | None]:
    """Functional twin of :class:`ToolCallErrors` (``offered``: names of the tools every row offers)."""
    if len(preds) != len(targets):
        raise ValueError(f"preds and targets differ in length: {len(preds)} vs {len(targets)}")
    out: dict[str, Any] = {"samples": len(preds), "calls": 0, "hallucinated_function": 0, "missed_call": 0, "spurious_call": 0}
    known = True
    for pred, label in zip(preds, targets):
        predicted = _names(pred)
        expected = _label_calls(label)
        out["calls"] += len(predicted)
        if expected and not predicted:
            out["missed_call"] += 1
        elif predicted and not expected:
            out["spurious_call"] += 1
        names = _offered(label, offered)
        if names is None:
            known = known and not predicted
            continue
        out["hallucinated_function"] += sum(1 for n in predicted if n not in names)
    if not known:
        out["hallucinated_function"] = None
    return out


class ToolCallErrors(EvalkitMetric):
    """``{"samples", "calls", "hallucinated_function", "missed_call", "spurious_call"}``.

    ``tools_file`` (a JSON list of OpenAI tools or function docs, e.g. ``${tools.file}``) or
    ``tools`` name the offered tools for data whose labels do not carry them.
    """

    higher_is_better = False

    def __init__(self, tools_file: str | None = None, tools: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        offered: frozenset[str] | None = None
        if tools_file:
            from evalkit.errors import ConfigError
            from evalkit.paths import resolve_path

            path = Path(resolve_path(tools_file))
            try:
                data = json.loads(path.read_text(encoding="utf-8-sig"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot read the tools file: {exc}", where=f"tools_file={path}") from None
            offered = _tool_names(data.get("tools") if isinstance(data, dict) else data)
        if tools is not None:
            offered = (offered or frozenset()) | _tool_names(tools)
        self.offered = offered
        for name in COLUMNS:
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        # samples with predicted calls whose offered tools were unknown (hallucinations not countable)
        self.add_state("unknown_offer", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Sequence[Any], targets: Sequence[Any]) -> None:
        counts = tool_call_error_counts(preds, targets, self.offered)
        for name in COLUMNS:
            value = counts[name]
            if value is None:  # some sample's offered tools are unknown
                self.unknown_offer += 1
                continue
            setattr(self, name, getattr(self, name) + int(value))

    def compute(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: int(getattr(self, name)) for name in COLUMNS}
        if int(self.unknown_offer):
            out["hallucinated_function"] = None
        return out
