"""Function calling ("fc mode") against the real stub server: tools out, tool_calls back."""

from __future__ import annotations

import json

import pytest

from evalkit.cache import ResponseCache
from evalkit.types import GenerationConfig, Request, Result
from evalkit_api.backend import ApiBackend
from tests.servers.openai_stub import messages_hash

TOOLS = [
    {
        "type": "function",
        "function": {"name": "priceCheck", "description": "price of a load", "parameters": {"type": "object", "properties": {"value": {"type": "string"}}}},
    }
]


def fc_requests(count: int, *, tool_choice=None) -> list[Request]:
    requests = []
    for i in range(count):
        label = [{"toolName": "priceCheck", "paramList": {"value": f"{100 + i}元"}}]
        content = f"how much? #{i}\n#expect: {json.dumps({'label': label}, ensure_ascii=False)}"
        requests.append(Request(index=i, id=i, messages=[{"role": "user", "content": content}], tools=TOOLS, tool_choice=tool_choice))
    return requests


def run(stub, requests, **options) -> list[Result]:
    backend = ApiBackend(base_url=stub.base_url, model="m", hedge=False, backoff_initial=0.01, **options)
    results: list[Result] = []
    backend.generate(requests, results.append)
    return sorted(results, key=lambda r: r.index)


def test_tools_and_tool_choice_are_sent_and_tool_calls_read_with_null_content(stub):
    requests = fc_requests(3, tool_choice="required")
    results = run(stub, requests)
    for i, (request, result) in enumerate(zip(requests, results)):
        body = stub.stats()["bodies"][messages_hash(request.messages)]
        assert body["tools"] == TOOLS and body["tool_choice"] == "required"
        assert result.ok and result.outputs == [""]
        assert result.finish_reason == "tool_calls" and result.reasoning == "calling 1 tool(s)"
        [call] = result.tool_calls
        assert call["function"]["name"] == "priceCheck"
        assert json.loads(call["function"]["arguments"]) == {"value": f"{100 + i}元"}
        assert result.message()["content"] == "" and result.message()["tool_calls"] == result.tool_calls


def test_no_tools_means_no_tools_fields(stub):
    request = Request(index=0, id=0, messages=[{"role": "user", "content": "hi"}])
    [result] = run(stub, [request])
    body = stub.stats()["bodies"][messages_hash(request.messages)]
    assert "tools" not in body and "tool_choice" not in body
    assert result.tool_calls is None and result.finish_reason == "stop" and result.outputs[0].startswith("```json")


def test_tool_choice_is_left_to_the_server_when_not_set(stub):
    request = fc_requests(1)[0]
    run(stub, [request])
    body = stub.stats()["bodies"][messages_hash(request.messages)]
    assert body["tools"] == TOOLS and "tool_choice" not in body


def test_torn_arguments_pass_through_unchanged_and_are_not_retried(stub):
    stub.configure(tool_mode="torn")
    results = run(stub, fc_requests(2))
    assert stub.stats()["total"] == 2  # a torn arguments string is the model's answer, not a fault
    for i, result in enumerate(results):
        arguments = result.tool_calls[0]["function"]["arguments"]
        full = json.dumps({"value": f"{100 + i}元"}, ensure_ascii=False)
        assert result.ok and arguments == full[: len(full) // 2]
        with pytest.raises(ValueError):
            json.loads(arguments)


def test_a_tool_call_tag_left_in_content_is_the_text(stub):
    stub.configure(tool_mode="tag")
    [result] = run(stub, fc_requests(1))
    assert result.tool_calls is None and result.finish_reason == "stop"
    assert result.outputs[0].startswith("<tool_call>") and '"priceCheck"' in result.outputs[0]


def test_fc_with_faults_completes_each_sample_once(stub):
    stub.configure(faults=("500", "malformed", "429"), retry_after=0.01)
    results = run(stub, fc_requests(6))
    assert [r.index for r in results] == list(range(6))
    assert all(r.ok and r.attempts == 4 and r.tool_calls for r in results)
    assert set(stub.stats()["answered"].values()) == {1}


def test_the_cache_keeps_tool_calls_and_keys_on_tools(stub, tmp_path):
    with ResponseCache(tmp_path / "cache") as cache:
        first = run(stub, fc_requests(3), cache=cache)
        sent = stub.stats()["total"]
        again = run(stub, fc_requests(3), cache=cache)
        assert stub.stats()["total"] == sent and all(r.cached for r in again)
        for a, b in zip(first, again):
            assert (b.outputs, b.tool_calls, b.finish_reason, b.reasoning) == (a.outputs, a.tool_calls, a.finish_reason, a.reasoning)
        # Other tools, or another tool_choice, are other questions.
        run(stub, fc_requests(3, tool_choice="required"), cache=cache)
        assert stub.stats()["total"] == sent + 3
        plain = [Request(index=r.index, id=r.id, messages=r.messages) for r in fc_requests(3)]
        assert not any(r.cached for r in run(stub, plain, cache=cache))


def test_sampled_fc_answers_without_a_seed_are_not_reused(stub, tmp_path):
    generation = GenerationConfig(temperature=0.7, seed=None)
    with ResponseCache(tmp_path / "cache") as cache:
        run(stub, fc_requests(2), cache=cache, generation=generation)
        run(stub, fc_requests(2), cache=cache, generation=generation)
        assert stub.stats()["total"] == 4 and len(cache) == 0
