"""A real third-party plugin package, pip-installed from tests/fixtures, used from the CLI.

It contributes a parser, a metric, a label format, a report and a config file
(``parser/tool_names.yaml`` through ``evalkit_config_searchpath``), exactly as an outside
package would. It is installed into a temporary target (on ``PYTHONPATH`` of the CLI runs),
built from a copy: the test changes neither the running venv nor the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, read_jsonl, run_cli

FIXTURE = REPO / "tests" / "fixtures" / "evalkit-example-plugin"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    base = tmp_path_factory.mktemp("plugin")
    source = base / "src"
    shutil.copytree(FIXTURE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    env = {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    yield env


def test_plugin_is_listed_with_distribution_and_version(installed_plugin):
    proc = run_cli(["--json"], prog="evalkit-plugins", env=installed_plugin)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    example = rows["example"]
    assert example["distribution"] == "evalkit-example-plugin" and example["version"] == "0.3.1"
    assert example["registers"] == {"label_format": ["name_list"], "metric": ["predicted_calls"], "parser": ["tool_names"], "report": ["names"]}
    assert not example["builtin"] and example["error"] is None


def test_cli_uses_the_plugins_parser_metric_and_config(installed_plugin, tmp_path):
    data = tmp_path / "data.jsonl"
    outputs = tmp_path / "outputs.jsonl"
    data.write_text("".join(json.dumps({"id": i, "q": f"问题{i}", "label": [{"toolName": "a"}]}, ensure_ascii=False) + "\n" for i in range(3)))
    outputs.write_text(
        json.dumps({"id": 0, "output": "a, b"}) + "\n" + json.dumps({"id": 1, "output": "a"}) + "\n" + json.dumps({"id": 2, "output": "  "}) + "\n"
    )
    run_dir = tmp_path / "run"
    proc = run_cli(
        [
            "backend=replay", f"backend.path={outputs}", f"data.path={data}", "prompt.user='{{ q }}'",
            "parser=tool_names",  # the config file shipped by the plugin
            "+metrics.calls.name=predicted_calls", "+metrics.calls.per_sample=true",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        env=installed_plugin,
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["calls"] == {"calls": 3, "per_sample": 1.0}
    assert metrics["num_parse_errors"] == 1
    rows = read_jsonl(run_dir / "predictions.jsonl")
    assert rows[0]["prediction"] == [{"toolName": "a"}, {"toolName": "b"}]
    assert rows[2]["prediction"] == [] and rows[2]["error"].startswith("parse:")


def test_allow_list_can_exclude_it(installed_plugin, tmp_path):
    proc = run_cli(["--json"], prog="evalkit-plugins", env={**installed_plugin, "EVALKIT_LOAD_PLUGINS": "something-else"})
    names = {row["name"] for row in json.loads(proc.stdout)}
    assert "example" not in names and "replay" in names


def test_plugin_label_format_and_report_reach_the_run_dir(installed_plugin, tmp_path):
    data = tmp_path / "data.jsonl"
    outputs = tmp_path / "outputs.jsonl"
    data.write_text("".join(json.dumps({"id": i, "q": "q", "label": ["a"]}) + "\n" for i in range(2)))
    outputs.write_text(json.dumps({"id": 0, "output": "a, b"}) + "\n" + json.dumps({"id": 1, "output": "a"}) + "\n")
    run_dir = tmp_path / "run"
    base = ["backend=replay", f"backend.path={outputs}", "data.label_format=name_list", "parser=tool_names", f"hydra.run.dir={run_dir}"]
    proc = run_cli([*base, f"data.path={data}", "+report.names_file=tools.txt"], cwd=tmp_path, env=installed_plugin)
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "tools.txt").read_text(encoding="utf-8").splitlines() == ["0\ta,b", "1\ta"]
    assert read_jsonl(run_dir / "predictions.jsonl")[0]["label"] == ["a"]
    # the plugin's label check runs on every row, with the row's place in the error
    data.write_text(json.dumps({"id": 0, "q": "q", "label": "a"}) + "\n")
    proc = run_cli([*base, f"data.path={data}"], cwd=tmp_path, env=installed_plugin)
    assert proc.returncode != 0 and f"{data}:1" in proc.stderr and "list of tool names" in proc.stderr


def test_allow_list_naming_a_missing_plugin_is_a_warning_naming_it(installed_plugin):
    proc = run_cli(["--json"], prog="evalkit-plugins", env={**installed_plugin, "EVALKIT_LOAD_PLUGINS": "example,exmaple"})
    names = {row["name"] for row in json.loads(proc.stdout)}
    assert "example" in names
    assert "exmaple" in proc.stderr and "no installed evalkit plugin" in proc.stderr
