"""Tool calls written as text by the model: hermes ``<tool_call>{...}</tool_call>`` blocks.

Qwen's and Hermes' chat templates make models answer a function call as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; an API server's tool parser turns
that into ``tool_calls``, an offline backend (HF, vLLM ``LLM.chat``) leaves it in the text.

Where vLLM is already loaded in the process (the vLLM backend is running) or
``engine: vllm`` is set, vLLM's own tool parser does the work (any parser name vLLM registers:
``hermes``, ``qwen3_xml``, ``llama3_json``, ...), so offline scores match what ``vllm serve
--tool-call-parser`` would return. Otherwise the built-in reader below applies the same rules
as vLLM's ``hermes`` parser (a final unterminated block counts; one bad block fails the whole
output), without importing vLLM (seconds of start-up for a replay).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from evalkit_tools.calls import Call, CallError, normalize_calls

TOOL_CALL_TAG = "<tool_call>"
_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)


def after_thinking(text: str) -> str:
    """The answer part of a thinking model's output (after the last ``</think>``)."""
    return text.rsplit("</think>", 1)[1] if "</think>" in text else text


def read_hermes(text: str) -> list[Call] | None:
    """Calls in ``text``; ``None`` when there is no ``<tool_call>`` block; :class:`CallError`
    (``tool_call_invalid_json``) when a block is not a JSON call."""
    if TOOL_CALL_TAG not in text:
        return None
    calls: list[Call] = []
    for closed, open_ended in _BLOCK.findall(text):
        raw = closed or open_ended
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CallError("tool_call_invalid_json", f"a <tool_call> block is not JSON ({exc.msg})") from None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or "arguments" not in data:
            raise CallError("tool_call_invalid_json", "a <tool_call> block lacks 'name' and 'arguments'")
        arguments = data["arguments"]
        if not isinstance(arguments, dict):
            raise CallError("args_not_object", f"arguments of '{data['name']}' must be a JSON object")
        calls.append({"name": data["name"], "arguments": arguments})
    return calls


class VllmToolParser:
    """vLLM's registered tool parser ``name``, used on whole outputs (non-streaming)."""

    def __init__(self, name: str = "hermes") -> None:
        try:
            from vllm.tool_parsers import ToolParserManager
        except ImportError:
            from evalkit.errors import missing_dependency

            raise missing_dependency("vllm", "vllm", alternative="or set parser.engine=builtin") from None
        cls = ToolParserManager.get_tool_parser(name)
        self.start_token = getattr(cls, "tool_call_start_token", TOOL_CALL_TAG)
        self.parser = cls(tokenizer=_TokenizerStub())

    def __call__(self, text: str) -> list[Call] | None:
        info = self.parser.extract_tool_calls(text, None)
        if not info.tools_called:
            if self.start_token and self.start_token in text:
                raise CallError("tool_call_invalid_json", "vLLM's tool parser could not read the tool call in the text")
            return None
        return normalize_calls([{"name": c.function.name, "arguments": c.function.arguments} for c in info.tool_calls])


class _TokenizerStub:
    """Text-only parsing needs no tokenizer, but vLLM's parsers require a truthy one."""

    def get_vocab(self) -> dict[str, int]:
        return {}


def make_text_reader(engine: str = "auto", vllm_parser: str = "hermes") -> Any:
    """The function that reads calls from text: vLLM's parser or the built-in hermes one."""
    if engine not in ("auto", "vllm", "builtin"):
        raise ValueError(f"engine must be auto, vllm or builtin, got {engine!r}")
    if engine == "vllm" or (engine == "auto" and "vllm" in sys.modules):
        return VllmToolParser(vllm_parser)
    if vllm_parser != "hermes":
        raise ValueError(f"tool parser '{vllm_parser}' needs vLLM; set engine=vllm (pip install \"evalkit[vllm]\") or use hermes")
    return read_hermes
