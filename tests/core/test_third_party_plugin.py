"""A real third-party plugin package, pip-installed from tests/fixtures, used from the CLI.

It contributes a parser, a metric and a config file (``parser/tool_names.yaml`` through
``evalkit_config_searchpath``), exactly as an outside package would.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, read_jsonl, run_cli

FIXTURE = REPO / "tests" / "fixtures" / "evalkit-example-plugin"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", str(FIXTURE)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    try:
        yield
    finally:
        subprocess.run([*pip, "uninstall", "--yes", "--quiet", "evalkit-example-plugin"], capture_output=True, timeout=300)


def test_plugin_is_listed_with_distribution_and_version(installed_plugin):
    proc = run_cli(["--json"], prog="evalkit-plugins")
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    example = rows["example"]
    assert example["distribution"] == "evalkit-example-plugin" and example["version"] == "0.3.1"
    assert example["registers"] == {"metric": ["predicted_calls"], "parser": ["tool_names"]}
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
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["calls"] == {"calls": 3, "per_sample": 1.0}
    assert metrics["num_parse_errors"] == 1
    rows = read_jsonl(run_dir / "predictions.jsonl")
    assert rows[0]["prediction"] == [{"toolName": "a"}, {"toolName": "b"}]
    assert rows[2]["prediction"] == [] and rows[2]["error"].startswith("parse:")


def test_allow_list_can_exclude_it(installed_plugin, tmp_path):
    proc = run_cli(["--json"], prog="evalkit-plugins", env={"EVALKIT_LOAD_PLUGINS": "something-else"})
    names = {row["name"] for row in json.loads(proc.stdout)}
    assert "example" not in names and "replay" in names
