"""Pieces of batched generation that need no model: batching, settings, stop strings.

Why length-sorted batches: with left padding, a batch costs as much as its longest prompt
times its size; grouping prompts of similar length wastes almost no compute on padding, and
putting the longest batch first surfaces an out-of-memory error in seconds, not at the end.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

from evalkit.types import GenerationConfig

T = TypeVar("T")


def batches_by_length(items: Sequence[T], lengths: Sequence[int], batch_size: int) -> list[list[T]]:
    """Split ``items`` into batches of similar length, longest first (stable for ties)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    order = sorted(range(len(items)), key=lambda i: (-lengths[i], i))
    return [[items[i] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]


def hf_generation_config(base: Any, gen: GenerationConfig, *, eos_token_ids: list[int], pad_token_id: int | None, stop: Sequence[str]) -> Any:
    """A ``transformers.GenerationConfig`` for evalkit's shared settings.

    Starts from the checkpoint's own generation config (so model-specific settings such as
    extra EOS ids survive) but overrides every sampling field: a Qwen checkpoint ships
    ``do_sample=true, temperature=0.6``, and ``temperature=0`` in evalkit must still mean greedy.
    Greedy decoding returns one sequence per prompt; the caller repeats it ``n`` times.
    """
    import copy

    cfg = copy.deepcopy(base)
    cfg.max_new_tokens = gen.max_new_tokens
    cfg.max_length = None
    cfg.min_new_tokens = None
    cfg.num_beams = 1
    cfg.eos_token_id = eos_token_ids or None
    cfg.pad_token_id = pad_token_id
    cfg.stop_strings = list(stop) or None
    if gen.greedy:
        cfg.do_sample = False
        cfg.temperature = None
        cfg.top_p = None
        cfg.top_k = None
        cfg.num_return_sequences = 1
    else:
        cfg.do_sample = True
        cfg.temperature = float(gen.temperature)
        cfg.top_p = float(gen.top_p) if gen.top_p < 1.0 else None
        cfg.top_k = int(gen.top_k) if gen.top_k and gen.top_k > 0 else 0
        cfg.num_return_sequences = gen.n
    return cfg


def trim_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the earliest stop string (the stop string itself is not returned)."""
    cut = len(text)
    for s in stop:
        if s:
            pos = text.find(s)
            if pos != -1:
                cut = min(cut, pos)
    return text[:cut]


def cut_at_eos(token_ids: list[int], eos_token_ids: Sequence[int], pad_token_id: int | None = None) -> list[int]:
    """The tokens a sequence really generated: up to (not including) the first EOS, without the
    padding ``generate`` appends once a sequence has finished (e.g. on a stop string) while
    others in its batch go on."""
    eos = set(eos_token_ids)
    for i, token in enumerate(token_ids):
        if token in eos:
            token_ids = token_ids[:i]
            break
    end = len(token_ids)
    if pad_token_id is not None:
        while end and token_ids[end - 1] == pad_token_id:
            end -= 1
    return token_ids[:end]
