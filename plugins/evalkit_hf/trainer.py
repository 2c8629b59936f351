"""HF ``Trainer`` glue for evaluation during training (TRL and LLaMA-Factory use the same hooks).

* :func:`build_preprocess_logits_for_metrics` shrinks the logits per batch (AcceptHead scores,
  LM token ids), so the Trainer never concatenates ``[N, T, V]`` tensors;
* :func:`build_compute_metrics` feeds evalkit metrics, with and without
  ``batch_eval_metrics`` (the metrics' running sums are the accumulator);
* :class:`EvalKitGenerationCallback` runs :class:`evalkit.training.GenerationEval` after each
  Trainer evaluation, generating with ``HFBackend.from_model`` (the code of ``backend=hf``).

The shared pieces live in :mod:`evalkit.training`; the names below stay importable from here.
Nothing here imports transformers except the ``TrainerCallback`` base class (when installed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Sequence

from evalkit.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.registry import Registry
# The shared pieces moved to evalkit.training; they stay importable from here (see __all__).
from evalkit.training import (
    DEFAULT_SKIP_FIELDS,
    METRICS_FILE,
    PREDICTIONS_FILE,
    TRANSFORMS,
    GenerationEval,
    GenerationEvalResult,
    build_metrics,
    compute_all,
    disable_sync,
    eval_mode,
    flatten_results,
    gather_objects,
    main_logits,
    transform_predictions,
)

try:  # the base class only; everything else in this module works without transformers
    from transformers import TrainerCallback as _TrainerCallbackBase
except ImportError:  # pragma: no cover - exercised only without transformers
    _TrainerCallbackBase = object  # type: ignore[assignment,misc]

__all__ = [
    "DEFAULT_SKIP_FIELDS", "METRICS_FILE", "PREDICTIONS_FILE", "TRANSFORMS",
    "EvalKitComputeMetrics", "EvalKitGenerationCallback", "GenerationEval", "GenerationEvalResult",
    "accept_head_scores", "build_compute_metrics", "build_metrics", "build_preprocess_logits_for_metrics",
    "eval_mode", "flatten_results", "gather_objects", "lm_token_ids", "transform_predictions",
]


# ----------------------------------------------------------------------------- logits -> predictions
def accept_head_scores(logits: Any, labels: Any = None) -> Any:
    """``preprocess_logits_for_metrics`` for AcceptHead models: sigmoid of the ``[B, T]`` logits."""
    return transform_predictions(logits, "sigmoid")


def lm_token_ids(logits: Any, labels: Any = None) -> Any:
    """``preprocess_logits_for_metrics`` for causal LMs: argmax token ids ``[B, T]`` (unshifted;
    ``token_accuracy`` compares prediction ``t`` with label ``t + 1``)."""
    x = main_logits(logits, want_dim=3)
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
                disable_sync(metric)
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
        results = compute_all(self.metrics)
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
    ``batch_eval_metrics``. ``include_key=False`` drops the key (``eval_accuracy``, LLaMA-Factory's
    names) when the fields of all metrics are distinct. ``sync_on_compute`` stays ``False``
    because the Trainer already gathers predictions from every process.
    """
    return EvalKitComputeMetrics(metrics, sep=sep, include_key=include_key, skip_fields=skip_fields, sync_on_compute=sync_on_compute)


# ----------------------------------------------------------------------------- HF TrainerCallback
class EvalKitGenerationCallback(_TrainerCallbackBase):  # type: ignore[misc,valid-type]
    """Generation evaluation after every ``Trainer.evaluate`` (``eval_strategy`` steps/epoch).

    Runs :class:`~evalkit.training.GenerationEval` with the Trainer's model and tokenizer
    (``processing_class``, or ``tokenizer=``) through ``HFBackend.from_model`` — left-padded
    whatever the tokenizer's training side, the model's modes restored — and

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
