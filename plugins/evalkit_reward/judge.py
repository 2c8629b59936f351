"""A generating model as a pairwise judge (``head=judge``), with position swapping.

Every preference pair becomes two judge requests: the conversation with the chosen response as
*A* and the rejected one as *B*, then the same with the two swapped. A verdict is read from each
answer (``[[A]]`` / ``[[B]]``, MT-Bench's convention, or an answer that is just the letter).
Only a preference that survives the swap counts: both answers prefer the chosen response ->
``{"chosen": 1, "rejected": 0}``; both prefer the rejected one -> ``{0, 1}``; anything else
(the verdict follows the position, or an answer without a verdict) is a tie ``{0.5, 0.5}``,
which the ``pairwise`` metric counts in ``ties`` (or as ½ with ``ties: half``). The prediction
keeps ``verdicts`` (the two letters, ``null`` when unreadable), ``consistent`` and the judge's
texts.

The head only needs a backend's ``generate(requests, on_result)``: the pipeline hands
``wants = "generations"`` heads to :meth:`JudgeHead.score_generations`, and
:meth:`JudgeHead.judge` runs it over any backend object directly (the API backend against an
OpenAI-compatible server, vLLM, HF). A failed judge request fails its sample (retried on resume).
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, Sequence

from evalkit.errors import ConfigError
from evalkit.types import OnResult, Request, Result

DEFAULT_SYSTEM = (
    "You are a careful, impartial judge. Compare two AI assistant responses to the conversation "
    "below and decide which one is better: more helpful, correct, relevant and harmless. Do not let "
    "the order of the responses, their length or the assistants' names influence you."
)
DEFAULT_TEMPLATE = (
    "[Conversation]\n{{ conversation }}\n\n"
    "[Response A]\n{{ response_a }}\n\n"
    "[Response B]\n{{ response_b }}\n\n"
    'Answer with "[[A]]" if response A is better or "[[B]]" if response B is better.'
)
DEFAULT_VERDICT = r"\[\[\s*([AB])\s*\]\]"
_FENCE = re.compile(r"^```[\w-]*\s*|\s*```$")
_BARE = re.compile(r"^\W*(?:response\s+)?([AB])\W*$", re.IGNORECASE)


def _content(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else message
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def transcript(prompt: Any) -> str:
    """The conversation before the responses as plain text, one ``[role] content`` per turn."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"[{m.get('role', 'user')}] {_content(m)}" for m in prompt)


def response_text(response: Any) -> str:
    if isinstance(response, str):
        return response
    return "\n".join(_content(m) for m in response)


class JudgeHead:
    """A pairwise judge over a generating backend (``head=judge``; see the module docstring).

    Args (``None``: the built-in default):
        system: the judge's system message (empty: none).
        template: Jinja2 template of the user message; variables ``conversation`` (the
            transcript), ``question`` (the last user turn), ``response_a``, ``response_b``.
        verdict_pattern: a regular expression whose first group is ``A`` or ``B``; its last
            match in the answer is the verdict (an answer that is only the letter also counts).
    """

    mode = "score"
    wants = "generations"

    def __init__(self, system: str | None = None, template: str | None = None, verdict_pattern: str | None = None) -> None:
        import jinja2

        system = DEFAULT_SYSTEM if system is None else system
        template = DEFAULT_TEMPLATE if template is None else template
        verdict_pattern = DEFAULT_VERDICT if verdict_pattern is None else verdict_pattern
        try:
            self._template = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True).from_string(template)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"the judge template does not parse: {exc.message} (line {exc.lineno})", where="head.template") from None
        try:
            self.verdict = re.compile(verdict_pattern, re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(f"verdict_pattern is not a regular expression: {exc}", where="head.verdict_pattern") from None
        if self.verdict.groups < 1:
            raise ConfigError("verdict_pattern needs one group that captures A or B", where="head.verdict_pattern", fix=r"e.g. head.verdict_pattern='\[\[([AB])\]\]'")
        self.system = system

    def label_check(self, vocab_size: int | None) -> Any:
        return lambda value: None

    # -- requests and verdicts ----------------------------------------------------------------
    def messages(self, row: dict[str, Any], first: Any, second: Any) -> list[dict[str, str]]:
        prompt = row["prompt"]
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"] if not isinstance(prompt, str) else []
        question = _content(users[-1]) if users else transcript(prompt)
        user = self._template.render(conversation=transcript(prompt), question=question, response_a=response_text(first), response_b=response_text(second))
        return ([{"role": "system", "content": self.system}] if self.system else []) + [{"role": "user", "content": user}]

    def parse(self, text: str | None) -> str | None:
        """``"A"``, ``"B"`` or ``None`` (no verdict in the answer)."""
        if not text:
            return None
        found = [m.group(1) for m in self.verdict.finditer(text) if m.group(1)]
        if found:
            return found[-1].upper()
        bare = _BARE.match(_FENCE.sub("", text.strip()))
        return bare.group(1).upper() if bare else None

    @staticmethod
    def combine(first: str | None, second: str | None) -> dict[str, Any]:
        """Chosen as A then as B: a preference counts only when it survives the swap."""
        prefers_chosen = (first == "A", second == "B")
        prefers_rejected = (first == "B", second == "A")
        if all(prefers_chosen):
            chosen, rejected = 1.0, 0.0
        elif all(prefers_rejected):
            chosen, rejected = 0.0, 1.0
        else:
            chosen = rejected = 0.5
        return {"chosen": chosen, "rejected": rejected, "verdicts": [first, second], "consistent": chosen != rejected}

    # -- running ------------------------------------------------------------------------------
    def judge(self, backend: Any, requests: Sequence[Request], on_result: OnResult) -> None:
        """Judge ``requests`` (canonical preference rows) with ``backend.generate``."""
        self.score_generations(backend.generate, requests, on_result)

    def score_generations(self, generate: Callable[[Sequence[Request], OnResult], None], requests: Sequence[Request], on_result: OnResult) -> None:
        sub: list[Request] = []
        for k, r in enumerate(requests):
            row = r.row if isinstance(r.row, dict) else {}
            responses = row.get("responses")
            if row.get("kind", "pair") != "pair" or not isinstance(responses, list) or len(responses) != 2 or "prompt" not in row:
                on_result(Result(index=r.index, error="head 'judge' compares pairs: the row is not a chosen/rejected pair (data.label_format=preference)"))
                continue
            chosen, rejected = responses
            for order, (a, b) in enumerate(((chosen, rejected), (rejected, chosen))):
                sub.append(Request(index=2 * k + order, id=f"{r.id}#{'ab' if order == 0 else 'ba'}", messages=self.messages(row, a, b), where=r.where))
        halves: dict[int, Result] = {}
        lock = threading.Lock()  # a backend may call back from its own threads

        def collect(result: Result) -> None:
            k = result.index // 2
            with lock:
                halves[result.index] = result
                first, second = halves.get(2 * k), halves.get(2 * k + 1)
                if first is None or second is None:
                    return
                del halves[2 * k], halves[2 * k + 1]
            on_result(self._result(requests[k], first, second))

        if sub:
            generate(sub, collect)

    def _result(self, request: Request, first: Result, second: Result) -> Result:
        failed = first if not first.ok else second if not second.ok else None
        if failed is not None:
            return Result(index=request.index, error=f"judge request failed: {failed.error}")
        texts = [(r.outputs or [None])[0] for r in (first, second)]
        prediction = self.combine(self.parse(texts[0]), self.parse(texts[1]))
        prediction["judgements"] = texts
        usage: dict[str, int] = {}
        for r in (first, second):
            for key, value in (r.usage or {}).items():
                if isinstance(value, int):
                    usage[key] = usage.get(key, 0) + value
        latency = sum(r.latency_s or 0.0 for r in (first, second)) or None
        return Result(index=request.index, prediction=prediction, usage=usage or None, latency_s=latency)
