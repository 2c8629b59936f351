"""``backend=hf``: a local transformers checkpoint, for generation and for token scoring.

generate: each request's messages are rendered with the chat template (the tokenizer's, or
``chat_template`` from the config) into text and tokenized without extra special tokens (the
template already holds them). Prompts are grouped into length-sorted batches, left-padded
whatever the tokenizer's default (its padding side is restored afterwards), and generated
with evalkit's shared ``generation`` settings. Results go to ``on_result`` as each batch
finishes, each with its dataset index; the pipeline restores dataset order. Deterministic
settings use the response cache, keyed by the rendered prompt, so a re-run only generates
what is missing.

score: rows carry ``input_ids`` and ``labels``; a teacher-forced forward pass in right-padded,
length-sorted batches gives the head what it wants (the causal LM's logits, or the base
model's final hidden states), and each sample's prediction is one value per input token.

The model loads on first use, so a bad row or a fully cached run never waits for weights.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from evalkit.cache import CachedGeneration, ResponseCache, cache_prompt
from evalkit.errors import BackendError, ConfigError, EvalKitError, missing_dependency
from evalkit.paths import read_chat_template
from evalkit.types import GenerationConfig, OnResult, Request, Result, chat_messages

from evalkit_hf.checkpoint import Checkpoint
from evalkit_hf.generation import batches_by_length, cut_at_eos, hf_generation_config, trim_at_stop
from evalkit_hf.padding import left_padding
from evalkit_hf.rows import validate_rows

log = logging.getLogger("evalkit.hf")

DTYPES = ("auto", "float32", "bfloat16", "float16")


def _require_transformers() -> Any:
    try:
        import transformers  # noqa: F401
    except ImportError:
        raise missing_dependency("transformers", "hf") from None
    return transformers


class HFBackend:
    """A local Hugging Face checkpoint (``model.path``) on CPU or GPU.

    Args:
        dtype: ``auto`` (float32 on CPU, the checkpoint's dtype on GPU), ``float32``,
            ``bfloat16`` or ``float16``.
        device: ``cpu``, ``cuda`` (or ``cuda:N``) or ``auto`` (GPU when available).
        batch_size: prompts (generate) or rows (score) per forward pass.
        max_length: longest prompt (generate) or row (score) in tokens; longer prompts fail
            per sample, longer rows are data errors. ``null``: no limit.
        attn_implementation: passed to ``from_pretrained`` (``sdpa``, ``eager``, ``flash_attention_2``).
        chat_template: a Jinja template (or the path of a ``.jinja`` file) replacing the
            tokenizer's own.
        chat_template_kwargs: extra template variables, e.g. ``{enable_thinking: false}``;
            null values are not passed (the template's default applies).
    """

    def __init__(
        self,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int = 8,
        max_length: int | None = None,
        attn_implementation: str | None = None,
        chat_template: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        model: Mapping[str, Any] | None = None,
        generation: GenerationConfig | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}", where="backend.dtype")
        if not (device in ("auto", "cpu", "cuda") or device.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}", where="backend.device")
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1", where="backend.batch_size")
        if max_length is not None and max_length < 1:
            raise ConfigError("max_length must be >= 1 or null", where="backend.max_length")
        _require_transformers()
        self.checkpoint = self._checkpoint(model)
        self.dtype_name = dtype
        self.device_name = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.attn_implementation = attn_implementation
        self.chat_template = read_chat_template(chat_template)
        # null values are dropped, so the shipped `enable_thinking: null` means "the template's default".
        self.chat_template_kwargs = {k: v for k, v in (chat_template_kwargs or {}).items() if v is not None}
        self.generation = generation or GenerationConfig()
        self.cache = cache
        self._tokenizer: Any = None
        self._models: dict[str, Any] = {}

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        generation: GenerationConfig | None = None,
        batch_size: int = 8,
        max_length: int | None = None,
        chat_template: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
    ) -> "HFBackend":
        """A backend that generates with a model and tokenizer already in memory (a training
        run's), with the code of ``backend=hf``. The model is left as found: its padding side,
        each submodule's train/eval mode, autograd and random streams are restored after every
        ``generate``; there is no response cache (the weights change between evaluations)."""
        return BorrowedModelBackend(
            model,
            tokenizer,
            batch_size=batch_size,
            max_length=max_length,
            chat_template=chat_template,
            chat_template_kwargs=chat_template_kwargs,
            generation=generation,
        )

    @staticmethod
    def _checkpoint(model: Mapping[str, Any] | None) -> Checkpoint:
        return Checkpoint.from_config(model)

    # -- loading -------------------------------------------------------------------------
    @property
    def device(self) -> Any:
        import torch

        if self.device_name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device_name.startswith("cuda") and not torch.cuda.is_available():
            raise BackendError("backend.device is cuda but no GPU is available", where="backend.device", fix="use backend.device=cpu or auto")
        return torch.device(self.device_name)

    def torch_dtype(self) -> Any:
        import torch

        if self.dtype_name != "auto":
            return getattr(torch, self.dtype_name)
        if self.device.type == "cpu":
            return torch.float32
        stored = self.checkpoint.config().get("dtype") or self.checkpoint.config().get("torch_dtype")
        return getattr(torch, stored) if stored in DTYPES[1:] else torch.bfloat16

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(
                    str(self.checkpoint.tokenizer_path), trust_remote_code=self.checkpoint.trust_remote_code
                )
            except Exception as exc:  # OSError, ValueError, tokenizers' own exceptions
                raise BackendError(f"cannot load the tokenizer: {_first_line(exc)}", where=f"model.path={self.checkpoint.tokenizer_path}") from None
        return self._tokenizer

    def load_model(self, kind: str, path: str | Path | None = None) -> Any:
        """``kind``: ``causal_lm`` (generate, logits), ``base`` (final hidden states) or
        ``sequence_classification`` (reward models); ``path``: another checkpoint (a DPO reference)."""
        key = kind if path is None else f"{kind}:{path}"
        if key in self._models:
            return self._models[key]
        from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

        from evalkit_hf.tiny import quiet_transformers

        if kind == "causal_lm" and path is None:
            self._check_lm_head()
        cls = {"causal_lm": AutoModelForCausalLM, "sequence_classification": AutoModelForSequenceClassification}.get(kind, AutoModel)
        source = str(path) if path is not None else str(self.checkpoint.path)
        kwargs: dict[str, Any] = {"dtype": self.torch_dtype(), "trust_remote_code": self.checkpoint.trust_remote_code}
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        started = time.monotonic()
        try:
            with quiet_transformers():
                model = cls.from_pretrained(source, **kwargs)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise BackendError(f"cannot load the model: {_first_line(exc)}", where=f"model.path={source}") from None
        model.to(self.device)
        model.eval()
        log.info("loaded %s (%s) on %s in %.1fs", source, kind, self.device, time.monotonic() - started)
        self._models[key] = model
        return model

    def _check_lm_head(self) -> None:
        """An AcceptHead checkpoint (``lm_head.weight`` [1, H]) cannot generate text: say so."""
        shape = self.checkpoint.tensor_shape("lm_head.weight")
        vocab = self.checkpoint.config().get("vocab_size")
        if shape is not None and len(shape) == 2 and shape[0] == 1 and vocab not in (None, 1):
            raise BackendError(
                f"the checkpoint's lm_head.weight has shape {list(shape)}: its LM head was replaced by a regression head, so it cannot generate text",
                where=f"model.path={self.checkpoint.path}",
                fix="score it with head=accept_head (e.g. +experiment=accepthead)",
            )

    # -- generate ------------------------------------------------------------------------
    def render(self, request: Request) -> str:
        """The prompt text for one request (chat template applied, generation prompt added)."""
        messages = chat_messages(request, "hf")
        template = self.chat_template or getattr(self.tokenizer, "chat_template", None)
        if not template:
            raise BackendError(
                "the tokenizer has no chat template",
                where=f"model.path={self.checkpoint.tokenizer_path}",
                fix="set backend.chat_template to a Jinja template (or a .jinja file)",
            )
        # fc mode: the template renders the offered tools (tools=), as a server's chat template would
        tools = {"tools": request.tools} if request.tools else {}
        return self.tokenizer.apply_chat_template(
            messages,
            chat_template=template,
            tokenize=False,
            add_generation_prompt=True,
            **tools,
            **self.chat_template_kwargs,
        )

    def cache_identity(self) -> dict[str, Any]:
        """What names the model for the response cache: path, dtype, and a fingerprint of the
        weight files, so a checkpoint re-trained in place never returns stale answers."""
        dtype = str(self.torch_dtype()).replace("torch.", "")
        return {"kind": "hf", "model": str(self.checkpoint.path), "dtype": dtype, "weights": self.checkpoint.fingerprint()}

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        gen = self.generation
        tokenizer = self.tokenizer
        prompts: dict[int, str] = {}
        renderable: list[Request] = []
        for r in requests:
            try:
                prompts[r.index] = self.render(r)
            except EvalKitError:
                raise
            except Exception as exc:  # a template that rejects one conversation fails that sample only
                on_result(Result(index=r.index, error=f"chat template: {_first_line(exc)[:200]}"))
                continue
            renderable.append(r)
        requests = renderable
        cached = CachedGeneration(self.cache, self.cache_identity, gen)
        hits, missing = cached.split((r.index, cache_prompt(prompts[r.index], r)) for r in requests)
        for hit in hits:
            on_result(hit)
        missing_set = set(missing)
        pending = [r for r in requests if r.index in missing_set]
        if not pending:
            return
        encoded = {r.index: tokenizer(prompts[r.index], add_special_tokens=False)["input_ids"] for r in pending}
        runnable = []
        for r in pending:
            n_tokens = len(encoded[r.index])
            if self.max_length is not None and n_tokens > self.max_length:
                on_result(Result(index=r.index, error=f"prompt too long: {n_tokens} tokens > backend.max_length={self.max_length}"))
            else:
                runnable.append(r)
        batches = batches_by_length(runnable, [len(encoded[r.index]) for r in runnable], self.batch_size)
        model = self.load_model("causal_lm") if batches else None
        for batch in batches:
            self._generate_batch(model, batch, [encoded[r.index] for r in batch], on_result, cached)

    def eos_token_ids(self, model: Any) -> list[int]:
        ids = model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def _generate_batch(self, model: Any, batch: list[Request], token_ids: list[list[int]], on_result: OnResult, cached: CachedGeneration) -> None:
        import torch

        gen = self.generation
        tokenizer = self.tokenizer
        eos = self.eos_token_ids(model)
        started = time.monotonic()
        with left_padding(tokenizer):
            enc = tokenizer.pad({"input_ids": token_ids}, padding=True, return_tensors="pt")
            pad_id = tokenizer.pad_token_id
            cfg = hf_generation_config(model.generation_config, gen, eos_token_ids=eos, pad_token_id=pad_id, stop=gen.stop)
            if gen.seed is not None and not gen.greedy:
                torch.manual_seed(gen.seed)
            extra = {"tokenizer": tokenizer} if gen.stop else {}
            try:
                with torch.inference_mode():
                    out = model.generate(
                        input_ids=enc["input_ids"].to(model.device),
                        attention_mask=enc["attention_mask"].to(model.device),
                        generation_config=cfg,
                        **extra,
                    )
            except torch.cuda.OutOfMemoryError:
                raise BackendError(f"out of GPU memory generating a batch of {len(batch)}", where="backend.batch_size", fix="lower backend.batch_size or generation.max_new_tokens") from None
        elapsed = time.monotonic() - started
        prompt_len = enc["input_ids"].shape[1]
        new_tokens = out[:, prompt_len:].tolist()
        per_prompt = 1 if gen.greedy else gen.n
        results: list[Result] = []
        for b, request in enumerate(batch):
            texts: list[str] = []
            n_completion = 0
            for j in range(per_prompt):
                ids = cut_at_eos(new_tokens[b * per_prompt + j], eos, pad_id)
                n_completion += len(ids)
                text = tokenizer.decode(ids, skip_special_tokens=True)
                texts.append(trim_at_stop(text, gen.stop))
            if gen.greedy and gen.n > 1:
                texts = texts * gen.n
                n_completion *= gen.n
            usage = {"prompt_tokens": len(token_ids[b]), "completion_tokens": n_completion}
            # a batch's time shared by its samples, so latency totals add up to the time spent
            results.append(Result(index=request.index, outputs=texts, latency_s=elapsed / len(batch), usage=usage))
        cached.store(results)  # the whole batch in one transaction, before anything is reported done
        for result in results:
            on_result(result)

    # -- score ---------------------------------------------------------------------------
    def score(self, requests: Sequence[Request], head: Any, on_result: OnResult) -> None:
        """Teacher-forced forward passes; ``Result.prediction`` is one value per input token."""
        import torch

        wants = getattr(head, "wants", None)
        if wants == "sequences":  # a sequence-level head scores requests itself (evalkit.types.ScoreHead)
            head.score_sequences(HFScoringRuntime(self), list(requests), on_result)
            return
        if wants not in ("logits", "hidden_states"):
            raise ConfigError(f"head {type(head).__name__} cannot be scored by backend 'hf' (wants={wants!r})", where="head.name")
        requests = list(requests)
        if not requests:
            return
        config = self.checkpoint.config()
        vocab_size = config.get("vocab_size") or getattr(self.tokenizer, "vocab_size", None)
        input_key = getattr(head, "input_key", "input_ids")
        validate_rows(
            requests,
            input_key=input_key,
            labels_key=getattr(head, "labels_key", "labels"),
            check_label=head.label_check(vocab_size),
            vocab_size=vocab_size,
            max_length=self.max_length,
        )
        model = self.load_model("causal_lm" if wants == "logits" else "base")
        hidden_size = _hidden_size(model)
        head.bind(self.checkpoint, hidden_size=hidden_size, device=self.device)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        lengths = [len(r.row[input_key]) for r in requests]
        for batch in batches_by_length(requests, lengths, self.batch_size):
            started = time.monotonic()
            width = max(len(r.row[input_key]) for r in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for b, r in enumerate(batch):
                row_ids = r.row[input_key]
                ids[b, : len(row_ids)] = torch.tensor(row_ids, dtype=torch.long)
                mask[b, : len(row_ids)] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            try:
                with torch.inference_mode():
                    if wants == "logits":
                        values = _chunked_logit_scores(model, head, ids, mask).cpu()
                    else:
                        out = model(input_ids=ids, attention_mask=mask, use_cache=False)
                        values = head(out.last_hidden_state, mask).cpu()
            except torch.cuda.OutOfMemoryError:
                raise BackendError(f"out of GPU memory scoring a batch of {len(batch)}", where="backend.batch_size", fix="lower backend.batch_size") from None
            elapsed = time.monotonic() - started
            for b, r in enumerate(batch):
                n = len(r.row[input_key])
                on_result(Result(index=r.index, prediction=head.to_prediction(values[b, :n]), latency_s=elapsed / len(batch), usage={"prompt_tokens": n}))

    def close(self) -> None:
        self._models.clear()


class BorrowedModelBackend(HFBackend):
    """What :meth:`HFBackend.from_model` returns: ``backend=hf`` over an in-memory model."""

    def __init__(self, model: Any, tokenizer: Any, **options: Any) -> None:
        self._borrowed = (model, tokenizer)
        super().__init__(**options)
        self._tokenizer = tokenizer
        self._models["causal_lm"] = model

    def _checkpoint(self, model: Mapping[str, Any] | None) -> Checkpoint:  # type: ignore[override]
        """Names the in-memory model in messages; nothing is read from disk."""
        lm, tokenizer = self._borrowed
        return Checkpoint(
            path=Path(getattr(lm, "name_or_path", "") or "<in-memory model>"),
            tokenizer_path=Path(getattr(tokenizer, "name_or_path", "") or "<in-memory tokenizer>"),
        )

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None:
        from evalkit.training import borrowed_model

        model = self._borrowed[0]
        config = getattr(model, "generation_config", None)
        use_cache = getattr(config, "use_cache", None)
        with borrowed_model(model):
            if config is not None:
                config.use_cache = True  # training often turns the KV cache off (gradient checkpointing)
            try:
                super().generate(requests, on_result)
            finally:
                if config is not None:
                    config.use_cache = use_cache


# Logits materialised at once, at most (elements): [B, T, V] for a real vocabulary is huge
# (8 x 2048 x 150k floats = 10 GB), while the head only needs a reduction (argmax) per token.
LOGIT_CHUNK_ELEMENTS = 1 << 24


def _chunked_logit_scores(model: Any, head: Any, ids: Any, mask: Any) -> Any:
    """Run the causal LM for its final hidden states (asking for the logits of the last
    position only), then apply the output embedding and the head over chunks of positions."""
    import torch

    try:
        out = model(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True, logits_to_keep=1)
    except TypeError:  # a model without logits_to_keep: full logits, still chunked below
        out = model(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True)
    hidden = out.hidden_states[-1]  # after the final norm, where the LM head is applied
    lm_head = model.get_output_embeddings()
    batch, width = ids.shape
    vocab = lm_head.weight.shape[0]
    step = max(1, LOGIT_CHUNK_ELEMENTS // max(1, batch * vocab))
    parts = [head(lm_head(hidden[:, start : start + step]), mask[:, start : start + step]) for start in range(0, width, step)]
    return torch.cat(parts, dim=1)


class HFScoringRuntime:
    """The :class:`evalkit.types.ScoringRuntime` of this backend, for ``wants="sequences"`` heads."""

    def __init__(self, backend: HFBackend) -> None:
        self._backend = backend
        self.tokenizer = backend.tokenizer
        self.device = backend.device
        self.batch_size = backend.batch_size
        self.max_length = backend.max_length
        self.checkpoint = backend.checkpoint

    def load_model(self, kind: str, path: str | None = None) -> Any:
        return self._backend.load_model(kind, path)

    def render(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = False) -> str:
        backend = self._backend
        template = backend.chat_template or getattr(self.tokenizer, "chat_template", None)
        if not template:
            raise BackendError("the tokenizer has no chat template", where=f"model.path={backend.checkpoint.tokenizer_path}", fix="set backend.chat_template to a Jinja template (or a .jinja file)")
        return self.tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt, **backend.chat_template_kwargs
        )


def _hidden_size(model: Any) -> int:
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(text.hidden_size)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
