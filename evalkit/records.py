"""From a backend's :class:`Result` to one ``predictions.jsonl`` record.

Shared by offline runs (the pipeline) and evaluation inside training (:mod:`evalkit.training`),
so both parse, classify errors and record timing identically.

Error types: ``"request"`` — the request failed (after all retries) or the backend had no
output for the sample; it is not a prediction and is left out of the metrics. ``"parse"`` —
the model answered but the parser could not read it; it is scored as the parser's empty
prediction (the model did answer).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from evalkit.config import to_container
from evalkit.types import Parsed, Result, Sample

log = logging.getLogger("evalkit")

REQUEST_ERROR = "request"
PARSE_ERROR = "parse"


@dataclass
class ParsedOutput:
    prediction: Any
    error: str | None = None
    repaired: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _empty_of(parse: Any) -> Any:
    empty = getattr(parse, "empty", None)
    return empty() if callable(empty) else empty


class ParserRunner:
    """Wraps a parser plugin: never raises, turns every failure into a counted parse error.

    Uses ``parse_message(message)`` when the parser has it (native tool calls need the whole
    assistant message), else ``parse(text)``. A parser may return :class:`evalkit.types.Parsed`.
    """

    def __init__(self, parse: Any) -> None:
        self.parse = parse
        self.wants_message = callable(getattr(parse, "parse_message", None))

    def empty(self) -> Any:
        return _empty_of(self.parse)

    def __call__(self, text: str, result: Result | None = None) -> ParsedOutput:
        try:
            if self.wants_message:
                message = result.message() if result is not None else {"content": text}
                value = self.parse.parse_message(message)
            else:
                value = self.parse(text)
        except ValueError as exc:
            return ParsedOutput(prediction=self.empty(), error=str(exc)[:200] or "unparseable")
        except Exception as exc:  # a parser bug or pathological output must not end the run
            log.warning("parser raised %s on one output; counted as a parse error", type(exc).__name__)
            return ParsedOutput(prediction=self.empty(), error=f"{type(exc).__name__}: {str(exc)[:160]}")
        if isinstance(value, Parsed):
            return ParsedOutput(prediction=value.prediction, error=value.error, repaired=value.repaired, extra=dict(value.extra))
        return ParsedOutput(prediction=value, repaired=bool(getattr(self.parse, "last_repaired", False)))


def make_parser(registry: Any, node: Any, *, path: str = "parser") -> ParserRunner | None:
    """The parser a config node (or name) selects, or a callable ``text -> prediction`` as
    given; ``None`` / ``"none"`` means the raw text is the prediction."""
    from evalkit.factory import build_plugin

    if node is None or node == "none":
        return None
    if callable(node) and not isinstance(node, (str, dict)):
        return ParserRunner(node)
    data = {"name": node} if isinstance(node, str) else to_container(node)
    if isinstance(data, dict) and data.get("name") in (None, "none"):
        return None
    return ParserRunner(build_plugin(registry, "parser", data, path=path))


def build_record(sample: Sample, messages: Any, result: Result, parser: ParserRunner | None) -> dict[str, Any]:
    """The ``predictions.jsonl`` record of one finished sample."""
    record: dict[str, Any] = {"index": sample.index, "id": sample.id}
    if messages is not None:
        record["messages"] = messages
    output: Any = None
    prediction: Any = result.prediction
    error = result.error
    error_type = REQUEST_ERROR if error else None
    parsed = ParsedOutput(prediction=None)
    if result.ok and result.outputs is not None:
        output = result.outputs[0] if len(result.outputs) == 1 else list(result.outputs)
        if parser is not None:
            parsed = parser(result.outputs[0], result)
            prediction = parsed.prediction
            if parsed.error:
                error, error_type = f"parse: {parsed.error}", PARSE_ERROR
        else:
            prediction = output
    elif result.ok and result.prediction is None and parser is not None:
        prediction = parser.empty()
    record.update({"output": output, "prediction": prediction, "label": sample.label, "error": error, "error_type": error_type})
    if result.tool_calls is not None:
        record["tool_calls"] = result.tool_calls
    if result.reasoning:
        record["reasoning"] = result.reasoning
    if result.finish_reason is not None:
        record["finish_reason"] = result.finish_reason
    record.update(parsed.extra)
    if parsed.repaired:
        record["repaired"] = True
    if result.latency_s is not None:
        record["latency_s"] = round(result.latency_s, 4)
    if result.usage:
        record["usage"] = result.usage
    if result.attempts != 1:
        record["attempts"] = result.attempts
    if result.cached:
        record["cached"] = True
    return record


def is_failed(record: dict[str, Any]) -> bool:
    """A failed request: no prediction was made for this sample."""
    return record.get("error_type") == REQUEST_ERROR
