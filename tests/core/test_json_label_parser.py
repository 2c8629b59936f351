"""json_label: think sections, fenced blocks, trailing objects, braces in strings, repair."""

from __future__ import annotations

import json

import pytest

from evalkit_parsers.json_label import JsonLabelParser, last_balanced_object

CALLS = [{"toolName": "priceCheck", "paramList": {"priceType": "总价", "value": "2300元"}}]
BODY = json.dumps({"label": CALLS}, ensure_ascii=False)


@pytest.mark.parametrize(
    "text",
    [
        BODY,
        f"<think>先想想 {{\"label\": []}}</think>\n\n{BODY}",
        f"<think>a</think><think>b</think>{BODY}",
        f"需要调用：\n```json\n{BODY}\n```\n以上。",
        f"```json\n{{\"label\": []}}\n```\n改正：\n```json\n{BODY}\n```",
        f"分析如下。\n\n{BODY}",
        f'前面有个对象 {{"label": []}} 然后是最终答案 {BODY} 结束',
        f"{{\"note\": \"a }} brace in a string\", \"label\": {json.dumps(CALLS, ensure_ascii=False)}}}",
    ],
)
def test_finds_the_label(text):
    assert JsonLabelParser()(text) == CALLS


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "empty"),
        ("我无法回答", "no JSON object"),
        ('{"answer": 1}', "no 'label'"),
        ('{"label": "priceCheck"}', "not a list"),
        ('{"label": [{"name": "x"}]}', "toolName"),
    ],
)
def test_unparseable_outputs_raise_value_error(text, needle):
    with pytest.raises(ValueError) as info:
        JsonLabelParser()(text)
    assert needle in str(info.value)


def test_repair_is_opt_in_and_flagged():
    near = '{"label": [{"toolName": "truckCheck", "paramList": {"truckType": "车长", "value": "9.6米"},]}'
    with pytest.raises(ValueError):
        JsonLabelParser()(near)
    parser = JsonLabelParser(repair=True)
    assert parser(near) == [{"toolName": "truckCheck", "paramList": {"truckType": "车长", "value": "9.6米"}}]
    assert parser.last_repaired
    parser(BODY)
    assert not parser.last_repaired


def test_custom_key():
    assert JsonLabelParser(key="tools")('{"tools": []}') == []


def test_last_balanced_object_respects_escapes():
    text = r'x {"a": "quote \" and } brace"} y {"b": 1} z'
    assert last_balanced_object(text) == '{"b": 1}'
    assert json.loads(last_balanced_object(r'{"a": "\\"}')) == {"a": "\\"}


@pytest.mark.parametrize(
    "text, needle",
    [
        ('{"label": [{"toolName": "a", "paramList": [1, 2]}]}', "paramList' is list"),
        ('{"label": [{"toolName": "a", "paramList": "x"}]}', "paramList' is str"),
        ('{"label": [{"toolName": ["a"]}]}', "toolName' is list"),
        ('{"label": ' + "[" * 100000 + "]" * 100000 + "}", "no JSON object"),
    ],
    ids=["params-list", "params-str", "name-list", "deep-nesting"],
)
def test_malformed_calls_are_parse_errors_not_crashes(text, needle):
    with pytest.raises(ValueError) as info:
        JsonLabelParser()(text)
    assert needle in str(info.value)
