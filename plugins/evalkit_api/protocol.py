"""The chat-completions wire format: request bodies in, parsed completions out.

Pure functions with no network and no third-party imports, so the mapping from evalkit's
settings to what an OpenAI-compatible server receives (and the way a reply is judged usable)
can be read and tested on its own. Servers differ in what they accept; the choices here are
the common denominator of OpenAI, vLLM's server and DashScope's compatible mode:

* ``max_new_tokens`` is sent as ``max_tokens`` (every compatible server knows it);
* ``top_k`` is only sent when it is set (``!= -1``): vLLM accepts it as an extra field,
  OpenAI rejects unknown fields, so it must not appear by default;
* ``n`` is only sent when > 1 and ``stop`` only when non-empty, for servers that reject them;
* ``tools`` / ``tool_choice`` are sent only when a request offers tools (function calling);
* ``extra_body`` is merged last, so a user can add or override any field
  (``chat_template_kwargs: {enable_thinking: false}`` for Qwen3 behind vLLM).

Replies: ``message.tool_calls`` is read even when ``content`` is null (the text is then
``""``); a call's ``arguments`` string is passed through as sent, valid JSON or not (a
tool-call parser judges it per sample).
"""

from __future__ import annotations

import email.utils
import json
import time
import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

#: Statuses worth another attempt: timeouts, conflicts, rate limits and server-side failures.
RETRYABLE_STATUS = frozenset({408, 409, 429})
#: Statuses that mean the key is wrong or lacks access; every other request would fail alike.
AUTH_STATUS = frozenset({401, 403})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or status >= 500


def chat_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/chat/completions"


def normalize_base_url(base_url: str) -> str:
    """Accept the full endpoint users paste from their scripts (``.../v1/chat/completions``)."""
    url = base_url.strip().rstrip("/")
    for suffix in ("/chat/completions", "/completions"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
            break
    return url


def build_payload(
    model: str,
    messages: Any,
    generation: Any,
    extra_body: Mapping[str, Any] | None = None,
    *,
    tools: Any = None,
    tool_choice: Any = None,
) -> dict[str, Any]:
    """The JSON body of one chat-completions request for ``generation`` (a GenerationConfig)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": int(generation.max_new_tokens),
        "temperature": float(generation.temperature),
        "top_p": float(generation.top_p),
        "stream": False,
    }
    if generation.top_k is not None and int(generation.top_k) != -1:
        body["top_k"] = int(generation.top_k)
    if int(generation.n) > 1:
        body["n"] = int(generation.n)
    if generation.seed is not None:
        body["seed"] = int(generation.seed)
    if generation.stop:
        body["stop"] = list(generation.stop)
    if tools is not None:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if extra_body:
        body.update(extra_body)
    return body


class MalformedResponse(ValueError):
    """A 2xx reply whose body is not a usable completion (torn JSON, no choices, ...)."""


class TooFewChoices(MalformedResponse):
    """A well-formed reply with fewer than ``n`` choices: the server ignores ``n`` (some
    hosted APIs do), which no retry will change."""


@dataclass
class Completion:
    """The usable part of one reply: ``n`` texts in choice order, and the token usage.

    ``tool_calls`` and ``reasoning`` are those of each choice (``None`` when absent)."""

    texts: list[str]
    finish_reasons: list[str | None]
    usage: dict[str, int] | None
    tool_calls: list[list[dict[str, Any]] | None] = dataclasses.field(default_factory=list)
    reasoning: list[str | None] = dataclasses.field(default_factory=list)


def parse_completion(body: bytes | str, n: int) -> Completion:
    """Parse a chat-completions reply; raise :class:`MalformedResponse` if it is unusable.

    A reply with fewer than ``n`` choices raises :class:`TooFewChoices`, so a server that
    ignores ``n`` is reported instead of silently scoring fewer samples.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"body is not valid JSON ({exc.__class__.__name__} at char {getattr(exc, 'pos', '?')})") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"body is a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        detail = error_message(data)
        raise MalformedResponse("no choices in the reply" + (f" ({detail})" if detail else ""))
    by_index: dict[int, dict[str, Any]] = {}
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise MalformedResponse("a choice is not an object")
        index = choice.get("index", position)
        by_index[int(index) if isinstance(index, int) else position] = choice
    if len(by_index) < n:
        raise TooFewChoices(f"{len(by_index)} of {n} choices returned")
    texts: list[str] = []
    reasons: list[str | None] = []
    calls: list[list[dict[str, Any]] | None] = []
    thoughts: list[str | None] = []
    for index in sorted(by_index)[:n]:
        choice = by_index[index]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedResponse("a choice has no message object")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise MalformedResponse("message content is not a string")
        texts.append(content or "")
        reason = choice.get("finish_reason")
        reasons.append(reason if isinstance(reason, str) else None)
        calls.append(_tool_calls(message.get("tool_calls")))
        thought = message.get("reasoning_content", message.get("reasoning"))
        thoughts.append(thought if isinstance(thought, str) else None)
    return Completion(texts=texts, finish_reasons=reasons, usage=parse_usage(data.get("usage")), tool_calls=calls, reasoning=thoughts)


def _tool_calls(value: Any) -> list[dict[str, Any]] | None:
    """A message's native calls as sent (``None`` when there are none)."""
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(isinstance(call, dict) for call in value):
        raise MalformedResponse("message tool_calls is not a list of objects")
    return value


def parse_usage(usage: Any) -> dict[str, int] | None:
    """Integer token counts of a reply's ``usage`` (nested detail objects are dropped)."""
    if not isinstance(usage, dict):
        return None
    counts = {k: int(v) for k, v in usage.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return counts or None


def error_message(data: Any, limit: int = 200) -> str:
    """The human part of an error reply: ``{"error": {"message": ...}}``, ``{"message": ...}``
    (DashScope) or ``{"detail": ...}`` (FastAPI), else the raw text, shortened to one line."""
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8", errors="replace")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return " ".join(data.split())[:limit]
    text: Any = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            text = err.get("message") or err.get("code")
        elif isinstance(err, str):
            text = err
        text = text or data.get("message") or data.get("detail")
    if text is None:
        text = json.dumps(data, ensure_ascii=False) if data not in (None, "") else ""
    return " ".join(str(text).split())[:limit]


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` (OpenAI) or ``Retry-After``
    (delta-seconds, fractional accepted, or an HTTP date). ``None`` when absent or unreadable."""
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
