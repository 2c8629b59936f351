"""Function-calling parsers: native ``tool_calls``, hermes ``<tool_call>`` text, Python calls.

Each returns :class:`evalkit.types.Parsed` with normalised calls (``{"name", "arguments"}``,
see :mod:`evalkit_tools.calls`) and ``extra["calls_source"]``: ``native`` (the backend returned
``tool_calls``), ``text`` (read from the text, possibly no calls at all) or ``failed`` (there
was a call that could not be decoded — torn JSON arguments, a broken ``<tool_call>`` block,
text that is not Python calls). A failed decode has prediction ``None`` (BFCL's
``ast_decoder:decoder_failed``; "no calls" for the F1s) and a per-sample error such as
``args_invalid_json``, never an exception. ``tool_call_in_content: true`` flags a
``<tool_call>`` tag left in the text: from an API server it means its tool parser failed
silently.

``parse_message(message)`` reads the assistant message the pipeline passes
(``Result.message()``); ``parser(text)`` reads bare text (replayed outputs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Callable

from evalkit.types import Parsed
from evalkit_tools.calls import CallError, normalize_calls
from evalkit_tools.hermes import TOOL_CALL_TAG, after_thinking, make_text_reader
from evalkit_tools.pythonic import PythonCallError, parse_python_calls

TextReader = Callable[[str], Any]


def _flags(text: str | None) -> dict[str, Any]:
    return {"tool_call_in_content": True} if text and TOOL_CALL_TAG in text else {}


def _failed(code: str, text: str | None = None) -> Parsed:
    return Parsed(prediction=None, error=code, extra={"calls_source": "failed", **_flags(text)})


def _saved_message(text: str) -> Mapping[str, Any] | None:
    """A replayed output that is a saved OpenAI message (``{"content", "tool_calls"}``)."""
    stripped = text.lstrip()
    if not stripped.startswith("{") or '"tool_calls"' not in text:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("message"), dict):
        data = data["message"]  # a saved choice
    return data if isinstance(data, dict) and "tool_calls" in data else None


class _CallParser:
    """Shared parts: ``empty`` (no calls), message and text entry points."""

    empty = None

    def read_text(self, text: str) -> Parsed:
        raise NotImplementedError

    def __call__(self, text: str) -> Parsed:
        saved = _saved_message(text) if isinstance(text, str) else None
        if saved is not None:
            return self.parse_message(saved)
        return self.read_text(text or "")

    def parse_message(self, message: Mapping[str, Any]) -> Parsed:
        content = message.get("content")
        native = message.get("tool_calls")
        if native:
            try:
                calls = normalize_calls(native)
            except CallError as exc:
                return _failed(exc.code, content)
            return Parsed(prediction=calls, extra={"calls_source": "native", **_flags(content)})
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        return self(content or "")  # plain text, or a replayed output that is a saved message


class HermesParser(_CallParser):
    """``hermes``: ``<tool_call>{"name", "arguments"}</tool_call>`` blocks in the text.

    ``engine``: ``auto`` (vLLM's own parser when vLLM is loaded, else built-in), ``vllm``,
    ``builtin``; ``vllm_parser`` names the vLLM tool parser (``hermes``, ``qwen3_xml``, ...).
    """

    def __init__(self, engine: str = "auto", vllm_parser: str = "hermes") -> None:
        if engine not in ("auto", "vllm", "builtin"):
            raise ValueError(f"engine must be auto, vllm or builtin, got {engine!r}")
        self.engine = engine
        self.vllm_parser = vllm_parser
        self._reader: TextReader | None = None if engine == "auto" else make_text_reader(engine, vllm_parser)

    @property
    def reader(self) -> TextReader:
        if self._reader is None:  # decided at the first output: the vLLM backend loads vLLM after parsers are built
            self._reader = make_text_reader(self.engine, self.vllm_parser)
        return self._reader

    def read_text(self, text: str) -> Parsed:
        try:
            calls = self.reader(after_thinking(text))
        except CallError as exc:
            return _failed(exc.code, text)
        return Parsed(prediction=calls, extra={"calls_source": "text", **_flags(text)})


class PythonicParser(_CallParser):
    """``pythonic``: ``[func(a=1), other(b="x")]`` (BFCL's prompt-mode answers), via ``ast``."""

    def read_text(self, text: str) -> Parsed:
        try:
            decoded = parse_python_calls(after_thinking(text))
        except PythonCallError:
            return _failed("not_python_calls", text)
        return Parsed(prediction=normalize_calls(decoded), extra={"calls_source": "text", **_flags(text)})


class ToolCallsParser(_CallParser):
    """``tool_calls``: native calls from the message, else calls read from its text.

    ``text`` picks the text reader used when the message has no ``tool_calls``: ``hermes``
    (default; offline backends), ``pythonic`` or ``none`` (text never holds calls).
    ``tools_mode`` (e.g. ``${tools.mode}``) decides it from the run's tools instead: ``prompt``
    reads Python calls, ``fc`` hermes blocks.
    """

    def __init__(self, text: str = "hermes", engine: str = "auto", vllm_parser: str = "hermes", tools_mode: str | None = None) -> None:
        if tools_mode is not None:
            if tools_mode not in ("fc", "prompt", "none"):
                raise ValueError(f"tools_mode must be fc, prompt or none, got {tools_mode!r}")
            text = "pythonic" if tools_mode == "prompt" else "hermes"
        readers: dict[str, Callable[[], _CallParser | None]] = {
            "hermes": lambda: HermesParser(engine=engine, vllm_parser=vllm_parser),
            "pythonic": PythonicParser,
            "none": lambda: None,
        }
        if text not in readers:
            raise ValueError(f"text must be one of {', '.join(readers)}, got {text!r}")
        self.text = readers[text]()

    def read_text(self, text: str) -> Parsed:
        if self.text is None:
            return Parsed(prediction=None, extra={"calls_source": "text", **_flags(text)})
        return self.text.read_text(text)
