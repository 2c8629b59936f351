"""What an engine process needs to know, as plain picklable data (no vllm import here).

The backend validates the user's options once and freezes them into a :class:`Job`: how to
build the engine (:class:`EngineSpec`), how to decode (:class:`DecodeSpec`) and how to turn
chat messages into prompts (:class:`PromptSpec`). The same ``Job`` drives generation in this
process or in a spawned child (``backend.isolate``, ``backend.data_parallel_size``), so both
paths build exactly the same engine and sampling parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: ``max_lora_rank`` values vLLM accepts; an adapter of rank r gets the smallest one >= r.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank_for(rank: int) -> int:
    for allowed in LORA_RANKS:
        if allowed >= rank:
            return allowed
    return LORA_RANKS[-1]


CHECKPOINT_DTYPES = ("float32", "bfloat16", "float16")


def resolve_dtype(dtype: str, model_dir: str, *, on_cpu: bool) -> tuple[str, str]:
    """``backend.dtype`` -> the dtype the engine loads, resolved as ``backend=hf`` does, so
    the two backends agree on one checkpoint: ``auto`` is float32 on CPU, and on a GPU the
    checkpoint's own dtype (bfloat16 when it names none). vLLM's own ``auto`` would turn a
    float32 checkpoint into half precision. Returns ``(dtype, why)`` for the log."""
    if dtype != "auto":
        return {"float": "float32", "half": "float16"}.get(dtype, dtype), f"backend.dtype={dtype}"
    if on_cpu:
        return "float32", "backend.dtype=auto: float32 on CPU, as backend=hf"
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    stored = config.get("dtype") or config.get("torch_dtype") or (config.get("text_config") or {}).get("torch_dtype")
    if stored in CHECKPOINT_DTYPES:
        return str(stored), f"backend.dtype=auto: the checkpoint's {stored}, as backend=hf"
    return "bfloat16", "backend.dtype=auto: bfloat16 (the checkpoint names no dtype), as backend=hf"


@dataclass(frozen=True)
class EngineSpec:
    """Arguments of ``vllm.LLM``; ``None`` leaves vLLM's (or the platform's) default."""

    model: str
    lora_path: str | None = None
    lora_name: str = "adapter"
    max_lora_rank: int | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    distributed_executor_backend: str | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    dtype: str = "auto"
    enable_prefix_caching: bool = True
    enforce_eager: bool | None = None
    seed: int | None = None
    trust_remote_code: bool = False
    max_num_seqs: int | None = None
    engine_kwargs: dict[str, Any] = field(default_factory=dict)

    def llm_kwargs(self, *, on_cpu: bool) -> dict[str, Any]:
        """Keyword arguments for ``vllm.LLM``. On CPU, eager mode is the default: compiling
        the graph costs far more start-up time than it saves on an evaluation run."""
        kwargs: dict[str, Any] = {
            "model": self.model,
            "dtype": self.dtype,
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "enable_prefix_caching": self.enable_prefix_caching,
            "trust_remote_code": self.trust_remote_code,
            "enforce_eager": on_cpu if self.enforce_eager is None else self.enforce_eager,
        }
        optional = {
            "distributed_executor_backend": self.distributed_executor_backend,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "max_model_len": self.max_model_len,
            "seed": self.seed,
            "max_num_seqs": self.max_num_seqs,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        if self.lora_path:
            kwargs.update({"enable_lora": True, "max_loras": 1, "max_lora_rank": self.max_lora_rank or 16})
        kwargs.update(self.engine_kwargs)
        return kwargs


@dataclass(frozen=True)
class DecodeSpec:
    """evalkit's shared ``generation`` settings plus the vLLM-only decoding options."""

    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    n: int = 1
    seed: int | None = None
    stop: tuple[str, ...] = ()
    allowed_token_ids: tuple[int, ...] | None = None
    skip_special_tokens: bool = True
    use_beam_search: bool = False
    beam_width: int = 4
    length_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def key_extras(self) -> dict[str, Any]:
        """The options beyond ``GenerationConfig`` that change an answer (part of cache keys)."""
        extras: dict[str, Any] = {
            "min_p": self.min_p,
            "allowed_token_ids": list(self.allowed_token_ids) if self.allowed_token_ids is not None else None,
            "skip_special_tokens": self.skip_special_tokens,
        }
        if self.use_beam_search:
            extras["beam_search"] = {"beam_width": self.beam_width, "length_penalty": self.length_penalty}
        return extras

    def sampling_params(self, vllm: Any) -> Any:
        """``vllm.SamplingParams`` for one request. Greedy decoding with ``n > 1`` asks for
        one sample (the backend repeats it): n identical greedy decodes would waste the GPU."""
        n = 1 if self.greedy else self.n
        return vllm.SamplingParams(
            n=n,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k if self.top_k > 0 else -1,
            min_p=self.min_p,
            max_tokens=self.max_tokens,
            stop=list(self.stop) or None,
            seed=None if self.greedy else self.seed,
            allowed_token_ids=list(self.allowed_token_ids) if self.allowed_token_ids is not None else None,
            skip_special_tokens=self.skip_special_tokens,
        )

    def beam_params(self, vllm_sampling: Any) -> Any:
        """``BeamSearchParams`` (``vllm.sampling_params`` module passed in). Older vLLM
        releases have no ``skip_special_tokens`` there (they always skip them)."""
        kwargs: dict[str, Any] = {
            "beam_width": self.beam_width,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "length_penalty": self.length_penalty,
        }
        try:
            return vllm_sampling.BeamSearchParams(**kwargs, skip_special_tokens=self.skip_special_tokens)
        except TypeError:
            return vllm_sampling.BeamSearchParams(**kwargs)


@dataclass(frozen=True)
class PromptSpec:
    """How chat messages become token prompts and how they are fed to the engine."""

    chat_template: str | None = None
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    sort_prompts: bool = True
    chunk_size: int = 1024


@dataclass(frozen=True)
class Job:
    engine: EngineSpec
    decode: DecodeSpec
    prompt: PromptSpec


@dataclass
class Completion:
    """One sample's answer from an engine process: ``texts`` (n of them) or ``error``."""

    index: int
    texts: list[str] | None = None
    error: str | None = None
    usage: dict[str, int] | None = None
