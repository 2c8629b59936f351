"""One call type, many dialects: ``{"name": str, "arguments": dict}`` and its converters.

Tool calls reach evalkit in four shapes: the seed's ``{"toolName", "paramList"}``, OpenAI's
``{"type": "function", "function": {"name", "arguments": "<json text>"}}`` (what an API or
vLLM returns natively), BFCL's ``{"<name>": {<param>: <value>}}`` and the normalised
``{"name", "arguments"}`` itself. Every parser returns normalised calls and every tool-call
metric can read any dialect through :func:`normalize_calls`, so F1s, exact match and BFCL
scores work on any of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

Call = dict[str, Any]  # {"name": str, "arguments": dict}


class CallError(ValueError):
    """A call that cannot be normalised. ``code`` is the per-sample reason recorded in
    ``predictions.jsonl`` (``args_invalid_json``, ``args_not_object``, ``bad_call``)."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        super().__init__(f"{code}: {detail}")


def _arguments(value: Any, *, name: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise CallError("args_invalid_json", f"arguments of '{name}' are not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise CallError("args_not_object", f"arguments of '{name}' must be a JSON object, got {type(value).__name__}")
    return value


def dialect(call: Any) -> str:
    """``"seed"``, ``"openai"``, ``"normal"`` or ``"bfcl"``; ``"unknown"`` for anything else."""
    if not isinstance(call, Mapping):
        return "unknown"
    if "toolName" in call:
        return "seed"
    function = call.get("function")
    if isinstance(function, Mapping) and "name" in function:
        return "openai"
    if isinstance(call.get("name"), str) and set(call) <= {"name", "arguments", "id", "type"}:
        return "normal"
    if len(call) == 1 and isinstance(next(iter(call.values())), Mapping):
        return "bfcl"
    return "unknown"


def normalize_call(call: Any) -> Call:
    """Any dialect -> ``{"name", "arguments"}``; :class:`CallError` when it is none of them."""
    kind = dialect(call)
    if kind == "seed":
        return {"name": str(call["toolName"]), "arguments": _arguments(call.get("paramList"), name=str(call["toolName"]))}
    if kind == "openai":
        function = call["function"]
        return {"name": str(function["name"]), "arguments": _arguments(function.get("arguments"), name=str(function["name"]))}
    if kind == "normal":
        return {"name": call["name"], "arguments": _arguments(call.get("arguments"), name=call["name"])}
    if kind == "bfcl":
        name, arguments = next(iter(call.items()))
        return {"name": str(name), "arguments": dict(arguments)}
    raise CallError("bad_call", f"not a tool call in any known dialect: {json.dumps(call, ensure_ascii=False, default=str)[:80]}")


def normalize_calls(calls: Iterable[Any] | None) -> list[Call] | None:
    """A list of calls in any (even mixed) dialect -> normalised calls; ``None`` stays ``None``
    (no decodable calls, e.g. an unparseable output)."""
    if calls is None:
        return None
    if isinstance(calls, Mapping):  # one call given bare
        calls = [calls]
    return [normalize_call(call) for call in calls]


def to_seed(calls: Iterable[Any] | None) -> list[dict[str, Any]]:
    """Calls in any dialect -> the seed's ``[{"toolName", "paramList"}]`` (``None`` -> ``[]``)."""
    return [{"toolName": c["name"], "paramList": c["arguments"]} for c in normalize_calls(calls) or []]


def to_bfcl(calls: Iterable[Any] | None) -> list[dict[str, dict[str, Any]]]:
    """Calls in any dialect -> BFCL's decoded form ``[{"<name>": {<param>: <value>}}]``."""
    return [{c["name"]: c["arguments"]} for c in normalize_calls(calls) or []]


def to_openai(calls: Iterable[Any] | None) -> list[dict[str, Any]]:
    """Calls in any dialect -> OpenAI ``tool_calls`` entries (arguments as JSON text)."""
    return [
        {"id": f"call_{i}", "type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
        for i, c in enumerate(normalize_calls(calls) or [])
    ]


def call_names(calls: Iterable[Any] | None) -> list[str]:
    """The function names of ``calls`` (any dialect), in order."""
    return [c["name"] for c in normalize_calls(calls) or []]
