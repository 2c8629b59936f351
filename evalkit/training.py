"""Evaluation inside training loops, over any :class:`evalkit.types.Backend`.

The Lightning callback (``evalkit_lightning``) and the HF ``Trainer`` glue (``evalkit_hf.trainer``)
share this module: metric nodes built through the registry, results flattened to loggable
scalars, model outputs turned into metric inputs, records gathered across ranks, and
:class:`GenerationEval`, which renders prompts, generates with a backend, parses and scores
with the same pieces as an offline run (:mod:`evalkit.prompts`, :mod:`evalkit.records`,
:mod:`evalkit.summary`). torch is imported only when a function needs it.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal

from evalkit.config import to_container, validate_options
from evalkit.errors import ConfigError, DataError, EvalKitError
from evalkit.factory import build_plugin, generation_from_config
from evalkit.prompts import PromptBuilder
from evalkit.prompts import prompt_from_config as prompts_from_node
from evalkit.records import REQUEST_ERROR, ParserRunner, build_record, make_parser
from evalkit.pipeline import METRICS_FILE
from evalkit.store import PREDICTIONS_FILE, rewrite_predictions  # noqa: F401 - PREDICTIONS_FILE kept importable here
from evalkit.summary import add_sample_scores, record_counts, scored_records, to_jsonable, update_metrics
from evalkit.types import Backend, GenerationConfig, Request, Result, Sample

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.registry import Registry

TRANSFORMS = ("none", "sigmoid", "argmax", "softmax")
# Result subtrees with open-ended keys (one entry per tool name): kept in metrics.json, not
# logged as scalars, so the set of logged names stays stable from one evaluation to the next.
DEFAULT_SKIP_FIELDS = ("per_tool",)
# Counts logged next to the generation metrics (metrics.json holds all of record_counts).
LOGGED_COUNTS = ("num_samples", "num_scored", "num_parse_errors", "num_failed")


# ----------------------------------------------------------------------------- metrics
def _is_metric(obj: Any) -> bool:
    return all(callable(getattr(obj, name, None)) for name in ("update", "compute", "reset"))


def _registry(registry: "Registry | None") -> "Registry":
    if registry is not None:
        return registry
    from evalkit.registry import default_registry

    return default_registry()


def build_metrics(metrics: Mapping[str, Any] | None, *, path: str = "metrics", registry: "Registry | None" = None) -> dict[str, Any]:
    """``{key: node or Metric}`` -> ``{key: Metric}``, nodes built through the registry as
    ``evalkit`` runs build them; objects with ``update``/``compute``/``reset`` are kept as given."""
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
    """``{"accept_head": {"accuracy": 0.8}}`` -> ``{"<prefix>accept_head<sep>accuracy": 0.8}``.

    Tensors and numbers become floats (``None`` and NaN become NaN); strings, lists and the
    ``skip_fields`` subtrees are left out.
    """
    out: dict[str, float] = {}

    def walk(name: str, value: Any) -> None:
        if hasattr(value, "tolist") and callable(value.tolist):
            value = value.tolist()
        if isinstance(value, Mapping):
            for k, v in value.items():
                if str(k) not in skip_fields:
                    walk(f"{name}{sep}{k}" if name else str(k), v)
        elif isinstance(value, (bool, int, float)):
            out[name] = float(value)
        elif value is None:
            out[name] = math.nan

    for key, value in results.items():
        walk(f"{prefix}{key}", value)
    return out


def disable_sync(metric: Any) -> None:
    """For callers that gather predictions to every rank themselves (the HF ``Trainer``):
    syncing the metric states again would count each sample ``world_size`` times."""
    metric.sync_on_compute = False
    if hasattr(metric, "_to_sync"):
        metric._to_sync = False


def compute_all(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``compute()`` then ``reset()`` every metric. Every rank must call it: states are synced,
    also from a rank (or an epoch) that saw no update."""
    results: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*compute.*before the ``update``.*")
        for key, metric in metrics.items():
            results[key] = metric.compute()
            metric.reset()
    return results


# ----------------------------------------------------------------------------- model outputs -> metric inputs
def main_logits(logits: Any, want_dim: int | None = None) -> Any:
    """Models (MoE, value heads) may return a tuple: the main logits come first, or, for LM
    logits, the first element with ``want_dim`` dimensions (as LLaMA-Factory picks them)."""
    if isinstance(logits, (list, tuple)):
        if want_dim is not None:
            for item in logits:
                if hasattr(item, "dim") and item.dim() == want_dim:
                    return item
        return logits[0]
    return logits


def transform_predictions(preds: Any, transform: str | Callable[[Any], Any] | None) -> Any:
    """``sigmoid``: AcceptHead logits ``[B, T]`` (or ``[B, T, 1]``) -> scores in 0..1;
    ``argmax``: LM logits ``[B, T, V]`` -> token ids (the causal shift stays in the metric);
    ``softmax``: probabilities over the last dim; ``none``/``None``: unchanged; a callable as is."""
    if transform is None or transform == "none":
        return preds
    if callable(transform):
        return transform(preds)
    import torch

    if transform == "sigmoid":
        x = torch.as_tensor(main_logits(preds))
        if x.dim() == 3 and x.shape[-1] == 1:
            x = x.squeeze(-1)
        return torch.sigmoid(x.float())
    if transform == "argmax":
        return torch.as_tensor(main_logits(preds, want_dim=3)).argmax(dim=-1)
    if transform == "softmax":
        return torch.softmax(torch.as_tensor(main_logits(preds)).float(), dim=-1)
    raise ConfigError(f"unknown transform {transform!r}; available: {', '.join(TRANSFORMS)}", where="transform")


# ----------------------------------------------------------------------------- a training run's model, borrowed
@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[Any]:
    """Eval mode for a block, then every submodule's own previous mode back (a submodule
    kept frozen in eval mode during training stays so)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def model_device(model: Any) -> Any:
    device = getattr(model, "device", None)
    return device if device is not None else next(model.parameters()).device


@contextlib.contextmanager
def borrowed_model(model: Any) -> Iterator[Any]:
    """Use a training run's model for inference and leave it as found: eval mode (each
    submodule's mode restored), no autograd, and forked random streams so sampling does not
    advance the training run's."""
    import torch

    device = model_device(model)
    on_accelerator = getattr(device, "type", "cpu") != "cpu"
    rng = torch.random.fork_rng(devices=[device] if on_accelerator else [], device_type=device.type if on_accelerator else None)
    with eval_mode(model), torch.no_grad(), rng:
        yield model


# ----------------------------------------------------------------------------- ranks
def dist_info() -> tuple[int, int]:
    """``(rank, world_size)`` of the process group, ``(0, 1)`` without one."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is absent
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_objects(obj: Any) -> list[Any]:
    """``all_gather_object`` when a process group is up (every rank gets every rank's object),
    else ``[obj]``."""
    rank, world_size = dist_info()
    if world_size == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


# ----------------------------------------------------------------------------- config pieces
def _nested(exc: EvalKitError, parent: str, section: str) -> EvalKitError:
    """The same error, its key under ``parent`` (``generation.n`` -> ``generation_eval.generation.n``)."""
    where = exc.where or ""
    if where == section or where.startswith((f"{section}.", f"{section}=")):
        return type(exc)(exc.what, where=f"{parent}.{where}", fix=exc.fix)
    return exc


def prompt_from_config(node: Any, *, parent: str | None = None) -> PromptBuilder | None:
    """:func:`evalkit.prompts.prompt_from_config`, with errors naming the key the node sits under."""
    try:
        return prompts_from_node(node)
    except ConfigError as exc:
        raise (_nested(exc, parent, "prompt") if parent else exc) from None


def parser_from_config(parser: Any, *, path: str, registry: "Registry | None" = None) -> ParserRunner | None:
    """:func:`evalkit.records.make_parser` (a registered parser, a callable, or none)."""
    return make_parser(_registry(registry), parser, path=path)


def _generation(generation: Any, parent: str) -> GenerationConfig:
    if isinstance(generation, GenerationConfig):
        gen = generation
    else:
        try:
            gen = generation_from_config(generation or {})
        except ConfigError as exc:
            raise _nested(exc, parent, "generation") from None
    if gen.n != 1:
        raise ConfigError("generation.n must be 1 for evaluation during training", where=f"{parent}.generation.n")
    return gen


# ----------------------------------------------------------------------------- generation evaluation
@dataclass
class GenerationEvalResult:
    """One generation evaluation. ``records`` are every rank's samples, in dataset order;
    ``counts`` are :func:`evalkit.summary.record_counts` over them."""

    results: dict[str, Any]
    records: list[dict[str, Any]]
    counts: dict[str, Any] = field(default_factory=dict)

    def flat(self, *, prefix: str = "", sep: str = "/", skip_fields: Sequence[str] = DEFAULT_SKIP_FIELDS, counts_key: str = "generation") -> dict[str, float]:
        """Scalar results (``<prefix><key><sep><field>``) plus ``<prefix><counts_key><sep>num_*``."""
        flat = flatten_results(self.results, sep=sep, prefix=prefix, skip_fields=skip_fields)
        for name in LOGGED_COUNTS:
            if name in self.counts:
                flat[f"{prefix}{counts_key}{sep}{name}"] = float(self.counts[name])
        return flat

    def write(self, directory: str | Path, *, step: int | None = None) -> Path:
        """``predictions.jsonl`` (dataset order) and ``metrics.json`` into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        rewrite_predictions(out, self.records)
        payload: dict[str, Any] = {**to_jsonable(self.results), **self.counts}
        if step is not None:
            payload["step"] = step
        (out / METRICS_FILE).write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return out


class GenerationEval:
    """Generate on an eval set with any backend, parse and score, as an ``evalkit`` run would.

    Args:
        data: a JSON/JSONL file (evalkit's data format) or a list of row dicts.
        prompt: a ``prompt`` node (``file``, ``system``, ``user``, ``vars``, ``from_file``; a node
            from ``conf/prompt/`` works as is) or a :class:`~evalkit.prompts.PromptBuilder`;
            ``None`` uses each row's ``messages_key`` list.
        parser: a registered parser (``"json_label"``, ``{name: json_label, repair: true}``), a
            callable ``text -> prediction`` or ``None`` (the raw text). A parser that raises
            makes a counted parse error, never a failed training step.
        metrics: ``{key: metric node or Metric}``, updated with ``(predictions, labels)``.
        generation: evalkit ``generation`` settings; ``n`` must be 1.
        backend: the registered backend whose ``from_model(model, tokenizer, ...)`` generates
            when :meth:`run` gets a model and tokenizer (``hf``: the code of ``backend=hf``).
        batch_size, chat_template, chat_template_kwargs, max_prompt_length: that backend's
            batch size, template override, template variables and longest prompt in tokens
            (a longer one is a failed sample).
        id_key, label_key, label_format, limit: as evalkit's ``data`` node.
        failed: failed samples are left out of the metrics (``exclude``) or scored as the
            parser's empty prediction (``empty``), as ``run.failed``.
    """

    path = "generation_eval"  # the config key errors name

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
        backend: str = "hf",
        failed: Literal["exclude", "empty"] = "exclude",
    ) -> None:
        path = self.path
        if data is None:
            raise ConfigError("no eval data for generation", where=f"{path}.data", fix="set it to a JSONL file or a list of rows")
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1", where=f"{path}.batch_size")
        if failed not in ("exclude", "empty"):
            raise ConfigError(f"must be exclude or empty, got {failed!r}", where=f"{path}.failed")
        self.registry = _registry(None)
        self.data = to_container(data)
        self.id_key, self.label_key, self.label_format, self.limit = id_key, label_key, label_format, limit
        self.messages_key = messages_key
        self.prompt = prompt_from_config(prompt, parent=path)
        self.parser = parser_from_config(parser, path=f"{path}.parser", registry=self.registry)
        self.metrics = build_metrics(metrics, path=f"{path}.metrics", registry=self.registry)
        self.generation = _generation(generation, path)
        self.batch_size = batch_size
        self.chat_template = chat_template
        self.chat_template_kwargs = dict(to_container(chat_template_kwargs) or {})
        self.max_prompt_length = max_prompt_length
        self.backend = backend
        self.failed = failed
        self._samples: list[Sample] | None = None

    @classmethod
    def from_config(cls, node: Any, *, path: str = "generation_eval") -> "GenerationEval":
        """Build from a config mapping, validating keys and types against ``__init__``."""
        if isinstance(node, GenerationEval):
            return node
        options = validate_options(cls, to_container(node) or {}, path=path, plugin="generation_eval")
        return cls(**options)

    # -- inputs --------------------------------------------------------------------------
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

            return list(load_samples(resolve_path(str(self.data)), id_key=self.id_key, label_key=self.label_key, label_format=self.label_format, limit=self.limit))
        if not isinstance(self.data, list):
            raise ConfigError(f"data must be a file path or a list of rows, got {type(self.data).__name__}", where=f"{self.path}.data")
        rows = self.data[: self.limit] if self.limit is not None else self.data
        samples = []
        for index, row in enumerate(rows):
            where = f"{self.path}.data[{index}]"
            if not isinstance(row, Mapping):
                raise DataError(f"each row must be a mapping, got {type(row).__name__}", where=where)
            if self.label_key and self.label_key not in row:
                raise DataError(f"missing label field '{self.label_key}'", where=where, fix="add it, or set label_key")
            label = row.get(self.label_key) if self.label_key else None
            samples.append(Sample(index=index, id=row.get(self.id_key, index), row=dict(row), label=label, where=where))
        if not samples:
            raise DataError("the eval set has no rows", where=f"{self.path}.data")
        return samples

    def messages(self, sample: Sample, *, required: bool = True) -> list[dict[str, Any]] | None:
        """The chat messages of one sample: the prompt rendered, or the row's own list."""
        if self.prompt is not None:
            return self.prompt.render(sample)
        messages = sample.row.get(self.messages_key)
        if isinstance(messages, list):
            return messages
        if not required:
            return None
        raise DataError(
            f"no prompt configured and the row has no '{self.messages_key}' list",
            where=sample.where,
            fix=f"set {self.path}.prompt (system/user templates or file) or give rows chat messages",
        )

    def backend_for(self, model: Any, tokenizer: Any) -> Backend:
        """The configured backend generating with an in-memory model (``from_model``)."""
        factory = self.registry.get("backend", self.backend, where=f"{self.path}.backend").factory
        from_model = getattr(factory, "from_model", None)
        if not callable(from_model):
            raise ConfigError(
                f"backend '{self.backend}' cannot generate with a model object (it has no from_model)",
                where=f"{self.path}.backend",
                fix="use backend 'hf', or pass a built backend to GenerationEval.run",
            )
        return from_model(
            model,
            tokenizer,
            generation=self.generation,
            batch_size=self.batch_size,
            max_length=self.max_prompt_length,
            chat_template=self.chat_template,
            chat_template_kwargs=self.chat_template_kwargs,
        )

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        backend: Any,
        tokenizer: Any = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        gather: Callable[[Any], list[Any]] | None = None,
        device: Any = None,
    ) -> GenerationEvalResult:
        """Evaluate this rank's shard (``rows[rank::world_size]``) and return the synced metric
        results with every rank's records in dataset order. Every rank must call it.

        ``backend`` is any :class:`~evalkit.types.Backend` — or, with ``tokenizer``, a model that
        :meth:`backend_for` wraps (and closes afterwards). ``device``: where metric states live
        for the sync (default: the model's device).
        """
        owned = tokenizer is not None
        if owned:
            device = device if device is not None else model_device(backend)
            backend = self.backend_for(backend, tokenizer)
        elif not isinstance(backend, Backend):
            raise ConfigError(
                f"GenerationEval.run got a {type(backend).__name__}, which is not a backend (generate/close)",
                where=f"{self.path}.backend",
                fix="pass an evalkit backend, or a model together with its tokenizer",
            )
        if rank is None or world_size is None:
            rank, world_size = dist_info()
        shard = self.samples[rank::world_size]
        for metric in self.metrics.values():
            if device is not None and callable(getattr(metric, "to", None)):
                metric.to(device)
            metric.reset()
        try:
            records = self._generate(backend, shard) if shard else []
        finally:
            if owned:
                backend.close()
        empty = self.parser.empty() if self.parser is not None else None
        scored = scored_records(records, failed=self.failed, empty=empty)
        update_metrics(self.metrics, scored)
        add_sample_scores(self.metrics, scored)
        results = {key: to_jsonable(value) for key, value in compute_all(self.metrics).items()}
        all_records = sorted((r for part in (gather or gather_objects)(records) for r in part), key=lambda r: r["index"])
        num_scored = sum(1 for r in all_records if self.failed == "empty" or r.get("error_type") != REQUEST_ERROR)
        if not num_scored:
            results = {key: None for key in results}
        counts = record_counts(all_records, num_scored=num_scored)
        return GenerationEvalResult(results=results, records=all_records, counts=counts)

    def _generate(self, backend: Any, shard: list[Sample]) -> list[dict[str, Any]]:
        required = bool(getattr(backend, "uses_messages", True))
        by_index = {s.index: s for s in shard}
        messages = {s.index: self.messages(s, required=required) for s in shard}
        requests = [Request(index=s.index, id=s.id, messages=messages[s.index], row=s.row, where=s.where) for s in shard]
        records: dict[int, dict[str, Any]] = {}

        def on_result(result: Result) -> None:
            records[result.index] = build_record(by_index[result.index], messages[result.index], result, self.parser)

        backend.generate(requests, on_result)
        for s in shard:  # a backend that skipped a sample: a failed sample, not a failed training step
            if s.index not in records:
                records[s.index] = build_record(s, messages[s.index], Result(index=s.index, error="no result from the backend"), self.parser)
        return [records[s.index] for s in shard]
