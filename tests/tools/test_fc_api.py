"""fc mode end to end against a loopback OpenAI-compatible server, with its faults.

The stub answers requests that offer tools with ``tool_calls`` and ``content: null``
(``native``), with each ``arguments`` string cut in half (``torn``), or with a hermes
``<tool_call>`` left inside ``content`` (``tag``: the server's tool parser failed silently).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import read_jsonl, run_cli
from tests.servers.openai_stub import StubServer

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"name": "get_time", "description": "a BFCL-style function doc", "parameters": {"type": "dict", "properties": {"tz": {"type": "string"}}}}
LABELS = {
    "one": [{"toolName": "get_weather", "paramList": {"city": "Paris"}}],
    "two": [{"toolName": "get_weather", "paramList": {"city": "上海"}}, {"toolName": "get_time", "paramList": {"tz": "CET"}}],
    "none": [],
    "made_up": [{"toolName": "book_flight", "paramList": {"to": "Rome"}}],
}


def _data(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "rows.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": key, "messages": [{"role": "user", "content": f"help me\n#expect: {json.dumps({'label': label}, ensure_ascii=False)}"}], "label": label}, ensure_ascii=False) + "\n"
            for key, label in LABELS.items()
        ),
        encoding="utf-8",
    )
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([WEATHER, TIME]), encoding="utf-8")
    return data, tools


def _run(tmp_path: Path, tool_mode: str) -> tuple[dict, dict, dict]:
    data, tools = _data(tmp_path)
    with StubServer(model="m", tool_mode=tool_mode) as server:
        proc = run_cli(
            [
                "backend=api", f"backend.base_url={server.base_url}", "backend.model=m", f"data.path={data}",
                "tools=fc", "tools.field=null", f"tools.file={tools}", "tools.choice=required", "parser=tool_calls",
                "+metrics.call_errors.name=tool_call_errors", f"+metrics.call_errors.tools_file={tools}",
                f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", "run.progress=false",
            ]
        )
        sent = server.stats()
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {r["id"]: r for r in read_jsonl(tmp_path / "run" / "predictions.jsonl")}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    return records, metrics, sent


def _calls(label: list) -> list:
    return [{"name": c["toolName"], "arguments": c["paramList"]} for c in label]


def test_native_tool_calls_with_null_content(tmp_path):
    records, metrics, _ = _run(tmp_path, "native")
    for key, label in LABELS.items():
        record = records[key]
        if label:
            assert record["prediction"] == _calls(label)
            assert record["calls_source"] == "native"
            assert record["finish_reason"] == "tool_calls"
            assert record["reasoning"].startswith("calling")
        else:
            assert record["prediction"] is None and record["calls_source"] == "text"
        assert record["error"] is None and "tool_call_in_content" not in record
    assert metrics["num_parse_errors"] == 0
    assert metrics["call_errors"] == {"samples": 4, "calls": 4, "hallucinated_function": 1, "missed_call": 0, "spurious_call": 0}


def test_torn_arguments_are_per_sample_parse_errors(tmp_path):
    records, metrics, _ = _run(tmp_path, "torn")
    for key, label in LABELS.items():
        record = records[key]
        if label:
            assert record["prediction"] is None
            assert record["error"] == "parse: args_invalid_json"
            assert record["calls_source"] == "failed"
    assert metrics["num_parse_errors"] == 3
    assert metrics["call_errors"]["missed_call"] == 3


def test_tool_call_left_in_content_is_flagged_and_read(tmp_path):
    records, metrics, _ = _run(tmp_path, "tag")
    for key, label in LABELS.items():
        record = records[key]
        if label:
            assert record["tool_call_in_content"] is True
            assert record["calls_source"] == "text"
            assert record["prediction"] == _calls(label)
    assert metrics["num_parse_errors"] == 0


def test_tools_and_tool_choice_are_sent_as_openai_tools(tmp_path):
    data, tools = _data(tmp_path)
    with StubServer(model="m") as server:
        proc = run_cli(
            [
                "backend=api", f"backend.base_url={server.base_url}", "backend.model=m", f"data.path={data}", "data.limit=1",
                "tools=fc", "tools.field=null", f"tools.file={tools}", "tools.choice=required", "parser=tool_calls",
                f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", "run.progress=false",
            ]
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        bodies = server.stats()["bodies"]
    assert len(bodies) == 1
    body = next(iter(bodies.values()))
    assert body["tool_choice"] == "required"
    names = [t["function"]["name"] for t in body["tools"]]
    assert names == ["get_weather", "get_time"]
    time_tool = body["tools"][1]["function"]
    assert time_tool["parameters"]["type"] == "object"  # BFCL's dict -> object, as for FC models
