"""Sequence-level scoring with vLLM: the :class:`evalkit.types.ScoringRuntime` that
``backend=vllm`` hands heads with ``wants = "sequences"`` (``reward``, ``dpo``).

The heads render, tokenize and batch exactly as with ``backend=hf`` (same sides, same token
ids); only the model computation moves into vLLM, through two engine-side operations a head
looks for on the runtime:

* ``pooled_scores(ids)`` — a sequence classifier (``num_labels=1``) through vLLM's pooling
  runner: ``LLM(runner="pooling")`` and ``LLM.classify`` with ``use_activation=False``, so the
  raw logit at the last token comes back (vLLM 0.32 has no ``reward`` task; ``classify`` is what
  its docs point reward models to), as transformers pools it;
* ``response_logprobs(ids, starts, path=None, average=False)`` — the sum (or mean) of
  ``log p(token_t | tokens_<t)`` over ``t >= start``, from ``SamplingParams(max_tokens=1,
  prompt_logprobs=0)``: vLLM returns the log-probability of every prompt token itself
  (raw log-softmax of the logits). ``path`` names another checkpoint (the DPO reference).

One engine per (checkpoint, runner), built on first use with the backend's engine settings and
closed by the backend's ``close()``. On a GPU only one engine is kept alive at a time (each would
claim ``gpu_memory_utilization`` of the device); on CPU they coexist. The backend's LoRA adapter
applies to ``model.path``'s generate engine (a LoRA-trained DPO policy).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Sequence

from evalkit.errors import BackendError

log = logging.getLogger("evalkit.vllm")


class LocalCheckpoint:
    """What a reward head reads from a checkpoint directory without loading a model."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def config(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def tensor_shape(self, name: str) -> list[int] | None:
        from safetensors import safe_open

        for file in sorted(self.path.glob("*.safetensors")):
            with safe_open(str(file), framework="pt") as handle:
                if name in handle.keys():
                    return list(handle.get_slice(name).get_shape())
        return None


class VLLMScoringRuntime:
    """``backend=vllm``'s :class:`~evalkit.types.ScoringRuntime` (see the module docstring)."""

    device = "vllm"

    def __init__(self, backend: Any) -> None:
        from transformers import AutoTokenizer

        self._backend = backend
        self._engines: dict[tuple[str, str], Any] = {}
        self.checkpoint = LocalCheckpoint(backend.model_path)
        self.tokenizer = AutoTokenizer.from_pretrained(backend.model_path, trust_remote_code=backend.engine_spec.trust_remote_code)
        self.batch_size = backend.prompt_spec.chunk_size  # vLLM schedules within a call; a chunk is the persistence unit
        config = self.checkpoint.config()
        limit = backend.engine_spec.max_model_len or config.get("max_position_embeddings")
        self.max_length = int(limit) - 1 if limit else None  # a generate request needs room for its one token

    # -- the ScoringRuntime contract ---------------------------------------------------------
    def load_model(self, kind: str, path: str | None = None) -> Any:
        raise BackendError(
            f"backend 'vllm' does not load a '{kind}' torch model for this head",
            where="backend.name=vllm",
            fix="use head=reward (sequence classifiers) or head=dpo, or backend=hf for value-head and AcceptHead checkpoints",
        )

    def render(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = False) -> str:
        prompt = self._backend.prompt_spec
        template = prompt.chat_template or getattr(self.tokenizer, "chat_template", None)
        if not template:
            raise BackendError("the tokenizer has no chat template", where=f"model.path={self.checkpoint.path}", fix="set backend.chat_template to a Jinja template (or a .jinja file)")
        return self.tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt, **prompt.chat_template_kwargs)

    # -- engine-side operations --------------------------------------------------------------
    def pooled_scores(self, ids: Sequence[Sequence[int]]) -> list[float]:
        """Raw classifier logits (one label) at the last token, one per sequence."""
        engine = self._engine(str(self.checkpoint.path), "pooling")
        from vllm import PoolingParams

        outputs = self._call(engine, "classify", [{"prompt_token_ids": list(x)} for x in ids], pooling_params=PoolingParams(use_activation=False), use_tqdm=False)
        scores = []
        for out in outputs:
            values = list(out.outputs.probs)
            if len(values) != 1:
                raise BackendError(f"the classifier returns {len(values)} values per sequence; a reward model has one (num_labels=1)", where=f"model.path={self.checkpoint.path}")
            scores.append(float(values[0]))
        return scores

    def response_logprobs(self, ids: Sequence[Sequence[int]], starts: Sequence[int], path: str | None = None, average: bool = False) -> list[float]:
        """Sum (``average``: mean) of the log-probabilities of tokens ``[start, len)``."""
        from vllm import SamplingParams

        model = path or str(self.checkpoint.path)
        engine = self._engine(model, "generate")
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        lora = engine.lora_request() if path is None else None
        outputs = self._call(engine, "generate", [{"prompt_token_ids": list(x)} for x in ids], params, use_tqdm=False, lora_request=lora)
        values = []
        for seq, start, out in zip(ids, starts, outputs, strict=True):
            picked = [out.prompt_logprobs[t][seq[t]].logprob for t in range(max(start, 1), len(seq))]
            total = float(sum(picked))
            values.append(total / max(1, len(picked)) if average else total)
        return values

    # -- engines ------------------------------------------------------------------------------
    def _engine(self, model: str, runner: str) -> Any:
        key = (model, runner)
        if key in self._engines:
            return self._engines[key]
        from evalkit_vllm.engine import Engine, is_cpu_platform

        backend = self._backend
        if self._engines and not is_cpu_platform():
            self.close()  # one engine at a time on an accelerator
        job = backend.job
        own = model == str(self.checkpoint.path)
        spec = dataclasses.replace(
            job.engine,
            model=model,
            lora_path=job.engine.lora_path if own and runner == "generate" else None,
            engine_kwargs={**job.engine.engine_kwargs, "runner": runner},
        )
        borrowed = backend._borrowed_llm if own and _runner_of(backend._borrowed_llm) == runner else None
        engine = Engine(dataclasses.replace(job, engine=spec), llm=borrowed)
        engine.llm  # build now: start-up errors are reported before any sample is scored
        log.info("vllm: %s engine for %s ready", runner, model)
        self._engines[key] = engine
        return engine

    @staticmethod
    def _call(engine: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        from evalkit.errors import EvalKitError

        try:
            return getattr(engine.llm, method)(*args, **kwargs)
        except EvalKitError:
            raise
        except Exception as exc:
            raise engine.explain(exc) from None

    def close(self) -> None:
        engines, self._engines = self._engines, {}
        for engine in engines.values():
            engine.close()


def _runner_of(llm: Any) -> str | None:
    try:
        return str(llm.model_config.runner_type)
    except AttributeError:
        return None
