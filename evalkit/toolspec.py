"""The ``tools`` config node: which functions a sample offers the model, and how.

``tools.field`` names a row field holding the tools (OpenAI tools or plain function docs such
as BFCL's), ``tools.file`` one JSON file of tools for every row (e.g. the seed's freight
tools); ``tools.mode`` says how they reach the model:

* ``fc`` — natively: ``Request.tools`` / ``Request.tool_choice`` (API ``tools=``, vLLM/HF
  ``apply_chat_template(tools=...)``); the answer comes back as ``tool_calls`` or as text a
  tool-call parser reads (hermes ``<tool_call>``).
* ``prompt`` — listed in a system prompt that asks for Python-syntax calls
  (``[get_weather(city="Paris")]``), as BFCL's prompt mode does; read with the ``pythonic``
  parser.
* ``none`` — no tools (the default; :meth:`ToolSpec.none`).

Function docs are converted to OpenAI tools the way BFCL does for function-calling models:
Gorilla type names become JSON-schema ones (``dict`` -> ``object``, ``float`` -> ``number``,
``tuple`` -> ``array``, ...) and dots in names become underscores (OpenAI allows only
``^[a-zA-Z0-9_-]{1,64}$``). Pure data handling: no plugin and no heavy import here.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from evalkit.errors import ConfigError, DataError

MODES = ("none", "fc", "prompt")
CHOICES = ("auto", "required", "none")
KEYS = ("mode", "field", "file", "choice", "prompt")

# Gorilla/BFCL type names -> JSON-schema types (BFCL's mapping for function-calling models).
SCHEMA_TYPES: dict[str, str] = {
    "integer": "integer", "number": "number", "float": "number", "string": "string",
    "boolean": "boolean", "bool": "boolean", "array": "array", "list": "array",
    "dict": "object", "object": "object", "tuple": "array", "any": "string",
    "byte": "integer", "short": "integer", "long": "integer", "double": "number",
    "char": "string", "ArrayList": "array", "Array": "array", "HashMap": "object",
    "Hashtable": "object", "Queue": "array", "Stack": "array", "Any": "string",
    "String": "string", "Bigint": "integer",
}  # fmt: skip

PROMPT_TEMPLATE = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. "
    "Based on the question, make one or more function calls to achieve the purpose. If none of the functions "
    "can be used, point it out. If the question lacks parameters a function requires, point that out too.\n"
    "If you decide to call any of the functions, reply with only the calls, in the format "
    "[func_name1(param_name1=value1, param_name2=value2...), func_name2(params)], and no other text.\n\n"
    "Here is the list of functions you can call, in JSON format:\n{functions}\n"
)


def fc_name(name: str) -> str:
    """A function name as sent to function-calling endpoints (dots -> underscores)."""
    return name.replace(".", "_")


def _cast_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """One parameter schema with Gorilla types mapped, recursively (items, properties)."""
    out = dict(schema)
    kind = out.get("type")
    if kind is None:
        out["type"] = "string"
    elif isinstance(kind, str):
        if kind == "float":
            out["format"] = "float"
            out["description"] = str(out.get("description", "")) + " This is a float type value."
        out["type"] = SCHEMA_TYPES.get(kind, "string")
    if isinstance(out.get("properties"), Mapping):
        out["properties"] = {k: _cast_schema(v) for k, v in out["properties"].items() if isinstance(v, Mapping)}
    if isinstance(out.get("items"), Mapping):
        out["items"] = _cast_schema(out["items"])
    return out


def is_openai_tool(tool: Any) -> bool:
    return isinstance(tool, Mapping) and tool.get("type") == "function" and isinstance(tool.get("function"), Mapping)


def to_openai_tools(tools: Any, *, where: str = "tools") -> list[dict[str, Any]]:
    """OpenAI tools or function docs (mixed allowed) -> OpenAI tools, names made FC-safe.

    OpenAI tools pass through except for their names; function docs are wrapped and their
    parameter types converted as BFCL converts them for function-calling models.
    """
    if isinstance(tools, Mapping):
        tools = [tools]
    if not isinstance(tools, list):
        raise DataError(f"tools must be a list of OpenAI tools or function docs, got {type(tools).__name__}", where=where)
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if is_openai_tool(tool):
            function = dict(tool["function"])
        elif isinstance(tool, Mapping) and isinstance(tool.get("name"), str):
            function = copy.deepcopy(dict(tool))
            params = dict(function.get("parameters") or {})
            params["type"] = "object"
            params["properties"] = {k: _cast_schema(v) for k, v in (params.get("properties") or {}).items() if isinstance(v, Mapping)}
            function["parameters"] = params
        else:
            raise DataError(
                f"tools[{i}] is neither an OpenAI tool ({{type: function, function: {{...}}}}) nor a function doc with a 'name'",
                where=where,
            )
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise DataError(f"tools[{i}] has no function name", where=where)
        function["name"] = fc_name(function["name"])
        out.append({"type": "function", "function": function})
    return out


def function_docs(tools: Any) -> list[dict[str, Any]]:
    """The function docs a prompt lists: OpenAI tools unwrapped, function docs as they are
    (original names and types, as BFCL's prompt mode shows them)."""
    if isinstance(tools, Mapping):
        tools = [tools]
    return [dict(t["function"]) if is_openai_tool(t) else dict(t) for t in tools or [] if isinstance(t, Mapping)]


def prompt_messages(messages: list[dict[str, Any]], tools: Any, template: str = PROMPT_TEMPLATE) -> list[dict[str, Any]]:
    """``messages`` with the function-listing system prompt first (merged into an existing
    system message, before its content, as BFCL does)."""
    text = template.replace("{functions}", json.dumps(function_docs(tools), ensure_ascii=False, indent=4))
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{text}\n\n{out[0].get('content') or ''}"
    else:
        out.insert(0, {"role": "system", "content": text})
    return out


@dataclass
class ToolSpec:
    """The resolved ``tools`` node; ``mode == "none"`` (falsy) means a run without tools."""

    mode: str = "none"
    field: str | None = None
    file: str | None = None
    choice: str = "auto"
    prompt: str = PROMPT_TEMPLATE
    _file_tools: Any = dc_field(default=None, repr=False)
    _openai_cache: dict[int, list[dict[str, Any]]] = dc_field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return self.mode != "none"

    @classmethod
    def none(cls) -> "ToolSpec":
        return cls()

    @classmethod
    def from_config(cls, node: Any) -> "ToolSpec":
        """Validate a ``tools`` node (a mapping, or ``None`` for no tools)."""
        if node is None:
            return cls.none()
        if not isinstance(node, Mapping):
            raise ConfigError(f"must be a mapping with keys {', '.join(KEYS)}, got {type(node).__name__}", where="tools")
        for key in node:
            if key not in KEYS:
                raise ConfigError(f"unknown option '{key}' for tools; valid options: {', '.join(KEYS)}", where=f"tools.{key}")
        mode = node.get("mode") or "none"
        if mode not in MODES:
            raise ConfigError(f"must be one of {', '.join(MODES)}, got {mode!r}", where="tools.mode")
        choice = node.get("choice") or "auto"
        if choice not in CHOICES:
            raise ConfigError(f"must be one of {', '.join(CHOICES)}, got {choice!r}", where="tools.choice")
        for key in ("field", "file", "prompt"):
            if node.get(key) is not None and not isinstance(node[key], str):
                raise ConfigError(f"must be a string, got {type(node[key]).__name__}", where=f"tools.{key}")
        spec = cls(mode=mode, field=node.get("field"), file=node.get("file"), choice=choice, prompt=node.get("prompt") or PROMPT_TEMPLATE)
        if mode == "none":
            if spec.field or spec.file:
                raise ConfigError("tools are given but tools.mode is none", where="tools.mode", fix="set tools.mode=fc (native tool calls) or tools.mode=prompt")
            return spec
        if not spec.field and not spec.file:
            raise ConfigError(f"tools.mode={mode} needs tools", where="tools.field", fix="set tools.field=<row field with the tools> or tools.file=tools.json")
        if spec.file:
            spec._file_tools = cls._read_file(spec.file)
        return spec

    @staticmethod
    def _read_file(file: str) -> Any:
        from evalkit.paths import resolve_path

        path = Path(resolve_path(file))
        if not path.is_file():
            raise ConfigError("tools file not found", where=f"tools.file={path}", fix="check the path (relative paths are resolved from where you ran evalkit)")
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"malformed JSON ({exc.msg})", where=f"{path}:{exc.lineno}") from None
        if isinstance(data, Mapping) and isinstance(data.get("tools"), list):
            data = data["tools"]  # {"tools": [...]}, as a request body holds them
        if not isinstance(data, list):
            raise ConfigError("must hold a JSON list of tools (or an object with a 'tools' list)", where=f"tools.file={path}")
        to_openai_tools(data, where=f"tools.file={path}")  # fail now, not per sample
        return data

    def tools_of(self, row: Mapping[str, Any], where: str = "") -> Any:
        """The raw tools offered for ``row`` (its field, else the file's)."""
        if self.field:
            if self.field in row and row[self.field] is not None:
                return row[self.field]
            if self._file_tools is None:
                raise DataError(f"row has no tools field '{self.field}'", where=where or "tools.field", fix="add it, or set tools.field to the field holding the tools")
        return self._file_tools or []

    def openai_tools(self, row: Mapping[str, Any], where: str = "") -> list[dict[str, Any]]:
        raw = self.tools_of(row, where)
        if raw is self._file_tools:
            cached = self._openai_cache.get(0)
            if cached is None:
                cached = self._openai_cache[0] = to_openai_tools(raw, where=f"tools.file={self.file}")
            return cached
        return to_openai_tools(raw, where=where or f"tools.field={self.field}")

    def apply(self, row: Mapping[str, Any], messages: list[dict[str, Any]] | None, where: str = "") -> tuple[list[dict[str, Any]] | None, Any, list[dict[str, Any]] | None]:
        """``(tools, tool_choice, messages)`` for one sample's request.

        ``messages`` are the rendered prompt, or ``None`` (no prompt: the row's own
        ``messages`` are used when there are tools to add). fc mode leaves the messages alone
        and returns OpenAI tools; prompt mode returns no tools and the messages with the
        function-listing system prompt.
        """
        if self.mode == "none":
            return None, None, messages
        if messages is None:
            own = row.get("messages")
            if not isinstance(own, list):
                raise DataError("no prompt is configured and the row has no 'messages' list to add tools to", where=where or "prompt")
            messages = own
        if self.mode == "fc":
            tools = self.openai_tools(row, where)
            return (tools, self.choice, messages) if tools else (None, None, messages)  # no tools offered: a plain chat request
        return None, None, prompt_messages(messages, self.tools_of(row, where), self.prompt)
