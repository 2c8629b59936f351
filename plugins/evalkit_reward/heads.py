"""Sequence-level score heads (``wants = "sequences"``, see :class:`evalkit.types.ScoreHead`):
a reward model's score and a DPO/KTO implicit reward for every response of a preference row.

Both score every side of every pair in length-sorted, right-padded batches through the
backend's :class:`~evalkit.types.ScoringRuntime` (``backend=hf``), and report one prediction per
row: ``{"chosen", "rejected"}`` for pairs, ``{"scores": [...]}`` for best-of-N and ranked rows,
``{"score"}`` for scored rows.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal, Sequence

from evalkit.errors import BackendError, ConfigError
from evalkit.types import OnResult, Request

from evalkit_reward.sides import Side, right_padded, score_all

log = logging.getLogger("evalkit.reward")

VALUE_HEAD_FILES = ("value_head.safetensors", "value_head.bin")
VALUE_HEAD_KEYS = ("v_head.summary.weight", "v_head.summary.bias")
RewardKind = Literal["auto", "sequence_classifier", "value_head", "accept_head"]


def _pad_id(tokenizer: Any) -> int:
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class RewardHead:
    """A reward model's scalar score for each side (``head=reward``).

    Args:
        kind: ``sequence_classifier`` — ``AutoModelForSequenceClassification`` with
            ``num_labels=1``, pooled at the last non-padding token by transformers itself;
            ``value_head`` — LLaMA-Factory's RM checkpoint: the base model plus
            ``value_head.safetensors`` (or ``.bin``) with ``v_head.summary.weight`` [1, H] /
            ``.bias`` [1], the value at the last non-padding token, as its pairwise trainer reads
            it; ``accept_head`` — an AcceptHead checkpoint (``lm_head`` replaced by
            ``Linear(H -> 1)``), its logit at the last token; ``auto`` picks by the files.
        sigmoid: pass scores through a sigmoid (AcceptHead probabilities); accuracy is unchanged.
    """

    mode = "score"
    wants = "sequences"

    def __init__(self, kind: RewardKind = "auto", sigmoid: bool = False) -> None:
        if kind not in ("auto", "sequence_classifier", "value_head", "accept_head"):
            raise ConfigError(f"kind must be auto, sequence_classifier, value_head or accept_head, got {kind!r}", where="head.kind")
        self.kind = kind
        self.sigmoid = bool(sigmoid)
        self.resolved = kind

    def label_check(self, vocab_size: int | None) -> Any:
        return lambda value: None

    # -- which model ------------------------------------------------------------------------
    def resolve(self, checkpoint: Any) -> str:
        """The checkpoint's kind, from its files and config (``kind=auto``)."""
        if self.kind != "auto":
            return self.kind
        path = Path(checkpoint.path)
        if any((path / name).is_file() for name in VALUE_HEAD_FILES):
            return "value_head"
        config = checkpoint.config()
        if any(str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []):
            return "sequence_classifier"
        shape = checkpoint.tensor_shape("lm_head.weight")
        if shape is not None and len(shape) == 2 and shape[0] == 1:
            return "accept_head"
        raise BackendError(
            "cannot tell what kind of reward model this is: no value_head.safetensors/.bin, no *ForSequenceClassification architecture, no [1, H] lm_head",
            where=f"model.path={path}",
            fix="point model.path at a reward-model checkpoint or set head.kind; a policy model is scored with head=dpo",
        )

    def _linear(self, runtime: Any, kind: str, hidden_size: int) -> tuple[Any, Any]:
        import torch

        path = Path(runtime.checkpoint.path)
        if kind == "value_head":
            file = next(path / n for n in VALUE_HEAD_FILES if (path / n).is_file())
            if file.suffix == ".safetensors":
                from safetensors.torch import load_file

                tensors = load_file(str(file))
            else:
                tensors = torch.load(str(file), map_location="cpu", weights_only=True)
            names = VALUE_HEAD_KEYS
        else:
            names = ("lm_head.weight", "lm_head.bias")
            tensors = runtime.checkpoint.load_tensors(list(names))
            file = path
        if names[0] not in tensors:
            raise BackendError(f"no '{names[0]}' in {file.name if hasattr(file, 'name') else file}", where=f"model.path={path}", fix=f"a {kind} checkpoint needs {names[0]} of shape [1, {hidden_size}]")
        weight = tensors[names[0]]
        if list(weight.shape) not in ([1, hidden_size], [hidden_size]):
            raise BackendError(f"{names[0]} has shape {list(weight.shape)}, expected [1, {hidden_size}]", where=f"model.path={path}")
        bias = tensors.get(names[1])
        bias = bias.reshape(()) if bias is not None else torch.zeros(())
        return weight.reshape(-1).float().to(runtime.device), bias.float().to(runtime.device)

    # -- scoring ------------------------------------------------------------------------------
    def score_sequences(self, runtime: Any, requests: Sequence[Request], on_result: OnResult) -> None:
        import torch

        kind = self.resolved = self.resolve(runtime.checkpoint)
        if hasattr(runtime, "pooled_scores"):  # an engine that pools itself (backend=vllm)
            self._score_with_engine(runtime, kind, requests, on_result)
            return
        pad_id = _pad_id(runtime.tokenizer)
        if kind == "sequence_classifier":
            model = runtime.load_model("sequence_classification")
            labels = getattr(model.config, "num_labels", 1)
            if labels != 1:
                raise BackendError(f"the sequence classifier has num_labels={labels}; a reward model has one", where=f"model.path={runtime.checkpoint.path}")
            if model.config.pad_token_id is None:  # transformers pools at the last non-pad token
                model.config.pad_token_id = pad_id

            def forward(ids: Any, mask: Any, batch: list[Side]) -> Any:
                return model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, 0]
        else:
            model = runtime.load_model("base")
            config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
            weight, bias = self._linear(runtime, kind, int(config.hidden_size))

            def forward(ids: Any, mask: Any, batch: list[Side]) -> Any:
                hidden = model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
                last = mask.sum(dim=1) - 1  # right padding: the last non-padding position
                pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
                return pooled.float() @ weight + bias

        def score_batch(batch: list[Side]) -> list[float]:
            ids, mask = right_padded(batch, pad_id, runtime.device)
            try:
                with torch.inference_mode():
                    values = forward(ids, mask, batch).float()
            except torch.cuda.OutOfMemoryError:
                raise BackendError(f"out of GPU memory scoring a batch of {len(batch)}", where="backend.batch_size", fix="lower backend.batch_size") from None
            if self.sigmoid:
                values = values.sigmoid()
            return values.cpu().tolist()

        score_all(runtime, requests, on_result, score_batch, head="reward")

    def _score_with_engine(self, runtime: Any, kind: str, requests: Sequence[Request], on_result: OnResult) -> None:
        if kind != "sequence_classifier":
            raise BackendError(
                f"this backend scores sequence classifiers through its pooling API; a {kind} checkpoint needs its own head weights",
                where=f"model.path={runtime.checkpoint.path}",
                fix="score value-head and AcceptHead checkpoints with backend=hf",
            )

        def score_batch(batch: list[Side]) -> list[float]:
            values = runtime.pooled_scores([s.ids for s in batch])
            return [_sigmoid(v) for v in values] if self.sigmoid else values

        score_all(runtime, requests, on_result, score_batch, head="reward")


# Logit elements materialised at once when summing log-probabilities ([B, chunk, V]).
LOGIT_CHUNK_ELEMENTS = 1 << 24


def response_logps(model: Any, ids: Any, mask: Any, starts: Sequence[int], lengths: Sequence[int], *, average: bool) -> Any:
    """Sum (or mean) of ``log p(token_t | tokens_<t)`` over each row's response tokens
    ``[start, length)``, from the causal LM's logits, computed over chunks of positions so a real
    vocabulary never materialises ``[B, T, V]``."""
    import torch

    try:
        out = model(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True, logits_to_keep=1)
    except TypeError:
        out = model(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True)
    hidden = out.hidden_states[-1]
    lm_head = model.get_output_embeddings()
    batch, width = ids.shape
    positions = torch.arange(width, device=ids.device)
    start_t = torch.tensor(list(starts), device=ids.device).unsqueeze(1)
    length_t = torch.tensor(list(lengths), device=ids.device).unsqueeze(1)
    # token t is predicted at position t - 1; response tokens are t in [start, length)
    scored = (positions.unsqueeze(0) >= start_t) & (positions.unsqueeze(0) < length_t) & (positions.unsqueeze(0) >= 1)
    total = torch.zeros(batch, dtype=torch.float64, device=ids.device)
    vocab = lm_head.weight.shape[0]
    step = max(1, LOGIT_CHUNK_ELEMENTS // max(1, batch * vocab))
    for s in range(1, width, step):
        e = min(width, s + step)
        logits = lm_head(hidden[:, s - 1 : e - 1]).float()
        logp = logits.log_softmax(dim=-1).gather(-1, ids[:, s:e].unsqueeze(-1)).squeeze(-1)
        total += (logp.double() * scored[:, s:e]).sum(dim=1)
    count = scored.sum(dim=1).clamp(min=1).double()
    return total / count if average else total


class DPOHead:
    """DPO/KTO implicit reward ``beta * (log π(y|x) − log π_ref(y|x))`` over the response tokens
    only (``head=dpo``); the policy is ``model.path``.

    Args:
        reference: the reference model's checkpoint directory; ``null`` gives the
            reference-free reward ``beta * log π(y|x)``.
        beta: the trainer's ``beta``.
        average: ``sum`` (DPO, KTO) or ``mean`` (per-token average, as SimPO / IPO-style
            length-normalised rewards use).
    """

    mode = "score"
    wants = "sequences"

    def __init__(self, reference: str | None = None, beta: float = 0.1, average: Literal["sum", "mean"] = "sum") -> None:
        if average not in ("sum", "mean"):
            raise ConfigError(f"average must be 'sum' or 'mean', got {average!r}", where="head.average")
        if not beta > 0:
            raise ConfigError(f"beta must be > 0, got {beta!r}", where="head.beta")
        self.reference = reference
        self.beta = float(beta)
        self.average = average
        self.reference_model: Any = None  # a reference already in memory (training loops) wins over ``reference``

    def label_check(self, vocab_size: int | None) -> Any:
        return lambda value: None

    def _reference_path(self) -> str | None:
        if not self.reference:
            return None
        from evalkit.paths import resolve_path

        path = Path(resolve_path(self.reference))
        if not (path / "config.json").is_file():
            raise BackendError("reference model directory not found (no config.json)", where=f"head.reference={path}", fix="give the reference (SFT) checkpoint directory, or head.reference=null for the reference-free reward")
        return str(path)

    def score_sequences(self, runtime: Any, requests: Sequence[Request], on_result: OnResult) -> None:
        if hasattr(runtime, "response_logprobs"):  # an engine that returns prompt log-probs (backend=vllm)
            reference = self._reference_path()
            average = self.average == "mean"

            def engine_batch(batch: list[Side]) -> list[float]:
                ids, starts = [s.ids for s in batch], [max(s.prompt_len, 1) for s in batch]
                policy = runtime.response_logprobs(ids, starts, None, average)
                ref = runtime.response_logprobs(ids, starts, reference, average) if reference else [0.0] * len(batch)
                return [self.beta * (p - r) for p, r in zip(policy, ref)]

            score_all(runtime, requests, on_result, engine_batch, head="dpo")
            return
        import torch

        policy = runtime.load_model("causal_lm")
        ref_model = self.reference_model
        if ref_model is None:
            reference = self._reference_path()
            ref_model = runtime.load_model("causal_lm", reference) if reference else None
        pad_id = _pad_id(runtime.tokenizer)
        average = self.average == "mean"

        def score_batch(batch: list[Side]) -> list[float]:
            ids, mask = right_padded(batch, pad_id, runtime.device)
            starts = [max(s.prompt_len, 1) for s in batch]
            lengths = [len(s.ids) for s in batch]
            try:
                with torch.inference_mode():
                    reward = response_logps(policy, ids, mask, starts, lengths, average=average)
                    if ref_model is not None:
                        reward = reward - response_logps(ref_model, ids, mask, starts, lengths, average=average)
            except torch.cuda.OutOfMemoryError:
                raise BackendError(f"out of GPU memory scoring a batch of {len(batch)}", where="backend.batch_size", fix="lower backend.batch_size") from None
            return (self.beta * reward).cpu().tolist()

        score_all(runtime, requests, on_result, score_batch, head="dpo")
