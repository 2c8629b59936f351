"""Errors in evalkit's voice, once: Hydra's composition errors translated into one line with
the valid names and a fix that works; --verbose adds a traceback, same exit status;
--version and --help are evalkit's own."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from tests.conftest import error_line
from tests.output.conftest import run80

DEMO = ["+experiment=toolcall"]


@pytest.mark.parametrize(
    "args, needles",
    [
        # an existing key mistyped: the node's valid keys and the corrected override, no "+"
        (["backend=api", "backend.timeot=3"], ["backend.timeot", "unknown key 'timeot'", "timeout", "max_retries", "did you mean backend.timeout=3?"]),
        (["metrics.tool_f1.levle=name"], ["metrics.tool_f1.levle", "level", "include_negative", "did you mean metrics.tool_f1.level=name?"]),
        (["foo=1"], ["unknown key 'foo' at the top level", "backend", "generation", "report"]),
        (["hydra.run.dirr=x"], ["hydra.run.dirr", "did you mean hydra.run.dir=x?"]),
        # an experiment or group option that does not exist: the valid names
        (["+experiment=toolcal"], ["+experiment=toolcal", "no experiment named 'toolcal'", "accepthead", "toolcall", "fix: +experiment=toolcall"]),
        (["backend=apii"], ["backend=apii", "no backend option named 'apii'", "api", "replay", "vllm", "fix: backend=api"]),
        (["+backend.name=x"], ["+backend.name", "already exists", "backend.name=x"]),
        (["data.path='a b"], ["cannot parse the override", "quote"]),
    ],
    ids=["key-typo", "metric-option-typo", "top-level-typo", "hydra-key-typo", "experiment-typo", "group-option-typo", "append-existing", "grammar"],
)
def test_hydra_errors_become_one_evalkit_line(tmp_path, args, needles):
    argv = args if args[0].startswith("+experiment") else [*DEMO, *args]
    proc = run80([*argv, f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 2
    line = error_line(proc)  # exactly one "evalkit: error:" line, no traceback
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    for hydra_noise in ("To append to your config use", "Config search path", "provider=", "object_type", "full_key"):
        assert hydra_noise not in proc.stderr + proc.stdout
    assert proc.stderr.count("\n") == 1, proc.stderr


def test_the_suggested_fix_works(tmp_path):
    line = error_line(run80([*DEMO, "backend=api", "backend.timeot=3", f"hydra.run.dir={tmp_path}", "--cfg", "job"]))
    fix = line.split("did you mean ", 1)[1].rstrip("?)")
    proc = run80([*DEMO, "backend=api", fix, "--cfg", "job"])
    assert proc.returncode == 0, proc.stderr
    assert "timeout: 3" in proc.stdout


def test_a_fatal_run_error_is_printed_once_and_kept_in_run_log(tmp_path):
    run_dir = tmp_path / "run"
    proc = run80([*DEMO, f"data.path={tmp_path / 'missing.jsonl'}", f"hydra.run.dir={run_dir}"])
    line = error_line(proc)
    assert "missing.jsonl" in line and "not found" in line
    assert (proc.stdout + proc.stderr).count("not found") == 1, proc.stdout + proc.stderr
    assert "not found" in (run_dir / "run.log").read_text(encoding="utf-8")


@pytest.mark.parametrize("bad", [["data.path=/nonexistent/x.jsonl"], ["+experiment=toolcal"]], ids=["run-error", "config-error"])
def test_verbose_adds_the_traceback_and_keeps_the_exit_status(tmp_path, bad):
    argv = bad if bad[0].startswith("+experiment") else [*DEMO, *bad]
    quiet = run80([*argv, f"hydra.run.dir={tmp_path / 'a'}"])
    loud = run80([*argv, f"hydra.run.dir={tmp_path / 'b'}", "--verbose"])
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr
    errors = [line for line in loud.stderr.splitlines() if line.startswith("evalkit: error:")]
    assert len(errors) == 1 and errors[0] == error_line(quiet)


def test_version_is_evalkits_and_lists_the_heavy_libraries_installed():
    proc = run80(["--version"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"evalkit {metadata.version('evalkit')}"
    assert "Hydra" not in proc.stdout
    for name in ("torch", "transformers"):
        assert f"{name} {metadata.version(name)}" in lines


def test_version_imports_no_heavy_library():
    code = (
        "import sys\nsys.argv = ['evalkit', '--version']\nfrom evalkit.cli import main\nmain()\n"
        "print('HEAVY', [m for m in ('torch', 'transformers', 'vllm') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_help_says_what_each_group_and_common_key_does():
    proc = run80(["--help"])
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for group, option in (("experiment", "toolcall"), ("backend", "replay"), ("metrics", "toolcall"), ("hydra/launcher", "joblib")):
        line = next(i for i, row in enumerate(text.splitlines()) if row.strip().startswith(group + " "))
        assert option in text.splitlines()[line + 1], (group, text)
    for key in ("data.path=FILE", "model.path=DIR", "hydra.run.dir=DIR", "backend.api_key_env=VAR"):
        assert key in text
    assert "--verbose" in text and "--version" in text
