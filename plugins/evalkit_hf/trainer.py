"""Evaluation inside training: HF ``Trainer`` hooks, and the generation evaluator the
Lightning callback shares.

Two ways users evaluate while they fine-tune (seeds 000-002), each with its pitfall:

* **Metrics over the eval forward pass** — AcceptHead scores (sigmoid of ``[B, T]`` logits)
  or response-only next-token accuracy. :func:`build_preprocess_logits_for_metrics` shrinks the
  logits per batch (so the Trainer never concatenates ``[N, T, V]`` tensors) and
  :func:`build_compute_metrics` feeds evalkit's torchmetrics metrics. The same object works with
  ``batch_eval_metrics=False`` (one call over all predictions) and ``True`` (one call per batch;
  results when ``compute_result`` is true): the metrics' running sums are the accumulator, so
  memory stays flat either way.
* **Metrics over generations** — tool-call F1 of ``generate`` outputs on a held-out set.
  Training tokenizers pad on the right; batched ``generate`` on the right silently corrupts the
  outputs (the model continues after pad tokens) and F1 drops. :class:`GenerationEval`
  left-pads inside a scoped block that restores the tokenizer's side, switches the model to
  eval mode under ``no_grad`` and restores every submodule's mode afterwards (also on errors),
  shards the eval set over ranks (``rows[rank::world_size]``), syncs the metrics the
  torchmetrics way (so DDP numbers equal one process) and gathers the per-sample records to
  rank zero in dataset order. :class:`EvalKitGenerationCallback` runs it after each Trainer
  evaluation; ``evalkit_lightning.EvalKitCallback`` runs it inside Lightning.

Nothing here imports transformers except the ``TrainerCallback`` base class (when installed),
so Lightning users without the HF Trainer stack can still use the shared pieces.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, Mapping, Sequence

from evalkit.config import to_container, validate_options
from evalkit.errors import ConfigError, DataError
from evalkit.prompts import PromptBuilder
from evalkit.types import GenerationConfig, Sample

if TYPE_CHECKING:  # pragma: no cover
    from torchmetrics import Metric

    from evalkit.registry import Registry

try:  # the base class only; everything else in this module works without transformers
    from transformers import TrainerCallback as _TrainerCallbackBase
except ImportError:  # pragma: no cover - exercised only without transformers
    _TrainerCallbackBase = object  # type: ignore[assignment,misc]

log = logging.getLogger("evalkit.training")

PREDICTIONS_FILE = "predictions.jsonl"
METRICS_FILE = "metrics.json"
TRANSFORMS = ("none", "sigmoid", "argmax", "softmax")
# Result subtrees with open-ended keys (one entry per tool name): kept in metrics.json, not
# logged as scalars, so the set of logged names stays stable from one evaluation to the next.
DEFAULT_SKIP_FIELDS = ("per_tool",)


# ----------------------------------------------------------------------------- metrics
def _is_metric(obj: Any) -> bool:
    return all(callable(getattr(obj, name, None)) for name in ("update", "compute", "reset"))


def _registry(registry: "Registry | None") -> "Registry":
    if registry is not None:
        return registry
    from evalkit.registry import default_registry

    return default_registry()


def build_metrics(metrics: Mapping[str, Any] | None, *, path: str = "metrics", registry: "Registry | None" = None) -> dict[str, "Metric"]:
    """``{key: node or Metric}`` -> ``{key: Metric}``.

    A node is ``{name: <registered metric>, **options}`` (or just the name), built through the
    registry exactly as ``evalkit`` runs build them — so an unknown name is a ``PluginError``
    listing the available metrics and a bad option names its key path. Objects with
    ``update``/``compute``/``reset`` (any torchmetrics ``Metric``) are used as given.
    """
    from evalkit.pipeline import build_plugin

    data = to_container(metrics) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping of metric key -> metric node, got {type(data).__name__}", where=path)
    out: dict[str, Any] = {}
    for key, node in data.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ConfigError(f"metric key {key!r} must be a non-empty string without '/'", where=f"{path}.{key}")
        if node is None:
            continue
        out[key] = node if _is_metric(node) else build_plugin(_registry(registry), "metric", node, path=f"{path}.{key}")
    return out


def flatten_results(
    results: Mapping[str, Any],
    *,
    sep: str = "/",
    prefix: str = "",
    skip_fields: Sequence[str] = DEFAULT_SKIP_FIELDS,
) -> dict[str, float]:
    """``{"accept_head": {"accuracy": 0.8, ...}}`` -> ``{"<prefix>accept_head<sep>accuracy": 0.8}``.

    Nested dicts join with ``sep`` (``tool_f1/micro/f1``); tensors and numbers become floats
    (NaN stays NaN); strings, lists and the ``skip_fields`` subtrees are left out.
    """
    out: dict[str, float] = {}

    def walk(name: str, value: Any) -> None:
        if hasattr(value, "tolist") and callable(value.tolist):
            value = value.tolist()
        if isinstance(value, Mapping):
            for k, v in value.items():
                if str(k) in skip_fields:
                    continue
                walk(f"{name}{sep}{k}" if name else str(k), v)
        elif isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, (int, float)):
            out[name] = float(value)
        elif value is None:
            out[name] = math.nan

    for key, value in results.items():
        walk(f"{prefix}{key}", value)
    return out


def _disable_sync(metric: Any) -> None:
    """The HF Trainer gathers predictions to every rank before ``compute_metrics``; syncing the
    metric states again would count each sample ``world_size`` times."""
    metric.sync_on_compute = False
    if hasattr(metric, "_to_sync"):
        metric._to_sync = False


# ----------------------------------------------------------------------------- logits -> predictions
def _main_logits(logits: Any, want_dim: int | None = None) -> Any:
    """Seed 000: models (MoE, value heads) may return a tuple; the main logits come first —
    or, for LM logits, the first element with ``want_dim`` dimensions (LLaMA-Factory)."""
    if isinstance(logits, (list, tuple)):
        if want_dim is not None:
            for item in logits:
                if hasattr(item, "dim") and item.dim() == want_dim:
                    return item
        return logits[0]
    return logits


def transform_predictions(preds: Any, transform: str | Callable[[Any], Any] | None) -> Any:
    """Apply a named transform to model outputs.

    ``sigmoid``: AcceptHead logits ``[B, T]`` (or ``[B, T, 1]``) -> scores in 0..1.
    ``argmax``: LM logits ``[B, T, V]`` -> token ids ``[B, T]`` (the causal shift stays in
    the metric, ``token_accuracy``'s ``shift``). ``softmax``: probabilities over the last dim.
    ``none``/``None``: unchanged. A callable is applied as is.
    """
    if transform is None or transform == "none":
        return preds
    if callable(transform):
        return transform(preds)
    import torch

    if transform == "sigmoid":
        x = torch.as_tensor(_main_logits(preds))
        if x.dim() == 3 and x.shape[-1] == 1:
            x = x.squeeze(-1)
        return torch.sigmoid(x.float())
    if transform == "argmax":
        x = torch.as_tensor(_main_logits(preds, want_dim=3))
        return x.argmax(dim=-1)
    if transform == "softmax":
        x = torch.as_tensor(_main_logits(preds))
        return torch.softmax(x.float(), dim=-1)
    raise ConfigError(f"unknown transform {transform!r}; available: {', '.join(TRANSFORMS)}", where="transform")


def accept_head_scores(logits: Any, labels: Any = None) -> Any:
    """``preprocess_logits_for_metrics`` for AcceptHead models: sigmoid of the ``[B, T]`` logits."""
    return transform_predictions(logits, "sigmoid")


def lm_token_ids(logits: Any, labels: Any = None) -> Any:
    """``preprocess_logits_for_metrics`` for causal LMs: argmax token ids ``[B, T]`` (unshifted;
    ``token_accuracy`` compares prediction ``t`` with label ``t + 1``)."""
    x = _main_logits(logits, want_dim=3)
    if getattr(x, "dim", lambda: 3)() != 3:
        raise ValueError(f"expected LM logits [batch, seq, vocab], got shape {tuple(x.shape)}")
    return x.argmax(dim=-1)


_PREPROCESSORS: dict[str, Callable[[Any, Any], Any]] = {"accept_head": accept_head_scores, "lm": lm_token_ids}


def build_preprocess_logits_for_metrics(kind: Literal["accept_head", "lm"] = "accept_head") -> Callable[[Any, Any], Any]:
    """The Trainer's ``preprocess_logits_for_metrics`` for an AcceptHead or a causal LM."""
    try:
        return _PREPROCESSORS[kind]
    except KeyError:
        raise ConfigError(f"unknown kind {kind!r}; available: {', '.join(_PREPROCESSORS)}", where="kind") from None


class EvalKitComputeMetrics:
    """``compute_metrics`` for ``transformers.Trainer`` backed by evalkit metrics.

    Called as ``fn(eval_pred)`` once over all predictions (``batch_eval_metrics=False``) or as
    ``fn(eval_pred, compute_result=...)`` per batch (``batch_eval_metrics=True``): every call
    updates the metrics; when ``compute_result`` is true it returns the flat results and resets.
    Keys are ``<metric key>_<field>`` (``accept_head_accuracy``); the Trainer prefixes ``eval_``.
    """

    def __init__(
        self,
        metrics: Mapping[str, Any],
        *,
        sep: str = "_",
        include_key: bool = True,
        skip_fields: Sequence[str] = DEFAULT_SKIP_FIELDS,
        sync_on_compute: bool = False,
        registry: "Registry | None" = None,
    ) -> None:
        self.metrics = build_metrics(metrics, path="metrics", registry=registry)
        if not self.metrics:
            raise ConfigError("no metrics given", where="metrics", fix="pass e.g. {'accept_head': {'name': 'tolerance_accuracy'}}")
        if not sync_on_compute:
            for metric in self.metrics.values():
                _disable_sync(metric)
        self.sep = sep
        self.include_key = include_key
        self.skip_fields = tuple(skip_fields)

    def __call__(self, eval_pred: Any, compute_result: bool = True) -> dict[str, float] | None:
        preds, labels = _unpack_eval_prediction(eval_pred)
        for metric in self.metrics.values():
            metric.update(_detached(preds), _detached(labels))
        if not compute_result:
            return None
        return self.compute()

    def compute(self) -> dict[str, float]:
        results = {key: metric.compute() for key, metric in self.metrics.items()}
        for metric in self.metrics.values():
            metric.reset()
        if self.include_key:
            return flatten_results(results, sep=self.sep, skip_fields=self.skip_fields)
        flat: dict[str, float] = {}
        for key, value in results.items():
            for name, number in flatten_results({"": value}, sep=self.sep, skip_fields=self.skip_fields).items():
                name = name.lstrip(self.sep) or key
                if name in flat:
                    raise ConfigError(f"field '{name}' comes from two metrics; keep include_key=True", where=f"metrics.{key}")
                flat[name] = number
        return flat


def _unpack_eval_prediction(eval_pred: Any) -> tuple[Any, Any]:
    if isinstance(eval_pred, tuple) and len(eval_pred) == 2:
        preds, labels = eval_pred
    else:
        preds, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(preds, (list, tuple)):
        preds = preds[0]
    if isinstance(labels, (list, tuple)):
        labels = labels[0]
    if preds is None or labels is None:
        raise ValueError("compute_metrics got no predictions or no labels; does the eval dataset have a 'labels' column?")
    return preds, labels


def _detached(x: Any) -> Any:
    return x.detach() if hasattr(x, "detach") else x


def build_compute_metrics(
    metrics: Mapping[str, Any],
    *,
    sep: str = "_",
    include_key: bool = True,
    skip_fields: Sequence[str] = DEFAULT_SKIP_FIELDS,
    sync_on_compute: bool = False,
) -> EvalKitComputeMetrics:
    """``compute_metrics`` for ``transformers.Trainer`` (and LLaMA-Factory's ``metric_module``).

    ``metrics`` maps a key to an evalkit metric node or a metric object, e.g.
    ``{"accept_head": {"name": "tolerance_accuracy", "tolerance": 0.1}}`` ->
    ``eval_accept_head_accuracy``, ``eval_accept_head_mae``, ... Works with and without
    ``batch_eval_metrics``. ``include_key=False`` drops the key (``eval_accuracy``, seed 000's
    names) when the fields of all metrics are distinct. ``sync_on_compute`` stays ``False``
    because the Trainer already gathers predictions from every process.
    """
    return EvalKitComputeMetrics(metrics, sep=sep, include_key=include_key, skip_fields=skip_fields, sync_on_compute=sync_on_compute)


# ----------------------------------------------------------------------------- scoped model state
@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[Any]:
    """Eval mode for a block, then every submodule's own previous mode back (a frozen
    submodule kept in eval mode during training stays so)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def _model_device(model: Any) -> Any:
    device = getattr(model, "device", None)
    if device is not None:
        return device
    return next(model.parameters()).device


# ----------------------------------------------------------------------------- distributed helpers
def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_objects(obj: Any) -> list[Any]:
    """``all_gather_object`` when a process group is up (every rank gets every rank's object),
    else ``[obj]``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
    return [obj]


# ----------------------------------------------------------------------------- generation evaluation
@dataclass
class GenerationEvalResult:
    """One generation evaluation. ``records`` are *all* samples (every rank's), in dataset order."""

    results: dict[str, Any]
    records: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=dict)

    def flat(self, *, prefix: str = "", sep: str = "/", skip_fields: Sequence[str] = DEFAULT_SKIP_FIELDS, counts_key: str = "generation") -> dict[str, float]:
        """Scalar results (``<prefix><key><sep><field>``) plus ``<prefix>generation<sep>num_*`` counts."""
        flat = flatten_results(self.results, sep=sep, prefix=prefix, skip_fields=skip_fields)
        for name, value in self.counts.items():
            flat[f"{prefix}{counts_key}{sep}{name}"] = float(value)
        return flat

    def write(self, directory: str | Path, *, step: int | None = None) -> Path:
        """``predictions.jsonl`` (dataset order) and ``metrics.json`` into ``directory``."""
        from evalkit.summary import to_jsonable

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / (PREDICTIONS_FILE + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for record in self.records:
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, out / PREDICTIONS_FILE)
        payload: dict[str, Any] = {**to_jsonable(self.results), **self.counts}
        if step is not None:
            payload["step"] = step
        (out / METRICS_FILE).write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return out


class GenerationEval:
    """Generate on an eval set with an HF model, parse, and score — correctly padded.

    Args:
        data: a JSON/JSONL file (evalkit's data format) or a list of row dicts.
        prompt: ``{system, user, file}`` (evalkit prompt templates rendered with the row's
            fields) or a :class:`evalkit.prompts.PromptBuilder`; ``None`` uses each row's
            ``messages`` (chat format) as is.
        parser: a registered parser (``"json_label"`` or ``{name: json_label, repair: true}``),
            a callable ``text -> prediction`` (``ValueError`` = unparseable), or ``None`` for
            the raw text.
        metrics: ``{key: metric node or Metric}``, updated with ``(predictions, labels)``.
        generation: evalkit generation settings (``max_new_tokens``, ``temperature`` (0 =
            greedy), ``top_p``, ``top_k``, ``seed``, ``stop``); ``n`` must be 1.
        batch_size: prompts per ``generate`` call (length-sorted, left-padded batches).
        id_key, label_key, label_format, limit: as evalkit's ``data`` node.
        messages_key: the row field holding chat messages when ``prompt`` is ``None``.
        chat_template: a Jinja template replacing the tokenizer's; ``chat_template_kwargs``
            (e.g. ``{enable_thinking: false}``) are passed to ``apply_chat_template``.
        max_prompt_length: longer prompts are recorded as per-sample errors instead of run.
    """

    def __init__(
        self,
        data: str | list[dict[str, Any]] | None = None,
        prompt: dict[str, Any] | PromptBuilder | None = None,
        parser: str | dict[str, Any] | Callable[[str], Any] | None = "json_label",
        metrics: dict[str, Any] | None = None,
        generation: dict[str, Any] | GenerationConfig | None = None,
        batch_size: int = 8,
        id_key: str = "id",
        label_key: str = "label",
        label_format: str = "any",
        limit: int | None = None,
        messages_key: str = "messages",
        chat_template: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        max_prompt_length: int | None = None,
    ) -> None:
        if data is None:
            raise ConfigError("no eval data for generation", where="generation_eval.data", fix="set it to a JSONL file or a list of rows")
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1", where="generation_eval.batch_size")
        self.registry = _registry(None)
        self.data = to_container(data)
        self.id_key, self.label_key, self.label_format, self.limit = id_key, label_key, label_format, limit
        self.messages_key = messages_key
        self.prompt = _make_prompt(prompt)
        self.parse = self._make_parser(parser)
        self.metrics = build_metrics(metrics, path="generation_eval.metrics", registry=self.registry)
        self.generation = _make_generation(generation)
        self.batch_size = batch_size
        self.chat_template = chat_template
        self.chat_template_kwargs = dict(to_container(chat_template_kwargs) or {})
        self.max_prompt_length = max_prompt_length
        self._samples: list[Sample] | None = None

    @classmethod
    def from_config(cls, node: Any, *, path: str = "generation_eval") -> "GenerationEval":
        """Build from a config mapping, validating keys and types against ``__init__``."""
        if isinstance(node, GenerationEval):
            return node
        options = validate_options(cls, to_container(node) or {}, path=path, plugin="generation_eval")
        return cls(**options)

    # -- inputs --------------------------------------------------------------------------
    def _make_parser(self, parser: Any) -> Callable[[str], tuple[Any, str | None]]:
        if parser is None or parser == "none":
            return lambda text: (text, None)
        if callable(parser) and not isinstance(parser, (str, Mapping)):
            fn = parser
            empty = getattr(fn, "empty", None)
        else:
            from evalkit.pipeline import build_plugin

            node = {"name": parser} if isinstance(parser, str) else parser
            fn = build_plugin(self.registry, "parser", node, path="generation_eval.parser")
            empty = getattr(fn, "empty", None)

        def parse(text: str) -> tuple[Any, str | None]:
            try:
                return fn(text), None
            except ValueError as exc:
                return (empty() if callable(empty) else empty), (str(exc)[:200] or "unparseable")

        parse.empty = empty  # type: ignore[attr-defined]
        return parse

    @property
    def samples(self) -> list[Sample]:
        """The eval rows (loaded once; every rank loads the same list and takes its shard)."""
        if self._samples is None:
            self._samples = self._load()
        return self._samples

    def _load(self) -> list[Sample]:
        if isinstance(self.data, (str, Path)):
            from evalkit.data import load_samples
            from evalkit.paths import resolve_path

            return list(
                load_samples(
                    resolve_path(str(self.data)),
                    id_key=self.id_key,
                    label_key=self.label_key,
                    label_format=self.label_format,
                    limit=self.limit,
                )
            )
        if not isinstance(self.data, list):
            raise ConfigError(f"data must be a file path or a list of rows, got {type(self.data).__name__}", where="generation_eval.data")
        rows = self.data[: self.limit] if self.limit is not None else self.data
        samples = []
        for index, row in enumerate(rows):
            where = f"generation_eval.data[{index}]"
            if not isinstance(row, Mapping):
                raise DataError(f"each row must be a mapping, got {type(row).__name__}", where=where)
            if self.label_key and self.label_key not in row:
                raise DataError(f"missing label field '{self.label_key}'", where=where, fix="add it, or set label_key")
            label = row.get(self.label_key) if self.label_key else None
            samples.append(Sample(index=index, id=row.get(self.id_key, index), row=dict(row), label=label, where=where))
        if not samples:
            raise DataError("the eval set has no rows", where="generation_eval.data")
        return samples

    def messages(self, sample: Sample) -> list[dict[str, Any]]:
        if self.prompt is not None:
            return self.prompt.render(sample)
        messages = sample.row.get(self.messages_key)
        if not isinstance(messages, list):
            raise DataError(
                f"no prompt configured and the row has no '{self.messages_key}' list",
                where=sample.where,
                fix="set generation_eval.prompt (system/user templates or file) or give rows chat messages",
            )
        return messages

    def render(self, tokenizer: Any, messages: list[dict[str, Any]]) -> str:
        template = self.chat_template or getattr(tokenizer, "chat_template", None)
        if not template:
            raise ConfigError("the tokenizer has no chat template", where="generation_eval.chat_template", fix="set generation_eval.chat_template")
        return tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=True, **self.chat_template_kwargs
        )

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        model: Any,
        tokenizer: Any,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        gather: Callable[[Any], list[Any]] | None = None,
    ) -> GenerationEvalResult:
        """Evaluate this rank's shard; every rank must call it (metrics sync, records gather).

        Returns the synced metric results and all ranks' records in dataset order (on every
        rank, so logged values and counts agree across processes).
        """
        if rank is None or world_size is None:
            rank, world_size = _dist_info()
        gather = gather or gather_objects
        shard = self.samples[rank::world_size]
        device = _model_device(model)
        for metric in self.metrics.values():
            metric.to(device)
            metric.reset()
        records = self._generate(model, tokenizer, shard, device) if shard else []
        if self.metrics and records:
            preds = [r["prediction"] for r in records]
            labels = [r["label"] for r in records]
            for metric in self.metrics.values():
                metric.update(preds, labels)
        results: dict[str, Any] = {}
        with warnings.catch_warnings():
            # a rank whose shard is empty computes (and syncs) without an update of its own
            warnings.filterwarnings("ignore", message=".*compute.*before the ``update``.*")
            for key, metric in self.metrics.items():
                results[key] = metric.compute()
                metric.reset()
        all_records = sorted((r for part in gather(records) for r in part), key=lambda r: r["index"])
        counts = {
            "num_samples": len(all_records),
            "num_parse_errors": sum(1 for r in all_records if r.get("error_type") == "parse"),
            "num_failed": sum(1 for r in all_records if r.get("error_type") == "request"),
        }
        return GenerationEvalResult(results=results, records=all_records, counts=counts)

    def _generate(self, model: Any, tokenizer: Any, shard: list[Sample], device: Any) -> list[dict[str, Any]]:
        import torch

        from evalkit_hf.generation import batches_by_length

        gen = self.generation
        prepared = []
        records: dict[int, dict[str, Any]] = {}
        for sample in shard:
            messages = self.messages(sample)
            text = self.render(tokenizer, messages)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            record = {"index": sample.index, "id": sample.id, "messages": messages, "output": None, "prediction": None, "label": sample.label, "error": None}
            records[sample.index] = record
            if self.max_prompt_length is not None and len(ids) > self.max_prompt_length:
                record["error"] = f"prompt too long: {len(ids)} tokens > max_prompt_length={self.max_prompt_length}"
                record["error_type"] = "request"
                empty = getattr(self.parse, "empty", None)
                record["prediction"] = empty() if callable(empty) else empty
                continue
            prepared.append((sample, ids))
        batches = batches_by_length(prepared, [len(ids) for _, ids in prepared], self.batch_size)
        # Sampling must not advance the training run's random streams: fork them for the block.
        on_accelerator = getattr(device, "type", "cpu") != "cpu"
        rng = torch.random.fork_rng(devices=[device] if on_accelerator else [], device_type=device.type if on_accelerator else None)
        with eval_mode(model), torch.no_grad(), rng:
            if not gen.greedy and gen.seed is not None:
                torch.manual_seed(gen.seed)
            for batch in batches:
                texts = self._generate_batch(model, tokenizer, [ids for _, ids in batch], device)
                for (sample, _), text in zip(batch, texts):
                    prediction, error = self.parse(text)
                    record = records[sample.index]
                    record["output"], record["prediction"], record["error"] = text, prediction, error
                    if error is not None:
                        record["error_type"] = "parse"
        return [records[s.index] for s in shard]

    def _generate_batch(self, model: Any, tokenizer: Any, token_ids: list[list[int]], device: Any) -> list[str]:
        from evalkit_hf.generation import cut_at_eos, hf_generation_config, trim_at_stop
        from evalkit_hf.padding import left_padding

        gen = self.generation
        eos = _eos_token_ids(model, tokenizer)
        with left_padding(tokenizer):
            enc = tokenizer.pad({"input_ids": token_ids}, padding=True, return_tensors="pt")
            cfg = hf_generation_config(model.generation_config, gen, eos_token_ids=eos, pad_token_id=tokenizer.pad_token_id, stop=gen.stop)
            cfg.use_cache = True  # training configs often turn the KV cache off (gradient checkpointing)
            extra = {"tokenizer": tokenizer} if gen.stop else {}
            out = model.generate(
                input_ids=enc["input_ids"].to(device),
                attention_mask=enc["attention_mask"].to(device),
                generation_config=cfg,
                **extra,
            )
        width = enc["input_ids"].shape[1]
        texts = []
        for row in out[:, width:].tolist():
            text = tokenizer.decode(cut_at_eos(row, eos), skip_special_tokens=True)
            texts.append(trim_at_stop(text, gen.stop))
        return texts


def _eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _make_prompt(prompt: Any) -> Any:
    if prompt is None or isinstance(prompt, PromptBuilder):
        return prompt
    data = to_container(prompt)
    if not isinstance(data, Mapping):
        raise ConfigError(f"prompt must be a mapping with system/user/file, got {type(data).__name__}", where="generation_eval.prompt")
    unknown = set(data) - {"system", "user", "file"}
    if unknown:
        raise ConfigError(f"unknown option '{sorted(unknown)[0]}' for prompt; valid options: file, system, user", where=f"generation_eval.prompt.{sorted(unknown)[0]}")
    kwargs = {k: data[k] for k in ("system", "user") if k in data}
    file = data.get("file")
    if file:
        from evalkit.paths import resolve_path

        file = resolve_path(str(file))
    return PromptBuilder.from_config(file=file, **kwargs)


def _make_generation(generation: Any) -> GenerationConfig:
    if isinstance(generation, GenerationConfig):
        gen = generation
    else:
        from evalkit.pipeline import generation_from_config

        gen = generation_from_config(generation or {})
    if gen.n != 1:
        raise ConfigError("generation.n must be 1 for evaluation during training", where="generation_eval.generation.n")
    return gen


# ----------------------------------------------------------------------------- HF TrainerCallback
class EvalKitGenerationCallback(_TrainerCallbackBase):  # type: ignore[misc,valid-type]
    """Generation evaluation after every ``Trainer.evaluate`` (``eval_strategy`` steps/epoch).

    Runs :class:`GenerationEval` with the Trainer's model and tokenizer (``processing_class``,
    or ``tokenizer=``), left-padded whatever the tokenizer's training side, and

    * adds ``eval_<key>_<field>`` (``eval_tool_f1_micro_f1``) to the evaluation's metrics dict,
      so ``metric_for_best_model`` and ``evaluate()``'s return value see them;
    * logs them through ``trainer.log`` when the callback knows the trainer (``trainer=`` or
      :meth:`bind`), so TensorBoard / W&B and ``log_history`` get them (otherwise they are
      appended to ``state.log_history`` only);
    * on the main process writes ``<output_dir>/step_<N>/predictions.jsonl`` and
      ``metrics.json`` (``output_dir`` defaults to ``<args.output_dir>/evalkit``).

    ``generation_eval`` is a :class:`GenerationEval` or its config mapping.
    """

    def __init__(
        self,
        generation_eval: dict[str, Any] | GenerationEval | None = None,
        tokenizer: Any = None,
        output_dir: str | None = None,
        metric_key_prefix: str = "eval",
        skip_fields: Sequence[str] = DEFAULT_SKIP_FIELDS,
        trainer: Any = None,
        **generation_eval_options: Any,
    ) -> None:
        if _TrainerCallbackBase is object:
            from evalkit.errors import missing_dependency

            raise missing_dependency("transformers", "hf")
        if generation_eval is None:
            generation_eval = generation_eval_options
        elif generation_eval_options:
            raise ConfigError("give generation_eval or its options, not both", where=next(iter(generation_eval_options)))
        self.evaluator = GenerationEval.from_config(generation_eval)
        self.tokenizer = tokenizer
        self.output_dir = output_dir
        self.metric_key_prefix = metric_key_prefix
        self.skip_fields = tuple(skip_fields)
        self.trainer = trainer
        self.history: list[dict[str, Any]] = []
        self.last_result: GenerationEvalResult | None = None

    def bind(self, trainer: Any) -> "EvalKitGenerationCallback":
        """Remember the trainer so results reach its loggers via ``trainer.log``."""
        self.trainer = trainer
        return self

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, model: Any = None, processing_class: Any = None, **kwargs: Any) -> None:
        tokenizer = self.tokenizer or processing_class or kwargs.get("tokenizer")
        if tokenizer is None:
            raise ConfigError("no tokenizer: the Trainer has no processing_class", where="EvalKitGenerationCallback(tokenizer=...)", fix="pass tokenizer= to the callback or processing_class= to the Trainer")
        if model is None:
            raise ConfigError("the Trainer passed no model to the callback", where="EvalKitGenerationCallback")
        step = int(state.global_step)
        result = self.evaluator.run(model, tokenizer, rank=args.process_index, world_size=args.world_size)
        self.last_result = result
        flat = result.flat(prefix=f"{self.metric_key_prefix}_", sep="_", skip_fields=self.skip_fields)
        if metrics is not None:
            metrics.update(flat)
        if state.is_world_process_zero:
            base = Path(self.output_dir) if self.output_dir else Path(args.output_dir) / "evalkit"
            result.write(base / f"step_{step}", step=step)
        self.history.append({"step": step, "metrics": flat})
        if self.trainer is not None:
            self.trainer.log(dict(flat))
        else:
            state.log_history.append({**flat, "step": step})
