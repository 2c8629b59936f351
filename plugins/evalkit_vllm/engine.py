"""One ``vllm.LLM`` and the loop that feeds it: render, sort, generate in chunks, emit.

This module is the only place that imports vllm, and it is imported only when an engine
starts — in the evalkit process, or in a spawned child (``backend.isolate``).

Why these choices:

* **Prompts are token ids, rendered here with the model's chat template** (the tokenizer
  vLLM loaded, ``add_special_tokens=False`` because the template already holds them). That is
  exactly what ``LLM.chat`` feeds the engine, so outputs are equal, but rendering first lets
  us sort the prompts: sorted token sequences put every shared prefix (system prompt,
  few-shot block, conversation history) next to itself, so vLLM's prefix cache computes it
  once per run instead of once per scheduling window.
* **Chunks**: ``LLM.generate`` returns only when its whole list is done, so a long run is cut
  into ``chunk_size`` prompts per call and each chunk's answers are emitted (and persisted by
  the backend) before the next one starts. A kill loses at most one chunk; consecutive
  chunks of the sorted list keep the prefix cache warm.
* **Per-sample problems stay per-sample**: a prompt longer than ``max_model_len`` or one the
  engine rejects becomes that sample's error; only engine-wide failures end the run, turned
  into one line by :mod:`evalkit_vllm.diagnose`.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from evalkit.errors import BackendError, EvalKitError

from evalkit_vllm import diagnose
from evalkit_vllm.logs import RUN_LOG_ENV, route_vllm_logs, warnings_to_run_log
from evalkit_vllm.settings import Completion, Job

log = logging.getLogger("evalkit.vllm")

Emit = Callable[[list[Completion]], None]
Item = tuple[Any, ...]  # (dataset index, chat messages) or (index, messages, OpenAI tools)


def import_vllm() -> Any:
    """``import vllm`` with install advice for a missing or broken installation."""
    if importlib.util.find_spec("vllm") is None:
        raise diagnose.not_installed()
    try:
        with warnings_to_run_log(route_vllm_logs() is not None):
            import vllm
    except Exception as exc:  # a CUDA torchvision on a CPU box raises RuntimeError, not ImportError
        raise diagnose.broken_install(exc) from None
    return vllm


def is_cpu_platform() -> bool:
    try:
        from vllm.platforms import current_platform

        return bool(current_platform.is_cpu())
    except Exception:  # pragma: no cover - very old or unusual builds
        return False


def cpu_head_sizes() -> tuple[int, ...]:
    """The head sizes the installed vLLM's CPU attention supports (falls back to 0.32's)."""
    try:
        from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

        return tuple(CPUAttentionBackend.get_supported_head_sizes()) or diagnose.CPU_HEAD_SIZES
    except Exception:
        return diagnose.CPU_HEAD_SIZES


def apply_cpu_defaults(environ: dict[str, str] | Any = os.environ) -> dict[str, str]:
    """Defaults for vLLM on CPU, applied only where the user set nothing.

    * ``VLLM_CPU_KVCACHE_SPACE`` (GiB): without it vLLM sizes the KV cache from a share of all
      RAM and may refuse to start; a quarter of the available memory, 1 to 4 GiB, is plenty
      for evaluation batches.
    * ``VLLM_ENABLE_V1_MULTIPROCESSING=0``: run the engine core in this process. On a few CPU
      cores a second busy process only competes for them, and a failing engine then raises
      its real reason (memory, head size) instead of "engine core initialization failed".
    """
    applied: dict[str, str] = {}
    if "VLLM_CPU_KVCACHE_SPACE" not in environ:
        gib = 4
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
            gib = int(max(1, min(4, avail // 4)))
        except (ValueError, OSError, AttributeError):
            pass
        applied["VLLM_CPU_KVCACHE_SPACE"] = str(gib)
    if "VLLM_ENABLE_V1_MULTIPROCESSING" not in environ:
        applied["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    for key, value in applied.items():
        environ[key] = value
    if applied:
        log.info("vllm on CPU: using %s (set them yourself to override)", ", ".join(f"{k}={v}" for k, v in applied.items()))
    return applied


def model_head_size(model_dir: str) -> int | None:
    """head_dim from a checkpoint's config.json (``head_dim``, else hidden / heads)."""
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for node in (config, config.get("text_config") or {}):
        if isinstance(node.get("head_dim"), int):
            return int(node["head_dim"])
        hidden, heads = node.get("hidden_size"), node.get("num_attention_heads")
        if isinstance(hidden, int) and isinstance(heads, int) and heads > 0:
            return hidden // heads
    return None


def trim_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


class Engine:
    """Owns (or borrows) one ``vllm.LLM`` and generates for lists of chat requests.

    ``llm``: an already built ``vllm.LLM`` to use instead of building one (tests, notebooks,
    benchmarks that compare against the bare engine); it is not shut down by :meth:`close`.
    """

    def __init__(self, job: Job, llm: Any = None) -> None:
        self.job = job
        self._llm = llm
        self._owns_llm = llm is None
        self._vllm: Any = None
        self.on_cpu = False
        self.engine_calls = 0  # LLM.generate / beam_search calls, for logs and tests
        self.prompts_sent = 0

    # -- start-up ------------------------------------------------------------------------
    @property
    def vllm(self) -> Any:
        if self._vllm is None:
            self._vllm = import_vllm()
            self.on_cpu = is_cpu_platform()
        return self._vllm

    @property
    def llm(self) -> Any:
        if self._llm is None:
            self._llm = self._build()
        return self._llm

    def _build(self) -> Any:
        vllm = self.vllm
        spec = self.job.engine
        if self.on_cpu:
            apply_cpu_defaults()
            head = model_head_size(spec.model)
            supported = cpu_head_sizes()
            if head is not None and head not in supported:
                raise diagnose.head_size_error(head, supported, spec.model)
        kwargs = spec.llm_kwargs(on_cpu=self.on_cpu)
        if os.environ.get(RUN_LOG_ENV) and os.environ.get("EVALKIT_VERBOSE") != "1" and "use_tqdm_on_load" in getattr(vllm.EngineArgs, "__dataclass_fields__", {}):
            kwargs.setdefault("use_tqdm_on_load", False)  # its weight-loading bar is console noise in a run
        started = time.monotonic()
        try:
            with warnings_to_run_log(route_vllm_logs() is not None):
                llm = vllm.LLM(**kwargs)
        except Exception as exc:
            raise self.explain(exc) from None
        log.info("vllm engine for %s ready in %.1fs", spec.model, time.monotonic() - started)
        return llm

    def explain(self, exc: BaseException) -> EvalKitError:
        return diagnose.explain(exc, model=self.job.engine.model, on_cpu=self.on_cpu, supported_heads=cpu_head_sizes() if self.on_cpu else ())

    def lora_request(self) -> Any:
        spec = self.job.engine
        if not spec.lora_path:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest(spec.lora_name, 1, spec.lora_path)

    # -- prompts -------------------------------------------------------------------------
    def render(self, items: Sequence[Item]) -> tuple[list[tuple[int, list[int]]], list[Completion]]:
        """Chat template -> token ids. Returns (index, ids) to run and per-sample failures."""
        tokenizer = self.llm.get_tokenizer()
        prompt = self.job.prompt
        template_kwargs: dict[str, Any] = dict(prompt.chat_template_kwargs)
        if prompt.chat_template:
            template_kwargs["chat_template"] = prompt.chat_template
        elif not getattr(tokenizer, "chat_template", None):
            raise BackendError(
                "the tokenizer has no chat template",
                where=f"model.path={self.job.engine.model}",
                fix="set backend.chat_template to a Jinja template (or the path of a .jinja file)",
            )
        texts: list[tuple[int, str]] = []
        failed: list[Completion] = []
        for index, messages, *tools in items:
            extra = {"tools": tools[0]} if tools and tools[0] else {}  # fc mode: LLM.chat(..., tools=) renders them so
            try:
                texts.append((index, tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra, **template_kwargs)))
            except Exception as exc:  # a template error concerns this conversation only
                failed.append(Completion(index=index, error=f"chat template: {diagnose.first_line(exc, 160)}"))
        ids = tokenizer([t for _, t in texts], add_special_tokens=False)["input_ids"] if texts else []
        limit = self.max_model_len()
        runnable: list[tuple[int, list[int]]] = []
        for (index, _), token_ids in zip(texts, ids):
            if limit is not None and len(token_ids) >= limit:
                failed.append(Completion(index=index, error=f"prompt too long: {len(token_ids)} tokens >= max_model_len {limit}"))
            else:
                runnable.append((index, list(token_ids)))
        return runnable, failed

    def max_model_len(self) -> int | None:
        try:
            return int(self.llm.llm_engine.model_config.max_model_len)
        except AttributeError:
            return self.job.engine.max_model_len

    # -- generation ----------------------------------------------------------------------
    def run(self, items: Sequence[Item], emit: Emit) -> None:
        """Generate for ``items``, calling ``emit`` with each finished chunk's completions."""
        if not items:
            return
        runnable, failed = self.render(items)
        if failed:
            emit(failed)
        if self.job.prompt.sort_prompts:
            runnable.sort(key=lambda item: item[1])
        size = max(1, self.job.prompt.chunk_size)
        for start in range(0, len(runnable), size):
            emit(self._run_chunk(runnable[start : start + size]))

    def _run_chunk(self, chunk: list[tuple[int, list[int]]]) -> list[Completion]:
        try:
            return self._generate(chunk)
        except EvalKitError:
            raise
        except ValueError as exc:
            # A validation error on one request fails the whole call: retry one by one so
            # only the offending samples fail. Engine-wide errors are not ValueErrors.
            if len(chunk) == 1:
                return [Completion(index=chunk[0][0], error=f"rejected by vLLM: {diagnose.first_line(exc, 200)}")]
            log.warning("vllm rejected a chunk (%s); retrying its %d prompts one by one", diagnose.first_line(exc, 120), len(chunk))
            return [c for item in chunk for c in self._run_chunk([item])]
        except Exception as exc:
            raise self.explain(exc) from None

    def _generate(self, chunk: list[tuple[int, list[int]]]) -> list[Completion]:
        decode = self.job.decode
        prompts = [{"prompt_token_ids": ids} for _, ids in chunk]
        self.engine_calls += 1
        self.prompts_sent += len(chunk)
        if decode.use_beam_search:
            return self._beam_search(chunk, prompts)
        outputs = self.llm.generate(prompts, decode.sampling_params(self.vllm), use_tqdm=False, lora_request=self.lora_request())
        completions = []
        for (index, ids), out in zip(chunk, outputs):
            texts = [o.text for o in out.outputs]
            if decode.greedy and decode.n > 1:
                texts = texts[:1] * decode.n
            usage = {"prompt_tokens": len(ids), "completion_tokens": sum(len(o.token_ids) for o in out.outputs)}
            completions.append(Completion(index=index, texts=texts, usage=usage))
        return completions

    def _beam_search(self, chunk: list[tuple[int, list[int]]], prompts: list[dict[str, Any]]) -> list[Completion]:
        from vllm import sampling_params as vllm_sampling

        decode = self.job.decode
        llm = self.llm
        outputs = llm.beam_search(prompts, decode.beam_params(vllm_sampling), lora_request=self.lora_request())
        tokenizer = llm.get_tokenizer()
        completions = []
        for (index, ids), out in zip(chunk, outputs):
            texts, generated = [], 0
            for seq in out.sequences[: decode.n]:
                new = list(seq.tokens)[len(ids) :]  # beam sequences carry the prompt too
                generated += len(new)
                text = tokenizer.decode(new, skip_special_tokens=decode.skip_special_tokens)
                texts.append(trim_at_stop(text, decode.stop))
            completions.append(Completion(index=index, texts=texts, usage={"prompt_tokens": len(ids), "completion_tokens": generated}))
        return completions

    # -- shutdown ------------------------------------------------------------------------
    def close(self) -> None:
        """Drop the engine so its memory can be returned (a borrowed ``llm`` is left alone)."""
        llm, self._llm = self._llm, None
        if llm is None or not self._owns_llm:
            return
        try:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
        except Exception:  # pragma: no cover - best effort
            pass
        del llm
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # pragma: no cover
            pass
