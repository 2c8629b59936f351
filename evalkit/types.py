"""Plain data types shared by the core and every plugin (no heavy imports here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings shared by every text backend (config group ``generation``).

    ``temperature == 0`` means greedy decoding. ``stop`` strings end generation and are not
    part of the returned text. ``n`` > 1 returns a list of outputs per sample.
    """

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = -1
    n: int = 1
    seed: int | None = 42
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def deterministic(self) -> bool:
        """Outputs are reproducible, so cached responses may be reused on re-runs."""
        return self.greedy or self.seed is not None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        return data


@dataclass
class Sample:
    """One dataset row after loading: ``index`` is its position in the (unsharded) file."""

    index: int
    id: Any
    row: dict[str, Any]
    label: Any
    where: str = ""  # "file:line" (JSONL) or "file[index]" (JSON array), for error messages


@dataclass
class Request:
    """What a backend is asked to do for one sample.

    Text backends use ``messages`` (chat format); scoring backends use ``row`` (e.g.
    ``input_ids`` and ``labels`` for AcceptHead data).
    """

    index: int
    id: Any
    messages: list[dict[str, Any]] | None = None
    row: dict[str, Any] = field(default_factory=dict)
    where: str = ""  # "file:line" of the row, for per-row error messages
    tools: list[dict[str, Any]] | None = None  # OpenAI-format tools to offer (function calling, fc mode)
    tool_choice: Any = None  # "auto" | "required" | "none" | {"type": "function", ...}; None: backend default


def chat_messages(request: Request, backend: str) -> list[dict[str, Any]]:
    """The chat messages a text backend sends for ``request``.

    They come from the configured prompt, or else from a ``messages`` list in the row (data
    that is already in chat format); a text backend with neither cannot work, which is a
    configuration problem, not a per-sample one.
    """
    if request.messages is not None:
        return request.messages
    row_messages = request.row.get("messages") if isinstance(request.row, dict) else None
    if isinstance(row_messages, list):
        return row_messages
    from evalkit.errors import ConfigError

    raise ConfigError(
        f"backend '{backend}' generates from chat messages, but no prompt is configured and the row has no 'messages' list",
        where="prompt",
        fix="choose a prompt (prompt=toolcall or prompt.file=prompt.yaml) or give rows a 'messages' field",
    )


@dataclass
class Result:
    """A backend's answer for one request.

    Exactly one of ``outputs`` / ``prediction`` / ``error`` is the point of interest:
    text backends fill ``outputs`` (n texts), scoring backends fill ``prediction``, and a
    sample that failed after all retries has ``error`` (a short reason) instead.
    """

    index: int
    outputs: list[str] | None = None
    prediction: Any = None
    error: str | None = None
    latency_s: float | None = None
    usage: dict[str, int] | None = None
    attempts: int = 1
    cached: bool = False
    tool_calls: list[dict[str, Any]] | None = None  # native calls of outputs[0], OpenAI format
    finish_reason: str | None = None  # of outputs[0]: "stop", "length", "tool_calls", ...
    reasoning: str | None = None  # ``reasoning_content`` of outputs[0], when the server splits it out

    @property
    def ok(self) -> bool:
        return self.error is None

    def message(self) -> dict[str, Any]:
        """The assistant message of the first output, as a parser with ``parse_message`` sees it."""
        return {
            "content": self.outputs[0] if self.outputs else None,
            "tool_calls": self.tool_calls,
            "reasoning_content": self.reasoning,
            "finish_reason": self.finish_reason,
        }


@dataclass
class Parsed:
    """What a parser may return instead of a bare prediction: the prediction plus facts the
    record should keep (``extra`` is merged into the ``predictions.jsonl`` record, e.g.
    ``{"calls_source": "native"}``). ``error`` marks a parse error (scored as ``prediction``)."""

    prediction: Any
    error: str | None = None
    repaired: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


OnResult = Callable[[Result], None]


@runtime_checkable
class Backend(Protocol):
    """A model backend. ``on_result`` is called once per request as it completes (never
    concurrently), so the pipeline can persist each finished sample immediately."""

    def generate(self, requests: Sequence[Request], on_result: OnResult) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ScoringBackend(Protocol):
    """A backend that can run a teacher-forced forward pass for a non-text head."""

    def score(self, requests: Sequence[Request], head: Any, on_result: OnResult) -> None: ...


class Head(Protocol):
    """``mode`` is ``"generate"`` (text out, then a parser) or ``"score"`` (tensors out)."""

    mode: str


@runtime_checkable
class LabelFormat(Protocol):
    """A domain's label format (``data.label_format``), registered with
    ``evalkit_register_label_formats``. Its factory receives the ``data.*`` options the core
    does not own (e.g. ``data.category`` for BFCL, ``data.format`` for preference pairs).

    ``check(label)`` returns ``None`` for a valid label or a one-line problem; the core raises it
    with the row's ``file:line``. Optional methods, used when present:

    * ``read(path) -> Iterable[tuple[str, dict]]``: the rows, for formats whose rows do not come
      from one JSON/JSONL file (``path`` may be ``None``, e.g. BFCL data from an installed package).
    * ``convert(row, where) -> dict``: a row normalised to the domain's canonical shape (raise
      :class:`evalkit.errors.DataError` naming ``where`` for a bad row).
    """

    def check(self, label: Any) -> str | None: ...


@dataclass
class ReportContext:
    """Everything an end-of-run report may draw from; reports only ever write into ``run_dir``.

    ``records`` are the final ``predictions.jsonl`` records (dataset order), ``rows`` the dataset
    rows by index, ``config`` the resolved run config as plain data, ``options`` the ``report.*``
    settings.
    """

    run_dir: Any  # pathlib.Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    records: list[dict[str, Any]]
    rows: dict[int, dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Report(Protocol):
    """A domain's end-of-run report (``evalkit_register_reports``).

    ``applies(ctx)`` says whether this run is one the report is for (e.g. tool-call metrics are
    present); ``write(ctx)`` writes its files into ``ctx.run_dir`` and returns their paths.
    Optional: ``html_sections(ctx) -> list[dict]`` contributes sections to ``report.html``, each
    ``{"title": str, "note": str?, "charts": [chart spec]?, "tables": [{"title"?, "columns",
    "rows"}]?}`` of plain JSON data; a chart spec is ``{"type": "bar" | "histogram" | "scatter"
    | "line" | "heatmap" | "interval", "title", ...}`` (keys per kind in :mod:`evalkit.html.svg`,
    drawn as inline SVG; full format in :mod:`evalkit.html.context`).
    """

    def applies(self, ctx: ReportContext) -> bool: ...

    def write(self, ctx: ReportContext) -> list[Any]: ...


@runtime_checkable
class SampleScoring(Protocol):
    """A metric that also scores each sample. ``sample_scores(preds, targets)`` returns one
    JSON-able value per sample (``True``/``False`` for right/wrong, or a dict such as
    ``{"accuracy": 0.5, "mae": 0.1}``); the pipeline writes them to each record as
    ``scores[<metric key>]``, and flips, bad cases and comparisons read them."""

    def sample_scores(self, preds: Sequence[Any], targets: Sequence[Any]) -> list[Any]: ...


@runtime_checkable
class ScoringRuntime(Protocol):
    """What a backend that loads weights hands a sequence-level score head (``wants =
    "sequences"``): the head tokenizes, batches and runs the models itself.

    ``load_model(kind, path=None)`` returns a model in eval mode on ``device`` — ``kind`` is
    ``"causal_lm"`` (logits), ``"base"`` (final hidden states) or ``"sequence_classification"``;
    ``path`` loads another checkpoint of the same family (a DPO reference model), with the
    backend's dtype and device. ``render(messages, add_generation_prompt)`` applies the chat
    template as the backend is configured to (its template override and template kwargs) and
    returns text; tokenize it without adding special tokens (the template holds them).
    ``checkpoint`` reads stored tensors without loading a model (``path``, ``config()``,
    ``load_tensors(names)``, ``tensor_shape(name)``). ``batch_size`` and ``max_length`` are the
    backend's settings.
    """

    tokenizer: Any
    device: Any
    batch_size: int
    max_length: int | None
    checkpoint: Any

    def load_model(self, kind: str, path: str | None = None) -> Any: ...

    def render(self, messages: list[dict[str, Any]], *, add_generation_prompt: bool = False) -> str: ...


@runtime_checkable
class ScoreHead(Protocol):
    """A head with ``mode = "score"``: turns a teacher-forced forward pass into predictions.

    Two forms, told apart by ``wants``:

    * token level — ``wants`` is ``"logits"`` (the causal LM's) or ``"hidden_states"`` (the base
      model's final hidden states, after the final norm). Rows carry token ids (``input_key``)
      and labels (``labels_key``); the backend checks every label with
      ``label_check(vocab_size)`` (a ``(value) -> problem | None`` callable) before any forward
      pass, calls ``bind(checkpoint, hidden_size=, device=)`` once so the head loads its own
      weights, batches the rows, calls ``head(values, attention_mask) -> [B, T]`` and hands each
      sample's own positions to ``to_prediction(values)``; the result is one value per token.
    * sequence level — ``wants = "sequences"``: the backend calls
      ``score_sequences(runtime, requests, on_result)`` once with a :class:`ScoringRuntime`;
      the head renders and tokenizes each request's texts, scores them in batches and calls
      ``on_result`` once per request (a :class:`Result` whose ``prediction`` is the score, or
      whose ``error`` says why this sample could not be scored). Reward models and DPO
      implicit rewards are heads of this form (``evalkit_reward``). A runtime may also offer
      ``pooled_scores(ids)`` and ``response_logprobs(ids, starts, path, average)`` (vLLM's
      pooling runner and ``prompt_logprobs``), which heads use when present.
    * generation — ``wants = "generations"``: the pipeline calls
      ``score_generations(generate, requests, on_result)`` with the backend's ``generate``, so
      any text backend serves it (API, vLLM, HF); a pairwise judge asks each pair in both
      orders this way.
    """

    mode: str
    wants: str
