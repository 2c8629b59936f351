"""ToolCallF1 / ToolCallExactMatch (class and functional) against the reference on random data."""

from __future__ import annotations

import math
from typing import Any

import pytest

from evalkit_metrics import ToolCallExactMatch, ToolCallF1, tool_call_exact_match, tool_call_f1
from evalkit_metrics.functional import canonical_value

from .randomdata import COMPOSITE, COMPOSITE_SEED, toolcall_data
from .reference import ref_exact_match, ref_tool_f1


def assert_same(actual: Any, expected: Any, path: str = "") -> None:
    """Exact equality for counts and keys, 1e-12 for ratios (summation order may differ)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert list(actual) == list(expected), f"{path}: keys {sorted(set(actual) ^ set(expected))[:5]} differ"
        for k in expected:
            assert_same(actual[k], expected[k], f"{path}.{k}")
    elif isinstance(expected, float):
        assert isinstance(actual, float), f"{path}: {type(actual).__name__} is not a plain float"
        assert math.isclose(actual, expected, rel_tol=1e-12, abs_tol=1e-12), f"{path}: {actual} != {expected}"
    else:
        assert type(actual) is type(expected) and actual == expected, f"{path}: {actual!r} != {expected!r}"


F1_CASES = [
    pytest.param("name", False, None, id="name"),
    pytest.param("name", True, None, id="name-negative"),
    pytest.param("param", False, None, id="param"),
    pytest.param("param", True, COMPOSITE, id="param-negative-composite"),
    pytest.param("param", False, COMPOSITE, id="param-composite"),
    pytest.param("param", False, COMPOSITE_SEED, id="param-composite-seed-values"),
]


@pytest.mark.parametrize("level,negative,composite", F1_CASES)
def test_tool_f1_matches_reference(tool_data, level, negative, composite):
    preds, labels = tool_data
    expected = ref_tool_f1(preds, labels, level, negative, composite)
    assert len(expected["per_tool"]) > 5

    metric = ToolCallF1(level=level, include_negative=negative, composite_keys=composite)
    for start in range(0, len(preds), 1000):  # uneven chunks, as the pipeline feeds them
        metric.update(preds[start : start + 1000], labels[start : start + 1000])
    assert_same(metric.compute(), expected)
    assert_same(tool_call_f1(preds, labels, level=level, include_negative=negative, composite_keys=composite), expected)


def test_random_data_covers_the_hard_cases(tool_data):
    preds, labels = tool_data
    assert sum(1 for label in labels if not label) > 1000
    assert sum(1 for p in preds if not p) > 1000
    assert any(len({c["toolName"] for c in label}) < len(label) for label in labels)
    kinds = {type(v).__name__ for label in labels for c in label for v in (c.get("paramList") or {}).values()}
    assert {"str", "int", "float", "bool", "list", "dict", "NoneType"} <= kinds
    # the reference's hits never exceed the counts (multiset intersection)
    per = ref_tool_f1(preds, labels, "param")["per_tool"]
    assert all(v["fp"] >= 0 and v["fn"] >= 0 for v in per.values())


def test_exact_match_matches_reference(tool_data):
    preds, labels = tool_data
    expected = ref_exact_match(preds, labels)
    assert expected["multi"]["total"] > 1000 and 0 < expected["all"]["accuracy"] < 1
    metric = ToolCallExactMatch()
    for start in range(0, len(preds), 777):
        metric.update(preds[start : start + 777], labels[start : start + 777])
    assert_same(metric.compute(), expected)
    assert_same(tool_call_exact_match(preds, labels), expected)


def test_name_level_counts_repeats_and_negative_class():
    labels = [
        [{"toolName": "priceCheck", "paramList": {"amount": 100}}, {"toolName": "priceCheck", "paramList": {"amount": 200}}, {"toolName": "settlementMethod"}],
        [],
        [],
    ]
    preds = [
        [{"toolName": "priceCheck", "paramList": {"amount": 100}}, {"toolName": "priceCheck", "paramList": {"amount": 999}}, {"toolName": "settlementMethod"}, {"toolName": "priceCheck"}],
        [],
        [{"toolName": "x"}],
    ]
    out = tool_call_f1(preds, labels, include_negative=True)
    assert out["per_tool"]["priceCheck"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "tp": 2, "fp": 1, "fn": 0}
    assert out["per_tool"]["__NEGATIVE__"]["tp"] == 1
    assert out["per_tool"]["__NEGATIVE__"]["fn"] == 1 and out["per_tool"]["__NEGATIVE__"]["fp"] == 0
    assert list(out["per_tool"]) == ["__NEGATIVE__", "priceCheck", "settlementMethod", "x"]
    assert "__NEGATIVE__" not in tool_call_f1(preds, labels)["per_tool"]


def test_param_level_uses_multiset_intersection_not_seed_counting():
    # seed 002 found both predicted k:1 in the label and counted 2 hits; the label has one k:1
    labels = [[{"toolName": "t", "paramList": {"k": 1}}, {"toolName": "t", "paramList": {"k": 2}}, {"toolName": "t", "paramList": {"k": 3}}]]
    preds = [[{"toolName": "t", "paramList": {"k": 1}}, {"toolName": "t", "paramList": {"k": 1}}]]
    row = tool_call_f1(preds, labels, level="param")["per_tool"]["t-k"]
    assert (row["tp"], row["fp"], row["fn"]) == (1, 1, 2)


def test_param_level_canonical_values_and_composite_keys():
    label = [{"toolName": "truckCheck", "paramList": {"truckType": "车长", "value": "4.2米", "cities": ["上海", "北京"], "goods": {"w": 1, "n": "钢材"}}}]
    pred = [{"toolName": "truckCheck", "paramList": {"goods": {"n": "钢材", "w": 1}, "cities": ["北京", "上海"], "value": "4.2米", "truckType": "车长"}}]
    out = tool_call_f1([pred], [label], level="param", composite_keys={"truckCheck": ["truckType", "value"]})
    assert set(out["per_tool"]) == {"truckCheck-truckType", "truckCheck-value", "truckCheck-cities", "truckCheck-goods", "truckCheck-truckType-车长"}
    assert out["micro"]["f1"] == 1.0
    # the composite key carries a's value, so a wrong truckType misses the composite key too
    wrong = [{"toolName": "truckCheck", "paramList": {"truckType": "车型", "value": "4.2米"}}]
    per = tool_call_f1([wrong], [label], level="param", composite_keys={"truckCheck": ["truckType", "value"]})["per_tool"]
    assert per["truckCheck-truckType-车长"]["fn"] == 1 and per["truckCheck-truckType-车型"]["fp"] == 1
    # several pairs per tool
    multi = ToolCallF1(level="param", composite_keys={"truckCheck": [["truckType", "value"], ["value", "truckType"]]})
    multi.update([pred], [label])
    assert "truckCheck-value-4.2米" in multi.compute()["per_tool"]
    # calls without parameters contribute nothing at param level
    assert tool_call_f1([[{"toolName": "a"}]], [[{"toolName": "a", "paramList": {}}]], level="param")["per_tool"] == {}


def test_canonical_value():
    assert canonical_value("上海") == "上海"
    assert canonical_value(["b", "a"]) == canonical_value(["a", "b"])
    assert canonical_value(["a", "b"]) != canonical_value('["a","b"]') == '["a","b"]'  # a string is the string
    assert canonical_value('["b","a"]', parse_json_strings=True) == canonical_value(["a", "b"])
    assert canonical_value([{"y": 1, "x": [2, 1]}, 3]) == canonical_value([3, {"x": [2, 1], "y": 1}])
    assert canonical_value({"b": 1, "a": "北京"}) == canonical_value({"a": "北京", "b": 1}) != '{"a":"北京","b":1}'
    assert [canonical_value(v) for v in (True, 3, 2.5, None)] == ["True", "3", "2.5", "None"]
    assert canonical_value(1) != canonical_value(1.0) != canonical_value(True)


def test_equal_numbers_of_other_types_are_param_misses_but_exact_matches():
    # Python says 1 == 1.0 == True; the param level compares canonical text like the seed
    # (str(v)), exact match compares values like the seed's dict ==.
    label = [[{"toolName": "t", "paramList": {"a": 1, "b": "x"}}]]
    pred = [[{"toolName": "t", "paramList": {"a": True, "b": "x"}}]]
    per = tool_call_f1(pred, label, level="param")["per_tool"]
    assert per["t-a"]["tp"] == 0 and per["t-b"]["tp"] == 1
    assert tool_call_exact_match(pred, label)["all"]["correct"] == 1


def test_exact_match_semantics():
    a = {"toolName": "a", "paramList": {"x": [1, 2]}}
    a2 = {"toolName": "a", "paramList": {"x": [3]}}
    b = {"toolName": "b"}
    labels = [[a], [a, a2, b], [b], [], [], [a, a2]]
    preds = [[a], [b, a2, a], [{"toolName": "b", "paramList": {}}], [], [b], [a, a]]
    out = tool_call_exact_match(preds, labels)
    assert out["single"] == {"correct": 2, "total": 2, "accuracy": 1.0}
    assert out["multi"] == {"correct": 1, "total": 2, "accuracy": 0.5}
    assert out["all"] == {"correct": 4, "total": 6, "accuracy": 4 / 6}
    # list order inside a parameter matters, extra keys of a call do not
    assert tool_call_exact_match([[{"toolName": "a", "paramList": {"x": [2, 1]}}]], [[a]])["all"]["correct"] == 0
    assert tool_call_exact_match([[{**a, "id": "call_1"}]], [[a]])["all"]["correct"] == 1


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_empty_input_gives_zeros():
    zero = {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    for metric in (ToolCallF1(), ToolCallF1(level="param", include_negative=True)):
        assert metric.compute() == {"micro": zero, "macro": zero, "per_tool": {}}
        metric.update([], [])
        assert metric.compute() == {"micro": zero, "macro": zero, "per_tool": {}}
    assert tool_call_f1([], []) == {"micro": zero, "macro": zero, "per_tool": {}}
    em = ToolCallExactMatch().compute()
    assert em == {k: {"correct": 0, "total": 0, "accuracy": 0.0} for k in ("single", "multi", "empty", "all")}


_BAD = [
    ([[]], [[], []], "differ in length", ("name", "param", "exact")),
    ([[]], [[{"tool": "x"}]], r"target\[0\]\[0\] must be an object with 'toolName'", ("name", "param", "exact")),
    ([["x"]], [[]], r"preds\[0\]\[0\] must be an object with 'toolName'", ("name", "param", "exact")),
    ([[]], ["priceCheck"], r"target\[0\] must be a list of tool calls", ("name", "param", "exact")),
    # exact match compares these values as they are, the F1 levels need them well-formed
    ([[{"toolName": "a", "paramList": [1]}]], [[]], r"preds\[0\]\[0\].paramList must be an object", ("param",)),
    ([[{"toolName": ["a"]}]], [[]], r"preds\[0\]\[0\].toolName must be a string", ("name",)),
]


@pytest.mark.parametrize(
    "preds,labels,message,which",
    [pytest.param(p, t, m, w, id=f"{w}-{i}") for i, (p, t, m, ws) in enumerate(_BAD) for w in ws],
)
def test_malformed_input_names_the_sample(preds, labels, message, which):
    with pytest.raises(ValueError, match=message):
        if which == "exact":
            tool_call_exact_match(preds, labels)
        else:
            tool_call_f1(preds, labels, level=which)


def test_bad_options():
    with pytest.raises(ValueError, match="level"):
        ToolCallF1(level="tool")
    with pytest.raises(ValueError, match="composite_keys.truckCheck"):
        ToolCallF1(level="param", composite_keys={"truckCheck": ["truckType"]})


def test_many_updates_stay_compact_and_exact():
    preds, labels = toolcall_data(3000, seed=7)
    metric = ToolCallF1(level="param", composite_keys=COMPOSITE)
    for start in range(0, len(preds), 10):  # 300 updates > the compaction threshold
        metric.update(preds[start : start + 10], labels[start : start + 10])
    assert len(metric.tool_counts) <= 65
    assert_same(metric.compute(), ref_tool_f1(preds, labels, "param", False, COMPOSITE))


def test_string_spelling_json_is_not_the_structure_unless_asked():
    label = [[{"toolName": "t", "paramList": {"v": ["a", "b"]}}]]
    pred = [[{"toolName": "t", "paramList": {"v": '["a","b"]'}}]]
    assert tool_call_f1(pred, label, level="param")["per_tool"]["t-v"]["tp"] == 0
    assert tool_call_f1(pred, label, level="param", parse_json_strings=True)["per_tool"]["t-v"]["tp"] == 1


def test_composite_key_applies_only_to_listed_values():
    spec = {"truckCheck": {"fields": ["truckType", "value"], "values": ["车长", "车型"]}}
    calls = [[{"toolName": "truckCheck", "paramList": {"truckType": "车长", "value": "4.2米"}}, {"toolName": "truckCheck", "paramList": {"truckType": "其他", "value": "x"}}]]
    keys = set(tool_call_f1(calls, calls, level="param", composite_keys=spec)["per_tool"])
    assert "truckCheck-truckType-车长" in keys and "truckCheck-truckType-其他" not in keys
    every = set(tool_call_f1(calls, calls, level="param", composite_keys={"truckCheck": ["truckType", "value"]})["per_tool"])
    assert "truckCheck-truckType-其他" in every


def test_exact_match_buckets_add_up_to_all():
    preds, labels = toolcall_data(300, seed=11)
    result = tool_call_exact_match(preds, labels)
    parts = ("single", "multi", "empty")
    assert result["empty"]["total"] > 0
    assert sum(result[p]["total"] for p in parts) == result["all"]["total"]
    assert sum(result[p]["correct"] for p in parts) == result["all"]["correct"]


def test_exact_match_sample_scores_are_the_counted_verdicts():
    preds, labels = toolcall_data(200, seed=5)
    metric = ToolCallExactMatch()
    metric.update(preds, labels)
    verdicts = metric.sample_scores(preds, labels)
    assert len(verdicts) == 200 and sum(verdicts) == metric.compute()["all"]["correct"]
    assert 0 < sum(verdicts) < 200
