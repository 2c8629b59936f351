"""The console script's fixed costs: one config composition for a plain run (Hydra's own
path wherever the answer could differ), the generation in the child forked before the
config was composed for light backends, and a quick exit that still flushes everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from tests.conftest import run_cli

COUNT_COMPOSITIONS = (
    "import sys\n"
    "from hydra._internal.config_loader_impl import ConfigLoaderImpl\n"
    "calls = []\n"
    "original = ConfigLoaderImpl.load_configuration\n"
    "def counted(self, *args, **kwargs):\n"
    "    calls.append(kwargs.get('run_mode'))\n"
    "    return original(self, *args, **kwargs)\n"
    "ConfigLoaderImpl.load_configuration = counted\n"
    "from evalkit.cli import main\n"
    "sys.argv = ['evalkit'] + sys.argv[1:]\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n    print('EXIT', exc.code)\n"
    "print('COMPOSITIONS', len(calls))\n"
)


def _compositions(args, cwd):
    proc = subprocess.run([sys.executable, "-c", COUNT_COMPOSITIONS, *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert "COMPOSITIONS" in proc.stdout, proc.stderr[-2000:]
    return int(proc.stdout.split("COMPOSITIONS")[1].split()[0]), proc


def test_a_plain_run_composes_the_config_once_and_records_what_hydra_records(tmp_path):
    count, proc = _compositions(["+experiment=toolcall", "run.progress=false", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert count == 1, proc.stderr[-2000:]
    hydra = yaml.safe_load((tmp_path / "run" / ".hydra" / "hydra.yaml").read_text(encoding="utf-8"))["hydra"]
    assert hydra["mode"] == "RUN"
    assert hydra["overrides"]["hydra"] == [f"hydra.run.dir={tmp_path / 'run'}", "hydra.mode=RUN"]  # as Hydra's two compositions leave it
    assert (tmp_path / "run" / "metrics.json").exists()


def test_a_config_that_sets_hydra_mode_still_sweeps(tmp_path):
    conf = tmp_path / "conf" / "experiment"
    conf.mkdir(parents=True)
    (conf / "sweep_limits.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - toolcall\n"
        "hydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n      data.limit: 4,6\n",
        encoding="utf-8",
    )
    sweep = tmp_path / "sweep"
    proc = run_cli([f"--config-dir={tmp_path / 'conf'}", "+experiment=sweep_limits", "run.progress=false", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()) == ["0", "1"]


def test_a_sweep_value_without_m_fails_as_hydra_says(tmp_path):
    proc = run_cli(["+experiment=toolcall", "data.limit=4,6", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "Ambiguous value for argument 'data.limit=4,6'" in proc.stderr and "add --multirun" in proc.stderr, proc.stderr[-2000:]


def test_the_demo_generates_in_the_pre_forked_child_and_prints_everything(tmp_path):
    proc = run_cli(["+experiment=toolcall", "hydra.verbose=evalkit", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "generating in the pre-forked child (pid" in proc.stderr
    # the child took on the job's logging: its lines are in run.log, under the job's format
    log_text = (tmp_path / "run" / "run.log").read_text(encoding="utf-8")
    assert "[evalkit][INFO] - evaluating 48 samples" in log_text and "generating in the pre-forked child" in log_text, log_text[:2000]
    assert "evalkit results" in proc.stdout  # stdout flushed before the quick exit
    for name in ("metrics.json", "predictions.jsonl", "report.xlsx", "report.html"):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    proc = run_cli(["+experiment=toolcall", "hydra.verbose=evalkit", "run.fork=false", f"hydra.run.dir={tmp_path / 'local'}"], cwd=tmp_path)
    assert proc.returncode == 0 and "forked child" not in proc.stderr
    figures = lambda run: {k: v for k, v in json.loads((tmp_path / run / "metrics.json").read_text()).items() if k != "wall_time_s"}  # noqa: E731
    assert figures("run") == figures("local")


def test_a_bad_option_found_after_the_hand_over_stops_the_pre_forked_child(tmp_path):
    run_dir = tmp_path / "bad-parser-option"
    proc = run_cli(["+experiment=toolcall", "+parser.bogus=1", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("evalkit: error:")]
    assert len(errors) == 1 and "parser.bogus: unknown option 'bogus'" in errors[0], proc.stderr[-2000:]
    assert _processes_naming(str(run_dir)) == []  # neither process outlives the command


def _processes_naming(text):
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if text.encode() in fh.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found
