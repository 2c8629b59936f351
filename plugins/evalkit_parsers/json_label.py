"""``json_label``: pull the tool-call ``label`` list out of a model's raw text.

Where the JSON is looked for, in order (the usual post-processing of tool-call scripts, made robust):

1. the text after the last ``</think>`` if the model thought out loud, else the whole text;
2. that text as one JSON document;
3. else the last fenced ```json block in it;
4. else the last balanced top-level ``{...}`` object in it (strings and escapes respected).

The object's ``label`` field (``key``) must be a list of objects with ``toolName``; anything
else raises ``ValueError`` — the pipeline records a parse error and uses ``[]``. With
``repair: true`` a near-valid candidate (trailing commas, single quotes, missing braces) is
fixed with the ``json_repair`` library; such samples are counted as ``num_repaired``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TOKENS = re.compile(r'[{}"]')


def last_balanced_object(text: str) -> str | None:
    """The last top-level ``{...}`` span in ``text`` (braces inside strings ignored)."""
    depth = 0
    in_string = False
    start = -1
    last: str | None = None
    for match in _TOKENS.finditer(text):
        ch = match.group()
        pos = match.start()
        if ch == '"':
            if depth > 0 and not _is_escaped(text, pos):
                in_string = not in_string
            continue
        if in_string:
            continue
        if ch == "{":
            if depth == 0:
                start = pos
            depth += 1
        elif depth > 0:  # "}"
            depth -= 1
            if depth == 0:
                last = text[start : pos + 1]
    return last


def _is_escaped(text: str, pos: int) -> bool:
    backslashes = 0
    pos -= 1
    while pos >= 0 and text[pos] == "\\":
        backslashes += 1
        pos -= 1
    return backslashes % 2 == 1


def _candidates(text: str) -> Iterator[str]:
    """Candidate JSON texts, most likely first; built lazily because most outputs parse at
    the first candidate and the later scans cost more than the JSON parse itself."""
    region = (text.rsplit("</think>", 1)[1] if "</think>" in text else text).strip()
    yield region
    if "```" in region:
        fences = _FENCE.findall(region)
        if fences:
            yield fences[-1].strip()
    # Cheap before the scan: from the first "{" to the last "}". When that parses as one
    # object it *is* the only (so the last) top-level object; otherwise scan properly.
    first, last = region.find("{"), region.rfind("}")
    if 0 < first < last or (first == 0 and last < len(region) - 1):
        yield region[first : last + 1]
    obj = last_balanced_object(region)
    if obj is not None:
        yield obj


def native_calls(tool_calls: list[Any]) -> list[dict[str, Any]]:
    """OpenAI ``message.tool_calls`` as the seed's ``{toolName, paramList}`` calls; arguments
    that are not a JSON object are a parse error (``args_invalid_json``)."""
    calls = []
    for i, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ValueError(f"tool_calls[{i}] has no function name")
        arguments = function.get("arguments")
        try:
            params = json.loads(arguments) if isinstance(arguments, str) else (arguments or {})
        except json.JSONDecodeError:
            raise ValueError(f"args_invalid_json: tool_calls[{i}] ({function['name']}) arguments are not valid JSON") from None
        if not isinstance(params, dict):
            raise ValueError(f"args_invalid_json: tool_calls[{i}] ({function['name']}) arguments are not a JSON object")
        calls.append({"toolName": function["name"], "paramList": params})
    return calls


class JsonLabelParser:
    """Callable parser; ``empty`` is the prediction used for unparseable outputs.

    With native function calling (``tools.mode=fc``) the answer's ``tool_calls`` are the
    prediction (``calls_source: native``); otherwise the text is parsed (``calls_source: text``).
    """

    empty = list

    def __init__(self, key: str = "label", repair: bool = False, require_tool_name: bool = True, repair_max_chars: int = 20000) -> None:
        self.key = key
        self.repair = repair
        self.repair_max_chars = repair_max_chars
        self.require_tool_name = require_tool_name
        self.last_repaired = False

    def _extract(self, obj: Any) -> list[dict[str, Any]]:
        if not isinstance(obj, dict):
            raise ValueError(f"expected a JSON object with '{self.key}', got {type(obj).__name__}")
        if self.key not in obj:
            raise ValueError(f"JSON object has no '{self.key}' field")
        label = obj[self.key]
        if not isinstance(label, list):
            raise ValueError(f"'{self.key}' is {type(label).__name__}, not a list")
        for i, call in enumerate(label):
            if not isinstance(call, dict) or (self.require_tool_name and "toolName" not in call):
                raise ValueError(f"'{self.key}[{i}]' is not an object with 'toolName'")
            if "toolName" in call and not isinstance(call["toolName"], str):
                raise ValueError(f"'{self.key}[{i}].toolName' is {type(call['toolName']).__name__}, not a string")
            params = call.get("paramList")
            if params is not None and not isinstance(params, dict):
                raise ValueError(f"'{self.key}[{i}].paramList' is {type(params).__name__}, not an object")
        return label

    def parse_message(self, message: dict[str, Any]) -> Any:
        from evalkit.types import Parsed

        tool_calls = message.get("tool_calls")
        if tool_calls:
            return Parsed(prediction=native_calls(tool_calls), extra={"calls_source": "native"})
        content = message.get("content") or ""
        if not content.strip() and (tool_calls is not None or message.get("finish_reason") == "tool_calls"):
            return Parsed(prediction=[], extra={"calls_source": "native"})  # a native answer with no call
        prediction = self(content)
        return Parsed(prediction=prediction, repaired=self.last_repaired, extra={"calls_source": "text"} if tool_calls is not None else {})

    def __call__(self, text: str) -> list[dict[str, Any]]:
        self.last_repaired = False
        if not isinstance(text, str) or not text.strip():
            raise ValueError("empty output")
        candidates = _candidates(text)
        tried: list[str] = []
        first_error: ValueError | None = None
        for candidate in candidates:
            tried.append(candidate)
            try:
                obj = json.loads(candidate)
            except (json.JSONDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
                continue
            try:
                return self._extract(obj)
            except ValueError as exc:
                first_error = first_error or exc
        if self.repair:
            from json_repair import repair_json

            for candidate in reversed(tried):
                if len(candidate) > self.repair_max_chars:
                    continue  # json_repair is slow on huge garbage; such output is not "near-valid"
                try:
                    obj = repair_json(candidate, return_objects=True)
                except Exception:
                    continue
                try:
                    result = self._extract(obj)
                except ValueError:
                    continue
                self.last_repaired = True
                return result
        if first_error is not None:
            raise first_error
        raise ValueError("no JSON object found in output")
