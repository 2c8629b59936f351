"""The sides of preference rows as token ids, rendered as the trainers render them, and the
length-sorted batching both scorers share.

One side is the row's prompt followed by one response. Conversational rows go through the
model's chat template without a generation prompt and are tokenized without adding special
tokens (the template holds them) — TRL's ``RewardTrainer`` and LLaMA-Factory's RM stage
tokenize the rendered conversation the same way. Plain-text rows (TRL's non-conversational
format) are ``prompt + response`` with the EOS token appended when missing, tokenized as
``tokenizer(text)``, as TRL does. ``prompt_len`` is the number of leading tokens the side
shares with the rendered prompt (with the generation prompt for conversational rows): the
response tokens a DPO reward sums over are the ones after it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from evalkit.errors import ConfigError
from evalkit.types import OnResult, Request, Result

log = logging.getLogger("evalkit.reward")


@dataclass
class Side:
    request: int  # position of the request in the scored list
    response: int  # which response of the row
    ids: list[int]
    prompt_len: int


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def render_side_texts(runtime: Any, prompt: Any, responses: Sequence[Any]) -> tuple[list[str], str, bool]:
    """The texts of a row's sides and of its prompt (rendered once per row), and whether the
    tokenizer adds its special tokens (plain-text rows) or not (chat-template rows)."""
    if isinstance(prompt, str):
        eos = runtime.tokenizer.eos_token or ""
        texts = [prompt + r + (eos if eos and not (prompt + r).endswith(eos) else "") for r in responses]
        return texts, prompt, True
    texts = [runtime.render(list(prompt) + list(r), add_generation_prompt=False) for r in responses]
    return texts, runtime.render(list(prompt), add_generation_prompt=True), False


def _tokenize(tokenizer: Any, texts: list[str], special: bool) -> list[list[int]]:
    """One batched tokenizer call (a fast tokenizer encodes the list in Rust)."""
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=special)["input_ids"]]


def check_rows(requests: Sequence[Request], head: str) -> None:
    for r in requests:
        row = r.row if isinstance(r.row, dict) else {}
        if not isinstance(row.get("responses"), list) or "prompt" not in row:
            raise ConfigError(
                f"head '{head}' scores preference rows, but the row at {r.where or r.index} has no 'prompt'/'responses'",
                where="data.label_format",
                fix="set data.label_format=preference (data=reward_demo shows the options)",
            )


def encode_requests(runtime: Any, requests: Sequence[Request], on_result: OnResult) -> tuple[list[Side], dict[int, int]]:
    """Every side of every request; a request that cannot be rendered or is too long fails
    alone (``on_result`` with an error). Returns the sides and the number of sides per request.
    Texts are rendered per request, then tokenized in one call per kind (chat / plain)."""
    rendered: dict[bool, list[tuple[int, int, str]]] = {True: [], False: []}  # special -> (request, response | -1 prompt, text)
    for i, r in enumerate(requests):
        row = r.row
        try:
            texts, head, special = render_side_texts(runtime, row["prompt"], row["responses"])
        except ConfigError:
            raise
        except Exception as exc:  # a template that rejects one conversation fails that sample only
            on_result(Result(index=r.index, error=f"chat template: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"))
            continue
        rendered[special] += [(i, j, t) for j, t in enumerate(texts)] + ([(i, -1, head)] if head else [])
    ids: dict[tuple[int, int], list[int]] = {}
    for special, items in rendered.items():
        for (i, j, _), tokens in zip(items, _tokenize(runtime.tokenizer, [t for _, _, t in items], special)):
            ids[(i, j)] = tokens
    sides: list[Side] = []
    counts: dict[int, int] = {}
    limit = runtime.max_length
    for i, r in enumerate(requests):
        n = len(r.row["responses"])
        if n == 0:
            on_result(Result(index=r.index, error="no responses to score"))
            continue
        if (i, 0) not in ids:
            continue  # failed to render (already reported)
        prompt_ids = ids.get((i, -1), [])
        mine = [Side(request=i, response=j, ids=ids[(i, j)], prompt_len=_common_prefix(ids[(i, j)], prompt_ids)) for j in range(n)]
        longest = max(len(s.ids) for s in mine)
        if limit is not None and longest > limit:
            on_result(Result(index=r.index, error=f"side too long: {longest} tokens > backend.max_length={limit}"))
            continue
        sides += mine
        counts[i] = n
    return sides, counts


def length_batches(sides: Sequence[Side], batch_size: int) -> list[list[Side]]:
    """Sides sorted by length (longest first, stable), cut into batches: little padding, and
    the first batch shows at once whether the largest one fits in memory."""
    order = sorted(range(len(sides)), key=lambda k: -len(sides[k].ids))
    ordered = [sides[k] for k in order]
    return [ordered[s : s + batch_size] for s in range(0, len(ordered), batch_size)]


def right_padded(batch: Sequence[Side], pad_id: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(s.ids) for s in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for b, side in enumerate(batch):
        ids[b, : len(side.ids)] = torch.tensor(side.ids, dtype=torch.long)
        mask[b, : len(side.ids)] = 1
    return ids.to(device), mask.to(device)


def prediction(kind: str, scores: list[float]) -> dict[str, Any]:
    if kind == "pair":
        return {"chosen": scores[0], "rejected": scores[1]}
    if kind == "scored":
        return {"score": scores[0]}
    return {"scores": scores}


def score_all(
    runtime: Any,
    requests: Sequence[Request],
    on_result: OnResult,
    score_batch: Callable[[list[Side]], Iterable[float]],
    *,
    head: str,
) -> list[float]:
    """Encode, batch, score and report: ``on_result`` fires for a request as soon as all its
    sides are scored. Returns every score (for the "scores barely vary" check)."""
    import time

    check_rows(requests, head)
    sides, counts = encode_requests(runtime, requests, on_result)
    results: dict[int, list[float | None]] = {i: [None] * n for i, n in counts.items()}
    remaining = dict(counts)
    tokens = {i: 0 for i in counts}
    elapsed = {i: 0.0 for i in counts}
    every: list[float] = []
    for batch in length_batches(sides, runtime.batch_size):
        started = time.monotonic()
        values = [float(v) for v in score_batch(batch)]
        took = time.monotonic() - started
        for side, value in zip(batch, values, strict=True):
            i = side.request
            results[i][side.response] = value
            tokens[i] += len(side.ids)
            elapsed[i] += took / len(batch)
            every.append(value)
            remaining[i] -= 1
            if remaining[i] == 0:
                r = requests[i]
                scores = [float(v) for v in results[i]]  # type: ignore[arg-type]
                if not all(math.isfinite(v) for v in scores):
                    on_result(Result(index=r.index, error="non-finite score (inf/nan) from the model"))
                else:
                    on_result(Result(index=r.index, prediction=prediction(r.row.get("kind", "pair"), scores), latency_s=elapsed[i], usage={"prompt_tokens": tokens[i]}))
    warn_if_flat(every, head)
    return every


def warn_if_flat(scores: Sequence[float], head: str) -> None:
    """A freshly initialised or collapsed head gives (almost) the same score to everything."""
    finite = [s for s in scores if math.isfinite(s)]
    if len(finite) < 4:
        return
    mean = sum(finite) / len(finite)
    std = math.sqrt(sum((s - mean) ** 2 for s in finite) / len(finite))
    if std <= 1e-4 * max(1.0, abs(mean)):
        log.warning(
            "head '%s': the %d scores barely vary (std %.3g around %.4g) — is the reward head freshly initialised or the wrong checkpoint?",
            head, len(finite), std, mean,
        )
