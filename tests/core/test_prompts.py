"""Prompt templates: Chinese field names, readable JSON, prompt files and precedence."""

from __future__ import annotations

import pytest

from evalkit.errors import ConfigError, DataError
from evalkit.prompts import PromptBuilder
from evalkit.types import Sample


def sample(**row):
    return Sample(index=0, id=0, row=row, label=None, where="data.jsonl:1")


def test_chinese_keys_and_readable_json():
    builder = PromptBuilder(system="你是助手", user="历史：{{ 历史对话 | tojson }} 问：{{ row['当前query'] }}")
    messages = builder.render(sample(历史对话=["司机：你好"], 当前query="运费多少？"))
    assert messages == [
        {"role": "system", "content": "你是助手"},
        {"role": "user", "content": '历史：["司机：你好"] 问：运费多少？'},
    ]


def test_prompt_file_and_explicit_templates_win(tmp_path):
    path = tmp_path / "prompt.yaml"
    path.write_text("system_prompt: 文件系统\nuser_prompt: '文件 {{ q }}'\n", encoding="utf-8")
    assert PromptBuilder.from_config(file=str(path)).render(sample(q="1")) == [
        {"role": "system", "content": "文件系统"},
        {"role": "user", "content": "文件 1"},
    ]
    assert PromptBuilder.from_config(file=str(path), user="显式 {{ q }}").render(sample(q="2"))[1]["content"] == "显式 2"
    assert PromptBuilder.from_config(file=str(path), system=None).render(sample(q="3")) == [{"role": "user", "content": "文件 3"}]


def test_missing_field_names_the_row():
    with pytest.raises(DataError) as info:
        PromptBuilder(system=None, user="{{ nope }}").render(sample(q=1))
    assert "data.jsonl:1" in str(info.value) and "nope" in str(info.value)


def test_optional_field_with_default():
    assert PromptBuilder(user="{{ x | default(none) | tojson }}").render(sample())[0]["content"] == "null"


def test_bad_template_and_bad_file(tmp_path):
    with pytest.raises(ConfigError):
        PromptBuilder(user="{{ unclosed")
    with pytest.raises(ConfigError) as info:
        PromptBuilder.from_config(file=str(tmp_path / "missing.yaml"))
    assert "prompt.file" in str(info.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("system_prompt: x\nextra: 1\n")
    with pytest.raises(ConfigError) as info:
        PromptBuilder.from_config(file=str(bad))
    assert "extra" in str(info.value)


def test_missing_field_through_tojson_names_the_row():
    with pytest.raises(DataError) as info:
        PromptBuilder(user="{{ cargo | tojson }}").render(sample(q=1))
    assert "data.jsonl:1" in str(info.value) and "cargo" in str(info.value)
