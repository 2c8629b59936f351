"""Output checks run the console scripts as users do under Slurm, nohup and CI: 80 columns,
stdout and stderr piped (never a terminal)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.sweep.conftest import sweep_data  # noqa: F401  (the sweep tests' datasets and model outputs)

NARROW = {"COLUMNS": "80"}


def run80(args: list[str], **kwargs: Any):
    """Run a console script at 80 columns with stdout/stderr piped."""
    env = {**NARROW, **kwargs.pop("env", {})}
    return run_cli(args, env=env, **kwargs)


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def narrow_sweep(sweep_data, tmp_path_factory):  # noqa: F811
    """``evalkit -m`` over three models' saved outputs, printed at 80 columns into a pipe."""
    sweep_dir = tmp_path_factory.mktemp("narrow") / "sweep"
    paths = ",".join(str(sweep_data["outputs"][n]) for n in ("a", "b", "c"))
    proc = run80(["-m", "+experiment=toolcall", f"data.path={sweep_data['data']}", f"backend.path={paths}",
                  "report.display_fields=[url,query]", f"hydra.sweep.dir={sweep_dir}"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return sweep_dir, proc
