"""A seed-002 user's own files work on the first try and give the seed's numbers.

The files are shaped exactly like the seed's: a JSON list of rows with Chinese field names
(``历史对话``-style fields, ``当前query``, ``货源信息``), the seed's ``prompt.yaml`` with one
template under ``system_prompt`` and the variables ``{{ history }}``, ``{{ cargo_info }}``,
``{{ query }}``, and the seed's saved-results JSON list (``result``/``error``/``status_code``/
``time_cost``, matched by position). Figures are checked against an implementation of the
seed's definitions written here (string keys ``tool-param:value``, value-filtered composite
keys), with the one documented difference: parameter hits are a multiset intersection.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from tests.conftest import read_jsonl, run_cli
from tests.servers.openai_stub import StubServer

SEED_PROMPT = """你是货运平台的客服助手。根据对话判断需要调用的工具。
历史对话：{{ history }}
货源信息：{{ cargo_info }}
当前问题：{{ query }}
以 JSON 输出：{"label": [...]}"""

TRUCK_TYPES = ["车长", "车型", "其他"]
PRICE_TYPES = ["到车价", "总价", "单价"]


def _call(rng: random.Random, name: str) -> dict[str, Any]:
    if name == "truckCheck":
        return {"toolName": name, "paramList": {"truckType": rng.choice(TRUCK_TYPES), "value": rng.choice(["4.2米", "6.8米", "平板", "高栏"])}}
    if name == "priceCheck":
        return {"toolName": name, "paramList": {"priceType": rng.choice(PRICE_TYPES), "value": rng.choice(["100元", "200元", "300元"])}}
    if name == "loadTimeCheck":
        return {"toolName": name, "paramList": {"date": rng.choice(["今天", "明天"]), "slots": rng.sample(["上午", "下午", "晚上"], 2)}}
    return {"toolName": name, "paramList": {}}


def _label(rng: random.Random) -> list[dict[str, Any]]:
    names = rng.sample(["truckCheck", "priceCheck", "loadTimeCheck", "settlementMethod"], rng.choice([0, 1, 1, 2, 3]))
    return [_call(rng, n) for n in names]  # distinct tools per sample: the seed's strict match sorts by name only


def _prediction(rng: random.Random, label: list[dict[str, Any]]) -> list[dict[str, Any]]:
    roll = rng.random()
    if roll < 0.5:
        return json.loads(json.dumps(label))
    if roll < 0.7 and label:
        pred = json.loads(json.dumps(label))
        pred[0] = _call(rng, pred[0]["toolName"])  # same tool, maybe other values
        return pred
    if roll < 0.85:
        return _label(rng)
    return label[:-1]


def seed_rows(n: int = 80, seed: int = 2) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    rng = random.Random(seed)
    rows, preds = [], []
    for i in range(n):
        row: dict[str, Any] = {
            "history": [f"司机：第{i}单还在吗？", "客服：在的，请问有什么可以帮您？"],
            "当前query": rng.choice(["4.2米的车能装吗？", "运费多少？", "明天能装货吗？", "好的"]),
            "label": _label(rng),
        }
        if rng.random() < 0.7:
            row["货源信息"] = {"出发地": "苏州", "目的地": rng.choice(["武汉", "上海"]), "货物": "家具"}
        rows.append(row)
        preds.append(_prediction(rng, row["label"]))
    return rows, preds


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("seed002")
    rows, preds = seed_rows()
    data = base / "26_0513_评测.json"
    data.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    results = []
    failed = {5, 17}  # requests that never succeeded: the seed's client saved an error
    for i, pred in enumerate(preds):
        if i in failed:
            results.append({"result": None, "error": "Timeout", "status_code": None, "time_cost": 30.0})
        else:
            results.append({"result": "<think>\n好的\n</think>\n" + json.dumps({"label": pred}, ensure_ascii=False), "error": None, "status_code": 200, "time_cost": 1.5})
    saved = base / "v1.json"
    saved.write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    prompt = base / "prompt-v3.yaml"
    prompt.write_text(yaml.safe_dump({"system_prompt": SEED_PROMPT}, allow_unicode=True), encoding="utf-8")
    return {"dir": base, "data": data, "saved": saved, "prompt": prompt, "rows": rows, "preds": preds, "failed": failed}


# ----------------------------------------------------------------------------- the seed's definitions
def _seed_value(v: Any) -> str:
    if type(v) is str:
        return v
    if type(v) is list:
        return json.dumps(sorted(v, key=lambda x: (len(x), x)))
    if type(v) is dict:
        return json.dumps({k: v[k] for k in sorted(v)})
    return str(v)


def _seed_param_strings(call: dict[str, Any]) -> list[str]:
    name, params = call["toolName"], call.get("paramList", {})
    out = [f"{name}-{k}:{_seed_value(v)}" for k, v in params.items()]
    if name == "truckCheck" and "truckType" in params and "value" in params and params["truckType"] in ("车长", "车型"):
        out.append(f"{name}-truckType-{params['truckType']}:{params['value']}")
    if name == "priceCheck" and "priceType" in params and "value" in params and params["priceType"] in ("到车价", "总价"):
        out.append(f"{name}-priceType-{params['priceType']}:{params['value']}")
    return out


def _prf(counts: dict[str, list[int]]) -> dict[str, Any]:
    per, tot = {}, [0, 0, 0]
    for key, (lc, pc, hit) in counts.items():
        tp, fp, fn = hit, pc - hit, lc - hit
        p = tp / (tp + fp) if tp + fp else 0
        r = tp / (tp + fn) if tp + fn else 0
        per[key] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0, "tp": tp, "fp": fp, "fn": fn}
        tot = [tot[0] + tp, tot[1] + fp, tot[2] + fn]
    p = tot[0] / (tot[0] + tot[1]) if tot[0] + tot[1] else 0
    r = tot[0] / (tot[0] + tot[2]) if tot[0] + tot[2] else 0
    macro = {m: sum(v[m] for v in per.values()) / len(per) for m in ("precision", "recall", "f1")}
    return {"micro": {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0}, "macro": macro, "per_tool": per}


def seed_tool_f1(labels: list[Any], preds: list[Any]) -> dict[str, Any]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for label, pred in zip(labels, preds):
        lc, pc = Counter(c["toolName"] for c in label), Counter(c["toolName"] for c in pred)
        for tool in set(lc) | set(pc):
            counts[tool][0] += lc[tool]
            counts[tool][1] += pc[tool]
            counts[tool][2] += min(lc[tool], pc[tool])
    return _prf(counts)


def seed_param_f1(labels: list[Any], preds: list[Any]) -> dict[str, Any]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for label, pred in zip(labels, preds):
        ls = [s for c in label for s in _seed_param_strings(c)]
        ps = [s for c in pred for s in _seed_param_strings(c)]
        for s in ls:
            counts[s.split(":")[0]][0] += 1
        for s in ps:
            counts[s.split(":")[0]][1] += 1
        rest = list(ls)
        for s in ps:  # multiset hits (the seed's loop may count one label string twice)
            if s in rest:
                rest.remove(s)
                counts[s.split(":")[0]][2] += 1
    return _prf(counts)


def seed_strict(labels: list[Any], preds: list[Any]) -> dict[str, dict[str, Any]]:
    buckets = {"single": [0, 0], "multi": [0, 0], "empty": [0, 0]}
    for label, pred in zip(labels, preds):
        bucket = "single" if len(label) == 1 else "multi" if label else "empty"
        ok = sorted(label, key=lambda x: x["toolName"]) == sorted(pred, key=lambda x: x["toolName"])
        buckets[bucket][0] += ok
        buckets[bucket][1] += 1
    buckets["all"] = [sum(v[0] for v in buckets.values()), sum(v[1] for v in buckets.values())]
    return {k: {"correct": c, "total": t, "accuracy": c / t if t else 0.0} for k, (c, t) in buckets.items()}


def assert_close(actual: Any, expected: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert set(actual) == set(expected), f"{path}: {sorted(set(actual) ^ set(expected))}"
        for key in expected:
            assert_close(actual[key], expected[key], f"{path}.{key}")
    else:
        assert actual == pytest.approx(expected, abs=1e-12), path


def expected_figures(files: dict[str, Any]) -> dict[str, Any]:
    keep = [i for i in range(len(files["rows"])) if i not in files["failed"]]
    labels = [files["rows"][i]["label"] for i in keep]
    preds = [files["preds"][i] for i in keep]
    return {"tool_f1": seed_tool_f1(labels, preds), "tool_param_f1": seed_param_f1(labels, preds), "tool_exact_match": seed_strict(labels, preds)}


def check_figures(metrics: dict[str, Any], files: dict[str, Any]) -> None:
    for key, expected in expected_figures(files).items():
        assert_close(metrics[key], expected, key)
    assert metrics["num_samples"] == len(files["rows"]) and metrics["num_failed"] == len(files["failed"])
    assert metrics["num_scored"] == len(files["rows"]) - len(files["failed"]) and metrics["complete"] is False


# ----------------------------------------------------------------------------- tests
def test_replay_needs_no_prompt_and_gives_the_seeds_figures(seed_files, tmp_path):
    run_dir = tmp_path / "run"
    # the toolcall experiment's demo prompt uses {{ query }}, which these rows do not have
    proc = run_cli(["+experiment=toolcall", "backend=replay", f"backend.path={seed_files['saved']}", f"data.path={seed_files['data']}", "run.max_failed=0.05", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    records = read_jsonl(run_dir / "predictions.jsonl")
    assert len(records) == len(seed_files["rows"]) and not any("messages" in r for r in records)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    check_figures(metrics, seed_files)
    # the composite keys exist only for the seed's values
    keys = set(metrics["tool_param_f1"]["per_tool"])
    assert "truckCheck-truckType-车长" in keys and not any(k.endswith(("-其他", "-单价")) for k in keys)


def test_failed_samples_make_the_run_incomplete_with_its_own_exit_status(seed_files, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(["+experiment=toolcall", "backend=replay", f"backend.path={seed_files['saved']}", f"data.path={seed_files['data']}", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 4, proc.stderr
    loud = [line for line in proc.stderr.splitlines() if "INCOMPLETE" in line]
    assert len(loud) == 1 and "2 of 80" in loud[0] and "re-run the same command" in loud[0]
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    check_figures(metrics, seed_files)  # written all the same, and complete: false


def test_sharded_replay_runs_merge_to_the_seeds_figures(seed_files, tmp_path):
    shards = []
    for k in range(2):
        run_dir = tmp_path / f"shard{k}"
        proc = run_cli(["+experiment=toolcall", "backend=replay", f"backend.path={seed_files['saved']}", f"data.path={seed_files['data']}", "data.num_shards=2", f"data.shard_index={k}", "run.max_failed=0.1", f"hydra.run.dir={run_dir}"])
        assert proc.returncode == 0, proc.stderr
        shards.append(str(run_dir))
    proc = run_cli([*shards, "--out", str(tmp_path / "merged")], prog="evalkit-merge")
    assert proc.returncode == 0, proc.stderr
    check_figures(json.loads((tmp_path / "merged" / "metrics.json").read_text(encoding="utf-8")), seed_files)


def test_replay_sweep_runs_without_a_prompt(seed_files, tmp_path):
    other = tmp_path / "v2.json"
    other.write_text(seed_files["saved"].read_text(encoding="utf-8"), encoding="utf-8")
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "+experiment=toolcall", "backend=replay", f"backend.path={seed_files['saved']},{other}", f"data.path={seed_files['data']}", "run.max_failed=0.05", f"hydra.sweep.dir={sweep}"])
    assert proc.returncode == 0, proc.stderr
    for job in ("0", "1"):
        check_figures(json.loads((sweep / job / "metrics.json").read_text(encoding="utf-8")), seed_files)


def _seed_messages(template: str, row: dict[str, Any]) -> list[dict[str, str]]:
    """What the seed's client sends: jinja2.Template over three json.dumps'd fields."""
    prompt = jinja2.Template(template).render(
        history=json.dumps(row["history"], ensure_ascii=False),
        cargo_info=json.dumps(row["货源信息"] if "货源信息" in row else None, ensure_ascii=False),
        query=json.dumps(row["当前query"], ensure_ascii=False),
    )
    return [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": prompt}]


def test_seed002_prompt_sends_the_seeds_messages_byte_for_byte(seed_files, tmp_path):
    with StubServer(model="m") as server:
        proc = run_cli(
            [
                "+experiment=toolcall", "prompt=seed002", f"prompt.file={seed_files['prompt']}",
                "backend=api", f"backend.base_url={server.base_url}", "backend.model=m", f"data.path={seed_files['data']}",
                "data.limit=12", f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}", "run.progress=false",
            ]
        )
        bodies = server.stats()["bodies"]
    assert proc.returncode == 0, proc.stderr
    sent = sorted(json.dumps(b["messages"], ensure_ascii=False) for b in bodies.values())
    template = yaml.safe_load(seed_files["prompt"].read_text(encoding="utf-8"))["system_prompt"]
    expected = sorted(json.dumps(_seed_messages(template, row), ensure_ascii=False) for row in seed_files["rows"][:12])
    assert sent == expected
    assert any("null" in m for m in expected) and any("苏州" in m for m in expected)  # both 货源信息 cases covered


def test_prompt_vars_error_names_the_variable_row_and_field(seed_files, tmp_path):
    proc = run_cli(
        [
            "+experiment=toolcall", "prompt=seed002", f"prompt.file={seed_files['prompt']}", "prompt.vars.query='用户问题 | tojson'",
            "backend=api", "backend.base_url=http://127.0.0.1:9/v1", "backend.model=m", f"data.path={seed_files['data']}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ]
    )
    line = [x for x in proc.stderr.splitlines() if x.startswith("evalkit: error:")]
    assert proc.returncode != 0 and len(line) == 1, proc.stderr
    assert "prompt.vars.query" in line[0] and "用户问题" in line[0] and f"{seed_files['data']}[0]" in line[0]
