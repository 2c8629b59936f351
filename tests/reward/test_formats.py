"""Preference data in each supported format -> canonical rows; bad rows name file:line."""

from __future__ import annotations

import json

import pytest

from evalkit.data import load_samples
from evalkit.errors import DataError
from evalkit_reward.label_format import PreferenceFormat

U = {"role": "user"}


def one(row, fmt="auto"):
    return PreferenceFormat(format=fmt).convert(row, "f.jsonl:1")


def test_seed003_builds_system_history_question_conversation():
    row = one({"system": "你是助手", "history": [["你好", "您好"]], "question": "运价？", "response_chosen": "每公里三元", "response_rejected": "不知道"})
    assert row["format"] == "seed003" and row["kind"] == "pair"
    assert row["prompt"] == [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "你好"}, {"role": "assistant", "content": "您好"}, {"role": "user", "content": "运价？"}]
    assert row["responses"] == [[{"role": "assistant", "content": "每公里三元"}], [{"role": "assistant", "content": "不知道"}]]
    empty_system = one({"system": "", "history": [], "question": "q", "response_chosen": "a", "response_rejected": "b"})
    assert empty_system["prompt"] == [{"role": "user", "content": "q"}]


def test_trl_explicit_implicit_and_plain_text():
    conv = one({"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]})
    assert conv["format"] == "trl" and conv["prompt"] == [{"role": "user", "content": "q"}]
    implicit = one({"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]})
    assert implicit["prompt"] == [{"role": "user", "content": "q"}] and implicit["responses"][1] == [{"role": "assistant", "content": "b"}]
    text = one({"prompt": "The sky is", "chosen": " blue.", "rejected": " green."})
    assert text["prompt"] == "The sky is" and text["responses"] == [" blue.", " green."]
    implicit_text = one({"chosen": "The sky is blue.", "rejected": "The sky is green."})
    assert implicit_text["prompt"] == "The sky is" and implicit_text["responses"] == [" blue.", " green."]


def test_llamafactory_alpaca_and_sharegpt():
    alpaca = one({"instruction": "翻译", "input": "hello", "chosen": "你好", "rejected": "再见", "history": [["q0", "a0"]]})
    assert alpaca["format"] == "llamafactory" and alpaca["prompt"][-1] == {"role": "user", "content": "翻译\nhello"}
    assert alpaca["prompt"][0] == {"role": "user", "content": "q0"}
    share = one({"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "gpt", "value": "a"}, "rejected": {"from": "gpt", "value": "b"}, "system": "s"})
    assert share["prompt"] == [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    assert share["responses"][0] == [{"role": "assistant", "content": "a"}]


def test_rewardbench_1_and_2_ranked_scored():
    rb = one({"prompt": "q", "chosen": "a", "rejected": "b", "subset": "mt-bench-easy", "id": 7})
    assert rb["format"] == "rewardbench" and rb["label"] == {"kind": "pair", "subset": "mt-bench-easy"} and rb["id"] == 7
    rb2 = one({"prompt": "q", "chosen": ["a"], "rejected": ["b", "c", "d"], "num_correct": 1, "subset": "Focus"})
    assert rb2["kind"] == "best_of_n" and len(rb2["responses"]) == 4 and rb2["label"]["num_correct"] == 1
    ties = one({"id": "tied:12", "prompt": "q", "chosen": ["a", "b"], "rejected": ["c"], "num_correct": 2, "subset": "Ties"})
    assert ties["label"]["ties"] == {"group": "tied", "prompt": 12} and "ties" not in rb2["label"]
    with pytest.raises(DataError, match="'ref:N' or 'tied:N'") as err:
        one({"id": 12, "prompt": "q", "chosen": ["a"], "rejected": ["c"], "num_correct": 1, "subset": "ties"})
    assert err.value.where == "f.jsonl:1"
    ranked = one({"input": "q", "choices": [{"text": "a", "rank": 1}, {"text": "b", "rank": 2}, {"text": "c", "rank": 2}]})
    assert ranked["kind"] == "ranked" and ranked["label"]["ranks"] == [1, 2, 2]
    scored = one({"input": "q", "output": "a", "score": 4.5})
    assert scored["kind"] == "scored" and scored["label"]["score"] == 4.5


@pytest.mark.parametrize(
    "row, message",
    [
        ({"question": "q", "response_chosen": "a", "response_rejected": ""}, "'response_rejected' is missing or empty"),
        ({"question": "q", "response_chosen": "a", "response_rejected": "a"}, "identical"),
        ({"prompt": "q", "chosen": "a"}, "cannot tell the preference format"),
        ({"input": "q", "choices": [{"text": "a", "rank": 1}, {"text": "b", "rank": 1}]}, "same rank"),
        ({"input": "q", "output": "a", "score": "high"}, "'score' must be a number"),
    ],
)
def test_bad_rows_name_the_place(row, message):
    with pytest.raises(DataError, match=message) as info:
        one(row)
    assert str(info.value).startswith("f.jsonl:1")


def test_core_loader_converts_and_detects_per_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"id": f"p{i}", "question": f"q{i}", "response_chosen": "a", "response_rejected": "b"} for i in range(3)]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    samples = load_samples(path, label_format="preference", format_options={"format": "auto"})
    assert [s.id for s in samples] == ["p0", "p1", "p2"] and samples[0].label == {"kind": "pair", "subset": None}
    rows.append({"prompt": "q", "chosen": ["a"], "rejected": ["b"]})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs.jsonl:4.*first row .*is 'seed003'"):
        load_samples(path, label_format="preference", format_options={"format": "auto"})
    with pytest.raises(Exception, match="data.format"):
        load_samples(path, label_format="preference", format_options={"format": "csv"})
