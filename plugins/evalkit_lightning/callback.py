"""``EvalKitCallback``: evalkit metrics inside a Lightning ``Trainer``.

Two jobs, each optional:

1. **Metrics over validation outputs.** Every ``validation_step`` output (e.g. AcceptHead
   logits and float labels) updates evalkit metrics (``tolerance_accuracy``,
   ``token_accuracy``, ...); at the end of the validation epoch they are computed — states
   synced across processes the torchmetrics way, so DDP equals one process — logged with
   ``pl_module.log_dict(..., sync_dist=True)`` as ``val/<metric>/<field>`` and reset.
2. **Generation evaluation** every ``every_n_train_steps`` optimizer steps and/or at the end
   of validation, on an eval set with an evalkit prompt, parser and metrics (tool-call F1),
   with the module's model and tokenizer through a registered backend's ``from_model``
   (``hf``: left padding, eval mode and ``no_grad`` in a scope that restores the padding side
   and every submodule's mode), the eval set sharded over ranks, ``predictions.jsonl`` +
   ``metrics.json`` written by rank zero to ``<log_dir>/evalkit/step_<N>/`` (see
   :class:`evalkit.training.GenerationEval`).

Styled after Lightning's ``EarlyStopping``: ``@override`` hooks, sanity checking skipped, a
``state_key`` and ``state_dict`` (last evaluated steps, best monitored value, history) so a
resumed run continues where it stopped, rank-zero-only output, and errors that name what is
available (unknown metrics list the registry; a wrong ``preds_key`` lists the step's keys).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from evalkit.config import to_container
from evalkit.errors import ConfigError, missing_dependency

from evalkit.training import DEFAULT_SKIP_FIELDS, GenerationEval, GenerationEvalResult, compute_all, flatten_results

from evalkit_lightning.routes import MetricRoute, build_routes

try:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.utilities.rank_zero import rank_zero_info
except ImportError:  # pragma: no cover - exercised only without lightning
    raise missing_dependency("lightning", "lightning") from None
from typing_extensions import override

GENERATION_COUNTS_KEY = "generation"


class EvalKitCallback(Callback):
    """Evaluate with evalkit metrics during ``fit`` / ``validate``.

    Args:
        metrics: ``{key: metric node or Metric}`` over validation outputs, e.g.
            ``{"accept_head": {"name": "tolerance_accuracy", "tolerance": 0.1}}``. A node may
            carry its own ``preds_key`` / ``target_key`` / ``transform``.
        preds_key, target_key: where ``(preds, target)`` are in the ``validation_step`` output
            (a dict; a ``(preds, target)`` tuple and a bare preds tensor work too). The target
            falls back to the batch's ``target_key``.
        transform: ``sigmoid`` (AcceptHead logits), ``argmax`` (LM logits; the causal shift
            is ``token_accuracy``'s), ``softmax``, ``none``, or a callable.
        prefix: logged names are ``<prefix>/<metric key>/<field>``.
        dataloader_idx: only this validation dataloader feeds the metrics (default: all).
        generation_eval: a :class:`~evalkit.training.GenerationEval` or its options
            (``data``, ``prompt``, ``parser``, ``metrics``, ``generation``, ``batch_size``, ...).
        every_n_train_steps: run the generation evaluation every N optimizer steps (0: never).
        generate_at_validation_end: also run it at the end of each validation epoch (default:
            only when ``every_n_train_steps`` is 0).
        model_attr, tokenizer_attr: (dotted) attributes of the LightningModule holding the
            model and tokenizer (handed to ``generation_eval.backend``'s ``from_model``).
        output_dir: where ``step_<N>/predictions.jsonl`` go (default ``<log_dir>/evalkit``).
        monitor, mode: a logged name whose best value (``max``/``min``) is tracked in the state.
        prog_bar: also show the logged values in the progress bar.
        skip_fields: result subtrees not logged as scalars (still in ``metrics.json``).
        verbose: print a one-line summary per evaluation (rank zero).
    """

    def __init__(
        self,
        metrics: dict[str, Any] | None = None,
        preds_key: str = "preds",
        target_key: str = "target",
        transform: str | Callable[[Any], Any] | None = None,
        prefix: str = "val",
        dataloader_idx: int | None = None,
        generation_eval: dict[str, Any] | GenerationEval | None = None,
        every_n_train_steps: int = 0,
        generate_at_validation_end: bool | None = None,
        model_attr: str = "model",
        tokenizer_attr: str = "tokenizer",
        output_dir: str | None = None,
        monitor: str | None = None,
        mode: Literal["max", "min"] = "max",
        prog_bar: bool = False,
        skip_fields: Sequence[str] = DEFAULT_SKIP_FIELDS,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        if mode not in ("max", "min"):
            raise MisconfigurationException(f"`mode` can be max, min; got {mode!r}")
        if every_n_train_steps < 0:
            raise MisconfigurationException(f"`every_n_train_steps` must be >= 0, got {every_n_train_steps}")
        if not prefix or "/" in prefix:
            raise MisconfigurationException(f"`prefix` must be a non-empty name without '/', got {prefix!r}")
        self.routes: dict[str, MetricRoute] = build_routes(metrics, preds_key=preds_key, target_key=target_key, transform=transform)
        gen_node = to_container(generation_eval) if not isinstance(generation_eval, GenerationEval) else generation_eval
        self.generation: GenerationEval | None = GenerationEval.from_config(gen_node) if gen_node else None
        if self.generation is not None:
            clash = sorted(set(self.routes) & (set(self.generation.metrics) | {GENERATION_COUNTS_KEY}))
            if clash:
                raise ConfigError(
                    f"metric key '{clash[0]}' is used by both the validation metrics and generation_eval.metrics",
                    where=f"generation_eval.metrics.{clash[0]}",
                    fix="give the two metrics different keys",
                )
        if every_n_train_steps and self.generation is None:
            raise MisconfigurationException("`every_n_train_steps` is set but `generation_eval` is not: there is nothing to run")
        if not self.routes and self.generation is None:
            raise MisconfigurationException("EvalKitCallback needs `metrics` and/or `generation_eval`")
        self.prefix = prefix
        self.dataloader_idx = dataloader_idx
        self.every_n_train_steps = int(every_n_train_steps)
        self.generate_at_validation_end = (not self.every_n_train_steps) if generate_at_validation_end is None else bool(generate_at_validation_end)
        self.model_attr = model_attr
        self.tokenizer_attr = tokenizer_attr
        self.output_dir = output_dir
        self.monitor = monitor
        self.mode = mode
        self.prog_bar = prog_bar
        self.skip_fields = tuple(skip_fields)
        self.verbose = verbose
        self._output_dir: Path | None = Path(output_dir) if output_dir else None
        # state (state_dict / load_state_dict)
        self.last_validation_step = -1
        self.last_generation_step = -1
        self.best_score: float | None = None
        self.best_step: int | None = None
        self.history: list[dict[str, Any]] = []
        self.last_generation: GenerationEvalResult | None = None
        self._seen: dict[str, set[str]] = {}

    # -- identity and state --------------------------------------------------------------
    @property
    @override
    def state_key(self) -> str:
        gen = sorted(self.generation.metrics) if self.generation is not None else None
        return self._generate_state_key(prefix=self.prefix, metrics=sorted(self.routes), generation=gen)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "last_validation_step": self.last_validation_step,
            "last_generation_step": self.last_generation_step,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "monitor": self.monitor,
            "mode": self.mode,
            "history": copy.deepcopy(self.history),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_validation_step = int(state_dict.get("last_validation_step", -1))
        self.last_generation_step = int(state_dict.get("last_generation_step", -1))
        self.history = copy.deepcopy(list(state_dict.get("history", [])))
        if state_dict.get("monitor") == self.monitor and state_dict.get("mode") == self.mode:
            self.best_score = state_dict.get("best_score")
            self.best_step = state_dict.get("best_step")

    # -- hooks ---------------------------------------------------------------------------
    @override
    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        if self.generation is not None and self._output_dir is None:
            # log_dir broadcasts rank zero's directory: every rank must ask, so ask here.
            self._output_dir = Path(trainer.log_dir or trainer.default_root_dir) / "evalkit"

    @override
    def on_validation_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.sanity_checking:
            return
        for route in self.routes.values():
            route.metric.to(pl_module.device)
            route.metric.reset()

    @override
    def on_validation_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.sanity_checking or not self.routes:
            return
        if self.dataloader_idx is not None and dataloader_idx != self.dataloader_idx:
            return
        for route in self.routes.values():
            route.update(outputs, batch)

    @override
    def on_validation_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.sanity_checking:
            return
        step = trainer.global_step
        if self.routes:
            flat = self.compute_validation_metrics()
            pl_module.log_dict(flat, sync_dist=True, prog_bar=self.prog_bar, on_step=False, on_epoch=True)
            self.last_validation_step = step
            self._record("validation", trainer, flat)
        if self.generation is not None and self.generate_at_validation_end and not self._already_generated(trainer):
            flat = self._run_generation(trainer, pl_module)
            pl_module.log_dict(flat, sync_dist=True, prog_bar=self.prog_bar, on_step=False, on_epoch=True)
            self._record("generation", trainer, flat)

    @override
    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.generation is None or not self.every_n_train_steps:
            return
        step = trainer.global_step
        if step == 0 or step % self.every_n_train_steps or self._already_generated(trainer):
            return
        flat = self._run_generation(trainer, pl_module)
        # Written to the loggers directly (as LearningRateMonitor does): values logged from a
        # batch hook would only reach them on steps that are multiples of log_every_n_steps.
        if trainer.is_global_zero:
            log_step = trainer.fit_loop.epoch_loop._batches_that_stepped
            for logger in trainer.loggers:
                logger.log_metrics(flat, step=log_step)
        import torch

        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in flat.items()})
        self._record("generation", trainer, flat)

    # -- work ----------------------------------------------------------------------------
    def _already_generated(self, trainer: "pl.Trainer") -> bool:
        """While fitting, one step is evaluated once (every-N and validation end may coincide;
        a resumed run does not repeat its checkpoint's step). ``validate()`` always evaluates."""
        from lightning.pytorch.trainer.states import TrainerFn

        return trainer.state.fn == TrainerFn.FITTING and trainer.global_step == self.last_generation_step

    def compute_validation_metrics(self) -> dict[str, float]:
        """Compute (synced across processes), flatten to ``<prefix>/<key>/<field>``, reset."""
        results = compute_all({key: route.metric for key, route in self.routes.items()})
        return flatten_results(results, prefix=f"{self.prefix}/", skip_fields=self.skip_fields)

    def _run_generation(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> dict[str, float]:
        assert self.generation is not None
        model = _resolve(pl_module, self.model_attr, "model_attr", want="generate")
        tokenizer = _resolve(pl_module, self.tokenizer_attr, "tokenizer_attr", want="apply_chat_template")
        step = trainer.global_step
        result = self.generation.run(model, tokenizer, rank=trainer.global_rank, world_size=trainer.world_size)
        if trainer.is_global_zero:
            directory = (self._output_dir or Path(trainer.default_root_dir) / "evalkit") / f"step_{step}"
            result.write(directory, step=step)
        self.last_generation = result
        self.last_generation_step = step
        return result.flat(prefix=f"{self.prefix}/", sep="/", skip_fields=self.skip_fields, counts_key=GENERATION_COUNTS_KEY)

    def _record(self, kind: str, trainer: "pl.Trainer", flat: dict[str, float]) -> None:
        step = trainer.global_step
        self.history.append({"kind": kind, "step": step, "epoch": trainer.current_epoch, "metrics": dict(flat)})
        self._seen[kind] = set(flat)
        if self.monitor is not None:
            self._update_best(flat, step)
        if self.verbose:
            shown = ", ".join(f"{k}={v:.4f}" for k, v in flat.items() if not k.endswith(("/num_samples", "/num_scored", "/num_failed")))
            rank_zero_info(f"[evalkit] step {step} {kind}: {shown}")

    def _update_best(self, flat: dict[str, float], step: int) -> None:
        value = flat.get(self.monitor)  # type: ignore[arg-type]
        if value is None:
            expected = {"validation"} if self.routes else set()
            if self.generation is not None:
                expected.add("generation")
            if expected <= set(self._seen) and not any(self.monitor in names for names in self._seen.values()):
                available = sorted(set().union(*self._seen.values()))
                raise MisconfigurationException(
                    f"EvalKitCallback monitors `{self.monitor}`, which is not logged. Available: `{'`, `'.join(available)}`"
                )
            return
        if math.isnan(value):
            return
        better = self.best_score is None or (value > self.best_score if self.mode == "max" else value < self.best_score)
        if better:
            self.best_score, self.best_step = float(value), step


def _resolve(pl_module: Any, dotted: str, option: str, *, want: str) -> Any:
    """``pl_module.<dotted>``; when missing, an error listing attributes that could be meant."""
    obj = pl_module
    for part in dotted.split("."):
        if not hasattr(obj, part):
            candidates = sorted(
                name
                for name in set(vars(pl_module)) | set(getattr(pl_module, "_modules", {}))
                if not name.startswith("_") and hasattr(getattr(pl_module, name, None), want)
            )
            raise MisconfigurationException(
                f"EvalKitCallback({option}={dotted!r}): {type(pl_module).__name__} has no attribute {dotted!r}. "
                f"Attributes with `{want}`: {', '.join(candidates) or '(none)'}"
            )
        obj = getattr(obj, part)
    if not hasattr(obj, want):
        raise MisconfigurationException(f"EvalKitCallback({option}={dotted!r}): {type(obj).__name__} has no `{want}`")
    return obj
