"""The wire format and the backoff policy, checked without a network."""

from __future__ import annotations

import email.utils
import json
import random

import pytest

from evalkit.types import GenerationConfig
from evalkit_api.protocol import (
    MalformedResponse,
    build_payload,
    error_message,
    is_retryable_status,
    normalize_base_url,
    parse_completion,
    retry_after_seconds,
)
from evalkit_api.retry import Backoff

MESSAGES = [{"role": "user", "content": "hi"}]


def test_payload_maps_generation_settings():
    body = build_payload("m", MESSAGES, GenerationConfig(max_new_tokens=64, temperature=0.0, top_p=1.0, top_k=-1, n=1, seed=7, stop=()))
    assert body == {"model": "m", "messages": MESSAGES, "max_tokens": 64, "temperature": 0.0, "top_p": 1.0, "stream": False, "seed": 7}


def test_payload_sends_optional_fields_only_when_set_and_extra_body_wins():
    gen = GenerationConfig(max_new_tokens=8, temperature=0.8, top_p=0.9, top_k=20, n=3, seed=None, stop=("\n\n",))
    extra = {"chat_template_kwargs": {"enable_thinking": False}, "top_p": 0.5}
    body = build_payload("m", MESSAGES, gen, extra)
    assert body["top_k"] == 20 and body["n"] == 3 and body["stop"] == ["\n\n"] and "seed" not in body
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["top_p"] == 0.5


def _reply(*contents, usage=None):
    choices = [{"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop"} for i, c in enumerate(contents)]
    return json.dumps({"choices": choices, "usage": usage or {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "prompt_tokens_details": {"cached_tokens": 0}}})


def test_parse_completion_orders_choices_and_keeps_integer_usage():
    data = json.loads(_reply("a", "b"))
    data["choices"].reverse()
    completion = parse_completion(json.dumps(data), n=2)
    assert completion.texts == ["a", "b"] and completion.finish_reasons == ["stop", "stop"]
    assert completion.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert parse_completion(_reply(None), n=1).texts == [""]  # content: null (e.g. tool calls only)


@pytest.mark.parametrize(
    "body, n, fragment",
    [
        ('{"choices": [', 1, "not valid JSON"),
        ("[1, 2]", 1, "JSON list"),
        ('{"error": {"message": "overloaded"}}', 1, "no choices in the reply (overloaded)"),
        (_reply("a"), 2, "1 of 2 choices"),
        ('{"choices": [{"index": 0}]}', 1, "no message"),
    ],
)
def test_unusable_bodies_are_malformed(body, n, fragment):
    with pytest.raises(MalformedResponse, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_completion(body, n)


def test_error_messages_are_short_single_lines():
    assert error_message(b'{"error": {"message": "bad\\nthing", "type": "x"}}') == "bad thing"
    assert error_message('{"message": "DashScope style", "code": "Throttling"}') == "DashScope style"
    assert error_message('{"detail": "Not Found"}') == "Not Found"
    assert error_message("<html>\n  502 Bad Gateway\n</html>") == "<html> 502 Bad Gateway </html>"
    assert len(error_message("x" * 1000)) == 200


def test_retry_after_forms():
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "0.25"}) == 0.25
    assert retry_after_seconds({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert retry_after_seconds({"Retry-After": date}, now=1_000_000.0) == pytest.approx(30.0)
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_retryable_statuses():
    assert all(is_retryable_status(s) for s in (408, 409, 429, 500, 502, 503, 504))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 422))


def test_base_url_accepts_a_pasted_endpoint():
    assert normalize_base_url("https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions") == "https://dashscope.aliyuncs.com/compatible-mode/v1"
    assert normalize_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"


def test_backoff_grows_caps_and_prefers_retry_after():
    policy = Backoff(initial=0.5, max=4.0, multiplier=2.0, jitter=0.0, retry_after_max=10.0)
    assert [policy.delay(k) for k in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.delay(5, retry_after=7.0) == 7.0
    assert policy.delay(1, retry_after=60.0) == 10.0
    assert policy.delay(2, retry_after=0.0) == 1.0  # "retry now" falls back to backoff
    jittered = Backoff(initial=1.0, max=100.0, multiplier=2.0, jitter=0.5)
    rng = random.Random(0)
    waits = [jittered.delay(3, rng=rng) for _ in range(200)]
    assert all(4.0 <= w <= 6.0 for w in waits) and len(set(waits)) > 100
    with pytest.raises(ValueError):
        Backoff(multiplier=0.5)
