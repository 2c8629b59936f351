"""Dataset loading: JSON arrays and JSONL, ids, labels, shards, and errors that name the place."""

from __future__ import annotations

import json

import pytest

from evalkit.data import load_samples
from evalkit.errors import DataError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_and_json_array_load_the_same(tmp_path):
    rows = [{"id": "a", "label": [], "问题": "你好"}, {"id": "b", "label": [{"toolName": "x"}]}]
    jsonl = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n")
    array = write(tmp_path / "d.json", json.dumps(rows, ensure_ascii=False))
    a = load_samples(jsonl, label_format="tool_calls")
    b = load_samples(array, label_format="tool_calls")
    assert [(s.index, s.id, s.label) for s in a] == [(s.index, s.id, s.label) for s in b] == [(0, "a", []), (1, "b", [{"toolName": "x"}])]
    assert a[0].row["问题"] == "你好"
    assert a[1].where.endswith("d.jsonl:2") and b[1].where.endswith("d.json[1]")


def test_ids_fall_back_to_position(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"label": 1}\n{"label": 2}\n')
    assert [s.id for s in load_samples(path)] == [0, 1]


def test_shards_partition_the_dataset(tmp_path):
    path = write(tmp_path / "d.jsonl", "".join(json.dumps({"id": i, "label": i}) + "\n" for i in range(10)))
    shards = [load_samples(path, num_shards=3, shard_index=k) for k in range(3)]
    indices = sorted(s.index for shard in shards for s in shard)
    assert indices == list(range(10))
    with pytest.raises(DataError):
        load_samples(path, num_shards=3, shard_index=3)


@pytest.mark.parametrize(
    "text, where, needle",
    [
        ('{"id": 1, "label": []}\n{"id": 2, "label": [}\n', "d.jsonl:2", "malformed JSON"),
        ('{"id": 1, "label": {"toolName": "x"}}\n', "d.jsonl:1", "label must be a list"),
        ('{"id": 1, "label": ["x"]}\n', "d.jsonl:1", "label[0] must be an object"),
        ('{"id": 1}\n', "d.jsonl:1", "missing label field"),
        ('{"id": 1, "label": []}\n{"id": 1, "label": []}\n', "d.jsonl:2", "duplicate id"),
        ('[1, 2]\n', "d.jsonl[0]", "must be a JSON object"),
        ("", "d.jsonl", "empty"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, text, where, needle):
    path = write(tmp_path / "d.jsonl", text)
    with pytest.raises(DataError) as info:
        load_samples(path, label_format="tool_calls")
    message = str(info.value)
    assert where in message and needle in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        load_samples(tmp_path / "nope.jsonl")
    assert "not found" in str(info.value) and "data.path" in str(info.value)


def test_invalid_utf8(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes('{"id": 1, "label": "上"}'.encode("gbk") + b"\n")
    with pytest.raises(DataError) as info:
        load_samples(path)
    assert "UTF-8" in str(info.value)
