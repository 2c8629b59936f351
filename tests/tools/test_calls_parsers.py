"""Call dialects, the tools node, and the function-calling parsers on their own."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import ConfigError, DataError
from evalkit.toolspec import ToolSpec, to_openai_tools
from evalkit_tools.calls import CallError, dialect, normalize_calls, to_bfcl, to_openai, to_seed
from evalkit_tools.hermes import read_hermes
from evalkit_tools.parsers import HermesParser, PythonicParser, ToolCallsParser
from evalkit_tools.pythonic import PythonCallError, parse_python_calls

CALLS = [{"name": "get_weather", "arguments": {"city": "上海", "days": [1, 2]}}, {"name": "math.hypot", "arguments": {}}]


def test_every_dialect_round_trips_to_the_normalised_call():
    assert normalize_calls(to_seed(CALLS)) == CALLS
    assert normalize_calls(to_openai(CALLS)) == CALLS
    assert normalize_calls(to_bfcl(CALLS)) == CALLS
    mixed = [to_seed(CALLS)[0], to_openai(CALLS)[1]]
    assert normalize_calls(mixed) == CALLS
    assert [dialect(c) for c in (to_seed(CALLS)[0], to_openai(CALLS)[0], to_bfcl(CALLS)[0], CALLS[0])] == ["seed", "openai", "bfcl", "normal"]
    assert normalize_calls(None) is None and to_seed(None) == []
    assert normalize_calls([{"toolName": "a"}]) == [{"name": "a", "arguments": {}}]  # paramList missing -> {}


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ({"type": "function", "function": {"name": "f", "arguments": '{"a": 1'}}, "args_invalid_json"),
        ({"type": "function", "function": {"name": "f", "arguments": "[1]"}}, "args_not_object"),
        ({"foo": 1, "bar": 2}, "bad_call"),
    ],
)
def test_bad_calls_name_their_reason(call, code):
    with pytest.raises(CallError) as info:
        normalize_calls([call])
    assert info.value.code == code


def test_hermes_blocks_like_vllms_parser():
    text = 'sure <tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call><tool_call>{"name": "b", "arguments": {}}'
    assert read_hermes(text) == [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]
    assert read_hermes("no calls here") is None
    with pytest.raises(CallError):
        read_hermes('<tool_call>{"name": "a", "arguments": {"x": </tool_call>')


@pytest.mark.vllm
def test_builtin_hermes_reader_agrees_with_vllms_own_parser():
    vllm_reader = HermesParser(engine="vllm").reader
    texts = [
        '<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>',
        'text first <tool_call>\n{"name": "a", "arguments": {"s": "上海"}}\n</tool_call>\n<tool_call>{"name": "b", "arguments": {}}</tool_call>',
        '<tool_call>{"name": "open", "arguments": {"k": [1, 2]}}',
        "plain answer",
    ]
    for text in texts:
        assert read_hermes(text) == vllm_reader(text), text
    with pytest.raises(CallError):
        vllm_reader('<tool_call>{"name": "a", "arguments": </tool_call>')


def test_tool_calls_parser_sources_and_flags():
    parser = ToolCallsParser()
    native = parser.parse_message({"content": None, "tool_calls": to_openai(CALLS[:1])})
    assert native.prediction == CALLS[:1] and native.extra == {"calls_source": "native"} and native.error is None
    torn = parser.parse_message({"content": None, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": '{"a"'}}]})
    assert torn.prediction is None and torn.error == "args_invalid_json" and torn.extra["calls_source"] == "failed"
    left = parser.parse_message({"content": '<tool_call>{"name": "f", "arguments": {}}</tool_call>', "tool_calls": None})
    assert left.prediction == [{"name": "f", "arguments": {}}] and left.extra == {"calls_source": "text", "tool_call_in_content": True}
    thinking = parser("<think>maybe <tool_call>{bad}</tool_call></think>No tool needed.")
    assert thinking.prediction is None and thinking.error is None
    saved = parser(json.dumps({"content": None, "tool_calls": to_openai(CALLS)}))  # a replayed OpenAI message
    assert saved.prediction == CALLS and saved.extra["calls_source"] == "native"
    assert ToolCallsParser(tools_mode="prompt")("[f(a=1)]").prediction == [{"name": "f", "arguments": {"a": 1}}]


def test_pythonic_parser_reads_calls_without_eval():
    assert parse_python_calls('[get_weather(city="Paris", days=-2, ratio=3/4), math.hypot(x=2**3, y=(1, 2), z=math.pi)]') == [
        {"get_weather": {"city": "Paris", "days": -2, "ratio": 0.75}},
        {"math.hypot": {"x": 8, "y": (1, 2), "z": "math.pi"}},
    ]
    assert parse_python_calls("```\nf(a={'k': [1, None, True]})\n```") == [{"f": {"a": {"k": [1, None, True]}}}]
    for bad in ("I cannot help with that.", "[f(a=1), 3]", "f(a=2**99999)", "[f(a=1) g(b=2)]"):
        with pytest.raises(PythonCallError):
            parse_python_calls(bad)
    assert PythonicParser()("Sorry, no.").error == "not_python_calls"


def test_tools_node_fc_prompt_and_errors(tmp_path):
    docs = [{"name": "geo.distance", "description": "d", "parameters": {"type": "dict", "properties": {"a": {"type": "float"}, "b": {"type": "tuple", "items": {"type": "integer"}}}, "required": ["a"]}}]
    tools = to_openai_tools(docs)
    function = tools[0]["function"]
    assert function["name"] == "geo_distance" and function["parameters"]["type"] == "object"
    assert function["parameters"]["properties"]["a"]["type"] == "number" and function["parameters"]["properties"]["b"]["type"] == "array"
    assert docs[0]["parameters"]["type"] == "dict"  # the row is not modified
    row = {"fns": docs, "messages": [{"role": "user", "content": "q"}]}
    sent, choice, messages = ToolSpec.from_config({"mode": "fc", "field": "fns", "choice": "required"}).apply(row, None)
    assert sent == tools and choice == "required" and messages == row["messages"]
    none_sent, _, prompted = ToolSpec.from_config({"mode": "prompt", "field": "fns"}).apply(row, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"}])
    assert none_sent is None and prompted[0]["content"].endswith("\n\nBe brief.") and '"geo.distance"' in prompted[0]["content"]
    assert not ToolSpec.from_config({"mode": "none"}) and ToolSpec.from_config(None).apply(row, None) == (None, None, None)
    for node, key in (({"mode": "fc"}, "tools.field"), ({"mode": "bad", "field": "x"}, "tools.mode"), ({"mode": "fc", "field": "x", "typo": 1}, "tools.typo"), ({"mode": "fc", "file": str(tmp_path / "missing.json")}, "tools.file")):
        with pytest.raises(ConfigError) as info:
            ToolSpec.from_config(node)
        assert key in str(info.value)
    with pytest.raises(DataError):
        ToolSpec.from_config({"mode": "fc", "field": "tools"}).apply({"messages": []}, None, where="rows.jsonl:3")
