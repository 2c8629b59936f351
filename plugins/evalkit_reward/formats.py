"""Preference data as users have it, normalised to one canonical row per dataset row.

Readers for each shape the trainers and benchmarks use (no torch here):

* ``seed003`` — ``system``, ``history`` (``[[query, answer], ...]``), ``question``,
  ``response_chosen``, ``response_rejected`` (the reward-model scripts users have);
* ``trl`` — ``chosen`` / ``rejected`` as strings or message lists, with an explicit ``prompt``
  or an implicit one (the common prefix of both conversations);
* ``llamafactory`` — ranking data in alpaca (``instruction``, ``input``, ``chosen``,
  ``rejected``, optional ``system`` / ``history``) or sharegpt (``conversations`` + ``chosen`` /
  ``rejected`` messages) form;
* ``rewardbench`` — ``prompt``, ``chosen``, ``rejected`` (strings), ``subset``, ``id``;
* ``rewardbench2`` — ``chosen`` and ``rejected`` lists of responses, ``num_correct``, ``subset``;
  rows of its ``Ties`` subset carry ``id`` ``ref:N`` / ``tied:N`` (kept as ``label.ties``, which
  its special scoring groups by);
* ``ranked`` — ``input``, ``choices: [{text, rank}]`` (rank 1 is best);
* ``scored`` — ``input``, ``output``, ``score``.

A canonical row is ``{"id"?, "kind", "prompt", "responses", "label", "subset", "format"}``:
``kind`` is ``pair`` | ``best_of_n`` | ``ranked`` | ``scored``; ``prompt`` is the conversation
before the response (system message if non-empty, history turns, the user's question) as chat
messages — or a plain string for TRL's non-conversational rows, which TRL scores as plain text
without a chat template; ``responses`` are the assistant turns to score (each a list of
messages, or a string in plain-text rows), chosen first for pairs. ``label`` holds what the
metrics compare against (``{"kind", "subset", ...}``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from evalkit.errors import DataError

FORMATS = ("auto", "seed003", "trl", "llamafactory", "rewardbench", "rewardbench2", "ranked", "scored")
KINDS = ("pair", "best_of_n", "ranked", "scored")
Messages = list[dict[str, Any]]

# LLaMA-Factory sharegpt role tags -> chat roles.
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
                  "observation": "tool", "function_call": "assistant", "tool": "tool"}


def detect(row: dict[str, Any]) -> str:
    """The format a row is in, from its keys (raises ``ValueError`` when none fits)."""
    keys = set(row)
    if {"response_chosen", "response_rejected"} <= keys:
        return "seed003"
    if "choices" in keys and isinstance(row.get("choices"), list):
        return "ranked"
    if {"output", "score"} <= keys and ("input" in keys or "prompt" in keys):
        return "scored"
    if {"chosen", "rejected"} <= keys:
        chosen = row.get("chosen")
        if "conversations" in keys or "instruction" in keys:
            return "llamafactory"
        if isinstance(chosen, list) and chosen and all(isinstance(c, str) for c in chosen):
            return "rewardbench2"
        if "subset" in keys and isinstance(chosen, str):
            return "rewardbench"
        return "trl"
    raise ValueError(
        f"cannot tell the preference format from the keys {sorted(keys)[:8]}; expected e.g. "
        "response_chosen/response_rejected (seed003), prompt/chosen/rejected (trl, rewardbench), "
        "instruction or conversations + chosen/rejected (llamafactory), input + choices (ranked) or input/output/score (scored)"
    )


def _text(value: Any, field: str, where: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"'{field}' is missing or empty", where=where, fix="every pair needs a non-empty chosen and rejected response")
    if not isinstance(value, str):
        raise DataError(f"'{field}' must be a string, got {type(value).__name__}", where=where)
    return value


def _history(value: Any, where: str) -> Messages:
    """``[[query, answer], ...]`` (seed003 format, LLaMA-Factory alpaca) -> user/assistant messages."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise DataError(f"'history' must be a list of [query, answer] pairs, got {type(value).__name__}", where=where)
    messages: Messages = []
    for i, turn in enumerate(value):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2 or not all(isinstance(t, str) for t in turn):
            raise DataError(f"history[{i}] must be a [query, answer] pair of strings", where=where)
        messages += [{"role": "user", "content": turn[0]}, {"role": "assistant", "content": turn[1]}]
    return messages


def _conversation(system: Any, history: Any, question: Any, where: str, field: str = "question") -> Messages:
    messages: Messages = []
    if isinstance(system, str) and system.strip():
        messages.append({"role": "system", "content": system})
    elif system not in (None, "") and not isinstance(system, str):
        raise DataError(f"'system' must be a string, got {type(system).__name__}", where=where)
    messages += _history(history, where)
    messages.append({"role": "user", "content": _text(question, field, where)})
    return messages


def _reply(text: str) -> Messages:
    return [{"role": "assistant", "content": text}]


def _messages(value: Any, field: str, where: str) -> Messages:
    """A list of chat messages (``role``/``content``, or sharegpt ``from``/``value``)."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise DataError(f"'{field}' must be a non-empty list of messages", where=where)
    out: Messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise DataError(f"{field}[{i}] must be a message object, got {type(message).__name__}", where=where)
        if "from" in message:
            role = SHAREGPT_ROLES.get(str(message["from"]))
            if role is None:
                raise DataError(f"{field}[{i}] has unknown role tag {message['from']!r}", where=where, fix=f"use one of {', '.join(SHAREGPT_ROLES)}")
            content = message.get("value")
        else:
            role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or content is None:
            raise DataError(f"{field}[{i}] needs a role and a content", where=where)
        out.append({**{k: v for k, v in message.items() if k not in ("from", "value")}, "role": role, "content": content})
    return out


def _nonempty_messages(messages: Messages, field: str, where: str) -> Messages:
    def filled(content: Any) -> bool:
        return bool(content.strip()) if isinstance(content, str) else bool(content)

    if not any(filled(m.get("content")) for m in messages):
        raise DataError(f"'{field}' is missing or empty", where=where, fix="every pair needs a non-empty chosen and rejected response")
    return messages


def _pair(prompt: Messages | str, chosen: Messages | str, rejected: Messages | str, where: str, fmt: str, subset: Any = None) -> dict[str, Any]:
    if chosen == rejected:
        raise DataError("chosen and rejected responses are identical", where=where, fix="remove the row: an identical pair says nothing about preference")
    subset = None if subset in (None, "") else str(subset)
    return {"kind": "pair", "prompt": prompt, "responses": [chosen, rejected], "subset": subset,
            "label": {"kind": "pair", "subset": subset}, "format": fmt}


def from_seed003(row: dict[str, Any], where: str) -> dict[str, Any]:
    prompt = _conversation(row.get("system"), row.get("history"), row.get("question"), where)
    chosen = _text(row.get("response_chosen"), "response_chosen", where)
    rejected = _text(row.get("response_rejected"), "response_rejected", where)
    return _pair(prompt, _reply(chosen), _reply(rejected), where, "seed003", row.get("subset"))


def _common_prefix(a: Messages, b: Messages) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def from_trl(row: dict[str, Any], where: str) -> dict[str, Any]:
    chosen, rejected, prompt = row.get("chosen"), row.get("rejected"), row.get("prompt")
    if isinstance(chosen, str) or isinstance(rejected, str):  # standard (plain-text) rows
        chosen = _text(chosen, "chosen", where)
        rejected = _text(rejected, "rejected", where)
        if prompt is None:  # implicit prompt: TRL's rule, the common prefix up to a word boundary
            n = 0
            while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
                n += 1
            if 0 < n < min(len(chosen), len(rejected)) and chosen[n - 1] == " ":
                n -= 1
            prompt, chosen, rejected = chosen[:n], chosen[n:], rejected[n:]
            chosen = _text(chosen, "chosen", where)
            rejected = _text(rejected, "rejected", where)
        elif not isinstance(prompt, str):
            raise DataError("'prompt' must be a string when chosen/rejected are strings", where=where)
        return _pair(prompt, chosen, rejected, where, "trl", row.get("subset"))
    chosen_m = _messages(chosen, "chosen", where)
    rejected_m = _messages(rejected, "rejected", where)
    if prompt is None:  # implicit prompt: the common prefix of both conversations
        n = _common_prefix(chosen_m, rejected_m)
        prompt_m, chosen_m, rejected_m = chosen_m[:n], chosen_m[n:], rejected_m[n:]
        if not prompt_m:
            raise DataError("chosen and rejected share no prompt and no 'prompt' field is given", where=where)
    else:
        prompt_m = _messages(prompt, "prompt", where) if not isinstance(prompt, str) else [{"role": "user", "content": prompt}]
    if not chosen_m or not rejected_m:
        raise DataError("a side has no response after the prompt", where=where, fix="chosen and rejected must each end with an assistant turn")
    return _pair(prompt_m, _nonempty_messages(chosen_m, "chosen", where), _nonempty_messages(rejected_m, "rejected", where), where, "trl", row.get("subset"))


def _response_text(value: Any, field: str, where: str) -> str:
    if isinstance(value, dict):
        value = value.get("value", value.get("content"))
    return _text(value, field, where)


def from_llamafactory(row: dict[str, Any], where: str) -> dict[str, Any]:
    if "conversations" in row:  # sharegpt
        conv = _messages(row.get("conversations"), "conversations", where)
        prompt: Messages = []
        system = row.get("system")
        if isinstance(system, str) and system.strip():
            prompt.append({"role": "system", "content": system})
        prompt += conv
        if prompt[-1]["role"] not in ("user", "tool"):
            raise DataError("the conversation must end with a user (or observation) turn before chosen/rejected", where=where)
    else:  # alpaca
        instruction, extra = row.get("instruction"), row.get("input")
        query = instruction if not extra else (f"{instruction}\n{extra}" if instruction else extra)
        prompt = _conversation(row.get("system"), row.get("history"), query, where, field="instruction")
    chosen = _response_text(row.get("chosen"), "chosen", where)
    rejected = _response_text(row.get("rejected"), "rejected", where)
    return _pair(prompt, _reply(chosen), _reply(rejected), where, "llamafactory", row.get("subset"))


def _prompt_messages(prompt: Any, where: str, field: str = "prompt") -> Messages:
    if isinstance(prompt, list):
        return _messages(prompt, field, where)
    return [{"role": "user", "content": _text(prompt, field, where)}]


def from_rewardbench(row: dict[str, Any], where: str) -> dict[str, Any]:
    prompt = _prompt_messages(row.get("prompt"), where)
    chosen = _text(row.get("chosen"), "chosen", where)
    rejected = _text(row.get("rejected"), "rejected", where)
    return _pair(prompt, _reply(chosen), _reply(rejected), where, "rewardbench", row.get("subset"))


def from_rewardbench2(row: dict[str, Any], where: str) -> dict[str, Any]:
    prompt = _prompt_messages(row.get("prompt"), where)
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if not isinstance(chosen, list) or not chosen or not isinstance(rejected, list) or not rejected:
        raise DataError("'chosen' and 'rejected' must be non-empty lists of responses", where=where)
    texts = [_text(t, f"chosen[{i}]", where) for i, t in enumerate(chosen)] + [_text(t, f"rejected[{i}]", where) for i, t in enumerate(rejected)]
    if len(set(texts)) != len(texts):
        raise DataError("two responses of the row are identical", where=where)
    num_correct = row.get("num_correct", len(chosen))
    if not isinstance(num_correct, int) or isinstance(num_correct, bool) or num_correct != len(chosen):
        raise DataError(f"'num_correct' must equal the number of chosen responses ({len(chosen)}), got {num_correct!r}", where=where)
    subset = None if row.get("subset") in (None, "") else str(row["subset"])
    label: dict[str, Any] = {"kind": "best_of_n", "num_correct": num_correct, "subset": subset}
    if subset is not None and subset.lower() == TIES_SUBSET:
        label["ties"] = ties_group(row.get("id"), where)
    return {"kind": "best_of_n", "prompt": prompt, "responses": [_reply(t) for t in texts], "subset": subset,
            "label": label, "format": "rewardbench2"}


TIES_SUBSET = "ties"  # RewardBench 2's subset with its own scoring (compared case-insensitively, as it does)
_TIES_ID = re.compile(r"(ref|tied):(\d+)")


def ties_group(row_id: Any, where: str) -> dict[str, Any]:
    """``{"group": "ref" | "tied", "prompt": N}`` from a Ties row's ``id`` ``ref:N`` / ``tied:N``."""
    match = _TIES_ID.fullmatch(str(row_id)) if isinstance(row_id, str) else None
    if match is None:
        raise DataError(
            f"a RewardBench 2 'Ties' row needs an id 'ref:N' or 'tied:N' (its scoring pairs each tied prompt with its reference), got {row_id!r}",
            where=where,
            fix="keep RewardBench 2's ids for the Ties subset, or name the subset differently",
        )
    return {"group": match.group(1), "prompt": int(match.group(2))}


def from_ranked(row: dict[str, Any], where: str) -> dict[str, Any]:
    prompt = _prompt_messages(row.get("input", row.get("prompt")), where, field="input")
    choices = row.get("choices")
    if not isinstance(choices, list) or len(choices) < 2:
        raise DataError("'choices' must list at least two {text, rank} objects", where=where)
    texts, ranks = [], []
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise DataError(f"choices[{i}] must be an object with 'text' and 'rank'", where=where)
        texts.append(_text(choice.get("text"), f"choices[{i}].text", where))
        rank = choice.get("rank")
        if not isinstance(rank, (int, float)) or isinstance(rank, bool):
            raise DataError(f"choices[{i}].rank must be a number (1 = best), got {rank!r}", where=where)
        ranks.append(rank)
    if len(set(texts)) != len(texts):
        raise DataError("two choices have the same text", where=where)
    if len(set(ranks)) < 2:
        raise DataError("all choices have the same rank, so the row orders nothing", where=where)
    subset = None if row.get("subset") in (None, "") else str(row["subset"])
    return {"kind": "ranked", "prompt": prompt, "responses": [_reply(t) for t in texts], "subset": subset,
            "label": {"kind": "ranked", "ranks": ranks, "subset": subset}, "format": "ranked"}


def from_scored(row: dict[str, Any], where: str) -> dict[str, Any]:
    prompt = _prompt_messages(row.get("input", row.get("prompt")), where, field="input")
    output = _text(row.get("output"), "output", where)
    score = row.get("score")
    if not isinstance(score, (int, float)) or isinstance(score, bool) or score != score:
        raise DataError(f"'score' must be a number, got {score!r}", where=where)
    subset = None if row.get("subset") in (None, "") else str(row["subset"])
    return {"kind": "scored", "prompt": prompt, "responses": [_reply(output)], "subset": subset,
            "label": {"kind": "scored", "score": float(score), "subset": subset}, "format": "scored"}


READERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "seed003": from_seed003,
    "trl": from_trl,
    "llamafactory": from_llamafactory,
    "rewardbench": from_rewardbench,
    "rewardbench2": from_rewardbench2,
    "ranked": from_ranked,
    "scored": from_scored,
}


def check_label(label: Any) -> str | None:
    """``None`` for a canonical preference label, else the one-line problem."""
    if not isinstance(label, dict) or label.get("kind") not in KINDS:
        shown = json.dumps(label, ensure_ascii=False, default=str)[:80]
        return f"not a preference label (expected {{'kind': one of {', '.join(KINDS)}, ...}}), got {shown}"
    kind = label["kind"]
    if kind == "best_of_n" and not (isinstance(label.get("num_correct"), int) and label["num_correct"] >= 1):
        return "best_of_n label needs num_correct >= 1"
    ties = label.get("ties")
    if ties is not None and not (isinstance(ties, dict) and ties.get("group") in ("ref", "tied") and isinstance(ties.get("prompt"), int)):
        return "a Ties label needs ties = {'group': 'ref' | 'tied', 'prompt': N}"
    if kind == "ranked" and not (isinstance(label.get("ranks"), list) and len(label["ranks"]) >= 2):
        return "ranked label needs a list of at least two ranks"
    if kind == "scored" and not isinstance(label.get("score"), (int, float)):
        return "scored label needs a numeric score"
    return None


def side_text(prompt: Messages | str, response: Messages | str) -> str:
    """A readable rendering of one side, for reports (not what the model sees)."""
    if isinstance(prompt, str):
        return prompt + (response if isinstance(response, str) else "")
    turns = list(prompt) + (list(response) if isinstance(response, list) else [{"role": "assistant", "content": response}])
    return "\n".join(f"[{m.get('role')}] {m.get('content') if isinstance(m.get('content'), str) else json.dumps(m.get('content'), ensure_ascii=False)}" for m in turns)
