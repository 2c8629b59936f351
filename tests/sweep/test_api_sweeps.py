"""Sweeps against a live (loopback) model: three prompt versions, and joblib-parallel jobs
sharing one response cache."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.api.conftest import TOOLCALL_DATA
from tests.conftest import read_jsonl, run_cli
from tests.servers.openai_stub import StubServer

# The stub model answers with whatever follows "#expect:", so each prompt version is a
# different "model behaviour": v1 always right, v2 wrong on some rows, v3 never calls a tool.
PROMPTS = {
    "v1": 'user_prompt: |\n  {{ query }}\n  #expect: {"label": {{ label | tojson }}}\n',
    "v2": 'user_prompt: |\n  {{ query }}\n  {% if id[-1] in "1357" %}#expect: {"label": []}{% else %}#expect: {"label": {{ label | tojson }}}{% endif %}\n',
    "v3": "user_prompt: |\n  {{ query }}\n",
}


@pytest.fixture(scope="module")
def server():
    with StubServer(model="m", latency=0.005) as s:
        yield s


@pytest.fixture(scope="module")
def prompt_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("prompts")
    paths = {}
    for name, text in PROMPTS.items():
        paths[name] = root / f"{name}.yaml"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def _args(server, cache_dir):
    return ["+experiment=toolcall", "backend=api", f"backend.base_url={server.base_url}", "backend.model=m",
            f"data.path={TOOLCALL_DATA}", f"cache.dir={cache_dir}", "run.progress=false"]


def _exact(pred, label):
    canon = lambda calls: sorted(json.dumps({"toolName": c["toolName"], "paramList": c.get("paramList") or {}}, sort_keys=True) for c in calls)
    return canon(pred) == canon(label)


def test_three_prompt_versions_summary_and_flips(server, prompt_files, tmp_path):
    sweep_dir = tmp_path / "sweep"
    files = ",".join(str(prompt_files[n]) for n in ("v1", "v2", "v3"))
    proc = run_cli(["-m", *_args(server, tmp_path / "cache"), f"prompt.file={files}", f"hydra.sweep.dir={sweep_dir}"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert [r["figures"]["tool_exact_match.all.accuracy"] for r in summary["runs"]][0] == 1.0
    singles = []
    for name in ("v1", "v2", "v3"):
        run_dir = tmp_path / f"one_{name}"
        proc = run_cli([*_args(server, tmp_path / "cache_single"), f"prompt.file={prompt_files[name]}", f"hydra.run.dir={run_dir}"])
        assert proc.returncode == 0, proc.stderr
        singles.append({r["id"]: r for r in read_jsonl(run_dir / "predictions.jsonl")})
        metrics = json.loads((run_dir / "metrics.json").read_text())
        row = summary["runs"][len(singles) - 1]
        assert row["figures"]["tool_f1.micro.f1"] == metrics["tool_f1"]["micro"]["f1"]
        assert f"prompt.file={prompt_files[name]}" in row["overrides"]
    base = singles[0]
    for pair, other in zip(summary["flips"], singles[1:]):
        expected = [i for i in base if _exact(base[i]["prediction"], base[i]["label"]) and not _exact(other[i]["prediction"], other[i]["label"])]
        assert [r["id"] for r in pair["right_to_wrong"]] == expected and expected
        assert pair["wrong_to_right"] == []


def test_joblib_parallel_jobs_share_the_cache_without_loss_or_duplicates(server, prompt_files, tmp_path):
    server.reset()
    cache_dir = tmp_path / "shared_cache"
    sweep_dir = tmp_path / "sweep"
    files = ",".join(str(prompt_files[n]) for n in ("v1", "v2"))
    proc = run_cli(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *_args(server, cache_dir),
                    f"prompt.file={files},{prompt_files['v1']}", f"hydra.sweep.dir={sweep_dir}"])
    assert proc.returncode == 0, proc.stderr
    num_rows = len(read_jsonl(TOOLCALL_DATA))
    for job in ("0", "1", "2"):
        rows = read_jsonl(sweep_dir / job / "predictions.jsonl")
        assert sorted(r["index"] for r in rows) == list(range(num_rows))
        assert all(r["error"] is None for r in rows)
    with sqlite3.connect(cache_dir / "responses.sqlite3") as db:
        keys = [k for (k,) in db.execute("SELECT key FROM responses")]
    # One cache row per distinct conversation the model answered: nothing lost, nothing twice
    # (rows with the same query and label render the same conversation and share a key).
    answered = server.stats()["answered"]
    assert len(keys) == len(set(keys)) == len(answered)


def test_a_header_secret_reaches_no_file_of_the_sweep(server, prompt_files, tmp_path):
    secret = "sk-sweep-secret-4711"
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(["-m", *_args(server, tmp_path / "cache"), f"prompt.file={prompt_files['v1']}",
                    f"+backend.headers.Authorization=Bearer {secret}", "generation.temperature=0,0.5",
                    f"hydra.sweep.dir={sweep_dir}"])
    assert proc.returncode == 0, proc.stderr
    assert (sweep_dir / "summary.json").exists()
    leaked = [p for p in sweep_dir.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []
    assert secret not in proc.stdout + proc.stderr
