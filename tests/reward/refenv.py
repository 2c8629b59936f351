"""Reference packages for the reward tests, installed outside the project venv.

Peers pin versions the project cannot take (RewardBench pins transformers 4.51), so each one
gets its own cached place under ``/tmp`` (``EVALKIT_REF_DIR`` overrides it), built on first use
and reused afterwards (a stamp file marks a finished build):

* RewardBench: a separate virtual environment (torch==2.13.0 first, so pip takes the local
  CPU build), run in a subprocess;
* LLaMA-Factory and TRL: ``pip install --no-deps --target`` directories whose pure-Python code
  is imported next to the project's own torch and transformers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ.get("EVALKIT_REF_DIR", "/tmp/evalkit-ref"))
TORCH = "torch==2.13.0"
TRL_TARGET_PACKAGES = ["trl==1.16.0", "datasets", "pyarrow==21.0.0", "dill", "multiprocess", "xxhash", "fsspec", "pandas", "python-dateutil", "pytz", "tzdata"]


def _pip(python: str, *args: str, timeout: int = 1500) -> None:
    proc = subprocess.run([python, "-m", "pip", "install", "-q", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{proc.stderr[-2000:]}")


def target_dir(name: str, packages: list[str]) -> Path:
    """A ``--no-deps --target`` directory holding ``packages`` (built once)."""
    out = ROOT / name
    stamp = out / ".evalkit-ref-ok"
    if not stamp.exists() or stamp.read_text() != " ".join(packages):
        out.mkdir(parents=True, exist_ok=True)
        _pip(sys.executable, "--no-deps", "--upgrade", "--target", str(out), *packages)
        stamp.write_text(" ".join(packages))
    return out


def llamafactory_dir() -> Path:
    return target_dir("llamafactory", ["llamafactory==0.9.5", "peft==0.18.1"])


def trl_dir() -> Path:
    return target_dir("trl", TRL_TARGET_PACKAGES)


RB_PACKAGES = ["rewardbench==0.1.4", "setuptools<81"]  # rewardbench imports pkg_resources


def rewardbench_python() -> Path:
    """The interpreter of a venv with ``rewardbench`` installed (built once)."""
    venv = ROOT / "rewardbench-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".evalkit-ref-ok"
    if not stamp.exists() or stamp.read_text() != " ".join(RB_PACKAGES):
        if not python.exists():
            subprocess.run([str(Path(sys.base_prefix) / "bin" / "python3"), "-m", "venv", str(venv)], check=True, timeout=300)
            _pip(str(python), TORCH)
        _pip(str(python), *RB_PACKAGES)
        stamp.write_text(" ".join(RB_PACKAGES))
    return python


def rewardbench_model_copy(src: Path, dst: Path) -> Path:
    """``src`` copied for RewardBench's transformers 4.51: same weights and tokenizer, the older
    spelling of the tokenizer config (5.x writes ``extra_special_tokens`` as a list, 4.51 reads
    ``additional_special_tokens``; 4.51's fast-tokenizer default would add ``token_type_ids``)."""
    import json
    import shutil

    shutil.copytree(src, dst)
    cfg_path = dst / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    extra = cfg.pop("extra_special_tokens", None)
    if isinstance(extra, list):
        cfg["additional_special_tokens"] = extra
    cfg["model_input_names"] = ["input_ids", "attention_mask"]
    cfg_path.write_text(json.dumps(cfg))
    return dst


if __name__ == "__main__":  # warm the caches: python tests/reward/refenv.py
    print(llamafactory_dir(), trl_dir(), rewardbench_python())
