"""data -> prompt -> backend -> head -> parser -> metrics -> store -> reports.

The pipeline only composes plugins; it knows no backend, head, parser or metric by name.
Each finished sample is parsed and persisted immediately (``PredictionStore``), and metrics
are computed at the end from the final, de-duplicated predictions — so a resumed run gives
exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import inspect
import json
import typing
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from evalkit.cache import ResponseCache
from evalkit.config import check_type, split_plugin_node, to_container, validate_options
from evalkit.data import load_samples
from evalkit.errors import BackendError, ConfigError, EvalKitError
from evalkit.paths import resolve_path
from evalkit.progress import RunProgress
from evalkit.prompts import PromptBuilder
from evalkit.registry import Registry, default_registry
from evalkit.states import read_run_info, save_metric_states, write_run_info
from evalkit.store import PredictionStore
from evalkit.summary import metric_results, record_counts, scored_records, update_metrics
from evalkit.types import GenerationConfig, Request, Result, Sample

log = logging.getLogger("evalkit")

METRICS_FILE = "metrics.json"
TOP_LEVEL_KEYS = frozenset({"backend", "model", "head", "parser", "metrics", "data", "prompt", "generation", "cache", "run", "report", "verbose"})
RUN_KEYS = frozenset({"resume", "progress"})
REPORT_KEYS = frozenset({"console", "excel", "tools_metric", "params_metric", "exact_match_metric", "display_fields", "max_badcases"})
MISSING = "???"  # OmegaConf's marker for a value that is deliberately not set
INJECTABLE = ("model", "generation", "cache", "progress", "run_dir")


@dataclass
class ParsedOutput:
    prediction: Any
    error: str | None = None
    repaired: bool = False


def build_plugin(registry: Registry, kind: str, node: Any, *, path: str, inject: Mapping[str, Any] | None = None) -> Any:
    """Instantiate the plugin a config node selects, validating its options first."""
    name, options = split_plugin_node(node, path=path)
    entry = registry.get(kind, name, where=f"{path}.name")
    # An option the node sets itself wins over an injected value of the same name
    # (``backend.model`` is the served model name for API backends, not the model node).
    inject = {k: v for k, v in (inject or {}).items() if k not in options}
    options = validate_options(entry.factory, options, path=path, plugin=f"{kind} '{name}'", injected=tuple(inject))
    target = entry.factory.__init__ if inspect.isclass(entry.factory) else entry.factory
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        params = {}
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    for key, value in inject.items():
        # Injected only where the factory has a parameter of that name *and type* — an API
        # backend's ``model: str`` is the served model name, not the ``model`` node.
        if key in params and check_type(value, hints.get(key, params[key].annotation)):
            options[key] = value
    try:
        return entry.factory(**options)
    except EvalKitError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{kind} '{name}' rejected its options: {exc}", where=path) from None


def generation_from_config(node: Any) -> GenerationConfig:
    data = dict(to_container(node) or {})
    options = validate_options(GenerationConfig, data, path="generation", plugin="generation settings")
    stop = options.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    options["stop"] = tuple(stop)
    gen = GenerationConfig(**options)
    if gen.n < 1:
        raise ConfigError("n must be >= 1", where="generation.n")
    if gen.max_new_tokens < 1:
        raise ConfigError("max_new_tokens must be >= 1", where="generation.max_new_tokens")
    return gen


def make_parser(registry: Registry, node: Any) -> Callable[[str], ParsedOutput] | None:
    data = to_container(node)
    if data is None or (isinstance(data, Mapping) and data.get("name") in (None, "none")):
        return None
    parse = build_plugin(registry, "parser", node, path="parser")
    empty = getattr(parse, "empty", None)

    def run(text: str) -> ParsedOutput:
        try:
            value = parse(text)
        except ValueError as exc:
            return ParsedOutput(prediction=empty() if callable(empty) else empty, error=str(exc)[:200] or "unparseable")
        except Exception as exc:  # a parser bug or pathological output must not end the run
            log.warning("parser raised %s on one output; counted as a parse error", type(exc).__name__)
            return ParsedOutput(prediction=empty() if callable(empty) else empty, error=f"{type(exc).__name__}: {str(exc)[:160]}")
        repaired = bool(getattr(parse, "last_repaired", False))
        return ParsedOutput(prediction=value, repaired=repaired)

    run.empty = empty  # type: ignore[attr-defined]
    return run


@dataclass
class RunSummary:
    run_dir: Path
    metrics: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)  # dataset rows by index, for reports


class Pipeline:
    """One evaluation run, from a composed config to files in ``run_dir``."""

    def __init__(self, cfg: Any, run_dir: str | Path, *, registry: Registry | None = None, show_progress: bool = True) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.registry = registry or default_registry()
        self.show_progress = show_progress

    # -- composition -------------------------------------------------------------------
    def _section(self, key: str, default: Any = None) -> Any:
        value = self.cfg.get(key, default) if hasattr(self.cfg, "get") else default
        return to_container(value) if value is not None else default

    def load_samples(self) -> list[Sample]:
        data = self._section("data", {}) or {}
        if not data.get("path"):
            raise ConfigError("no dataset given", where="data.path", fix="add data.path=/path/to/file.jsonl")
        known = {"path", "id_key", "label_key", "label_format", "limit", "num_shards", "shard_index", "require_label"}
        extra = set(data) - known - {"display_fields"}
        if extra:
            raise ConfigError(f"unknown option '{sorted(extra)[0]}' for data; valid options: {', '.join(sorted(known))}", where=f"data.{sorted(extra)[0]}")
        for key, low in (("limit", 0), ("num_shards", 1), ("shard_index", 0)):
            value = data.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise ConfigError(f"must be a whole number >= {low}, got {value!r}", where=f"data.{key}")
        return load_samples(
            resolve_path(data["path"]),
            id_key=data.get("id_key", "id"),
            label_key=data.get("label_key", "label"),
            label_format=data.get("label_format", "any"),
            require_label=data.get("require_label", True),
            limit=data.get("limit"),
            num_shards=int(data.get("num_shards", 1) or 1),
            shard_index=int(data.get("shard_index", 0) or 0),
        )

    def make_cache(self) -> ResponseCache:
        cache = self._section("cache", {}) or {}
        unknown = set(cache) - {"enabled", "dir"}
        if unknown:
            raise ConfigError(f"unknown option '{sorted(unknown)[0]}' for cache; valid options: dir, enabled", where=f"cache.{sorted(unknown)[0]}")
        return ResponseCache(cache.get("dir"), enabled=bool(cache.get("enabled", True)))

    def make_prompts(self) -> PromptBuilder | None:
        """Templates from ``prompt.file`` and/or ``prompt.system`` / ``prompt.user``.

        ``???`` (OmegaConf's "missing") means "not set here, take the file's"; ``null`` means
        "no such message" — so ``prompt.system=null`` drops the system message.
        """
        prompt = self._section("prompt")
        if not prompt:
            return None
        unknown = set(prompt) - {"system", "user", "file"}
        if unknown:
            raise ConfigError(f"unknown option '{sorted(unknown)[0]}' for prompt; valid options: file, system, user", where=f"prompt.{sorted(unknown)[0]}")
        explicit = {key: prompt[key] for key in ("system", "user") if key in prompt and prompt[key] != MISSING}
        file = prompt.get("file")
        if not file and not explicit.get("user"):
            return None
        return PromptBuilder.from_config(file=resolve_path(file) if file else None, **explicit)

    def fingerprint(self) -> str:
        """Digest of everything that decides a sample's record: resuming a run dir is only
        safe when it is unchanged (metrics and reports are recomputed anyway)."""
        import hashlib

        data = dict(self._section("data", {}) or {})
        for key in ("limit", "num_shards", "shard_index", "display_fields"):
            data.pop(key, None)  # they select samples; a sample's result does not depend on them
        parts = {key: self._section(key) for key in ("backend", "model", "head", "parser", "prompt", "generation")}
        parts["data"] = data
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def check_top_level(self) -> None:
        """Unknown keys outside plugin nodes are errors too (a typo must not be ignored)."""
        data = to_container(self.cfg) or {}
        for key in data:
            if key not in TOP_LEVEL_KEYS:
                raise ConfigError(f"unknown config key '{key}'; valid: {', '.join(sorted(TOP_LEVEL_KEYS))}", where=key, fix=f"remove +{key}=... or fix its spelling")
        for section, known in (("run", RUN_KEYS), ("report", REPORT_KEYS)):
            for key in data.get(section) or {}:
                if key not in known:
                    raise ConfigError(f"unknown option '{key}' for {section}; valid options: {', '.join(sorted(known))}", where=f"{section}.{key}")
        excel = (data.get("report") or {}).get("excel", "auto")
        if excel not in ("auto", True, False):
            raise ConfigError(f"must be auto, true or false, got {excel!r}", where="report.excel")

    def check_backend_config(self) -> None:
        """Fail on a bad backend name or option before any data is read or model loaded."""
        name, options = split_plugin_node(self._section("backend"), path="backend")
        entry = self.registry.get("backend", name, where="backend.name")
        injected = tuple(k for k in INJECTABLE if k not in options)
        validate_options(entry.factory, options, path="backend", plugin=f"backend '{name}'", injected=injected)

    # -- running -----------------------------------------------------------------------
    def run(self) -> RunSummary:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in (METRICS_FILE, "report.xlsx"):
            (self.run_dir / stale).unlink(missing_ok=True)  # a failed re-run must not look finished
        registry = self.registry
        self.check_top_level()
        self.check_backend_config()
        samples = self.load_samples()
        previous = read_run_info(self.run_dir)
        info = write_run_info(self.run_dir, self.cfg, samples, resolve_path(self._section("data", {})["path"]), fingerprint=self.fingerprint())
        same_setup = previous.get("fingerprint") in (None, info["fingerprint"]) and previous.get("dataset", {}).get("sha256") in (None, info["dataset"]["sha256"])
        generation = generation_from_config(self._section("generation", {}) or {})
        head = build_plugin(registry, "head", self._section("head", {"name": "lm"}), path="head")
        mode = getattr(head, "mode", "generate")
        parser = make_parser(registry, self._section("parser")) if mode == "generate" else None
        metric_nodes = self._section("metrics", {}) or {}
        metrics = {
            key: build_plugin(registry, "metric", node, path=f"metrics.{key}") for key, node in metric_nodes.items() if node
        }
        prompts = self.make_prompts() if mode == "generate" else None
        run_cfg = self._section("run", {}) or {}
        resume = bool(run_cfg.get("resume", True))
        if resume and not same_setup and (self.run_dir / "predictions.jsonl").exists():
            log.warning(
                "%s holds predictions of a different data file or backend/prompt/parser/generation setup; "
                "starting afresh (responses already in the cache are still reused)", self.run_dir,
            )
            resume = False
        store = PredictionStore(self.run_dir, resume=resume)
        pending = [s for s in samples if not store.done(s.index)]
        by_index = {s.index: s for s in samples}
        requests: list[Request] = []
        messages_by_index: dict[int, Any] = {}
        for sample in pending:
            messages = prompts.render(sample) if prompts is not None else None
            messages_by_index[sample.index] = messages
            requests.append(Request(index=sample.index, id=sample.id, messages=messages, row=sample.row, where=sample.where))
        if mode == "generate" and prompts is None and requests:
            log.info("no prompt configured; backends receive rows only")
        cache = self.make_cache()
        model_node = self._section("model", {}) or {}
        start = time.monotonic()
        log.info("evaluating %d samples (%d already done in %s)", len(samples), len(samples) - len(pending), self.run_dir)
        progress = RunProgress(len(pending), enabled=self.show_progress)
        backend = None

        def on_result(result: Result) -> None:
            sample = by_index[result.index]
            record = self._record(sample, messages_by_index.get(result.index), result, parser)
            store.add(record)
            progress.advance(ok=result.ok)

        try:
            if requests:
                # Built before the progress bar starts: a backend that cannot start (missing
                # library, bad checkpoint) fails with its one line and no empty bar.
                backend = build_plugin(
                    registry,
                    "backend",
                    self._section("backend"),
                    path="backend",
                    inject={"model": model_node, "generation": generation, "cache": cache, "progress": progress, "run_dir": self.run_dir},
                )
                if mode == "score" and not hasattr(backend, "score"):
                    raise ConfigError(
                        f"backend '{self._section('backend', {}).get('name')}' cannot score tokens for head '{self._section('head', {}).get('name')}'",
                        where="backend.name",
                        fix="use a backend that loads weights (backend=hf)",
                    )
                with progress:
                    if mode == "score":
                        backend.score(requests, head, on_result)
                    else:
                        backend.generate(requests, on_result)
        finally:
            if backend is not None and hasattr(backend, "close"):
                backend.close()
            cache.close()
            records = store.finalize(keep=set(by_index))
        elapsed = time.monotonic() - start
        missing = [s.index for s in samples if s.index not in store.records]
        if missing:
            raise BackendError(f"the backend returned no result for {len(missing)} sample(s) (first index {missing[0]})", where="backend")
        records = [r for r in records if r["index"] in by_index]
        summary = self.compute_metrics(records, metrics)
        summary["wall_time_s"] = round(elapsed, 3)
        self.write_metrics(summary)
        return RunSummary(run_dir=self.run_dir, metrics=summary, records=records, rows={s.index: s.row for s in samples})

    def _record(self, sample: Sample, messages: Any, result: Result, parser: Callable[[str], ParsedOutput] | None) -> dict[str, Any]:
        record: dict[str, Any] = {"index": sample.index, "id": sample.id}
        if messages is not None:
            record["messages"] = messages
        output: Any = None
        prediction: Any = result.prediction
        error = result.error
        error_type = "request" if error else None
        repaired = False
        if result.ok and result.outputs is not None:
            output = result.outputs[0] if len(result.outputs) == 1 else list(result.outputs)
            if parser is not None:
                parsed = parser(result.outputs[0])
                prediction, repaired = parsed.prediction, parsed.repaired
                if parsed.error:
                    error, error_type = f"parse: {parsed.error}", "parse"
            else:
                prediction = output
        elif not result.ok and parser is not None:
            empty = getattr(parser, "empty", None)
            prediction = empty() if callable(empty) else empty
        record.update(
            {
                "output": output,
                "prediction": prediction,
                "label": sample.label,
                "error": error,
                "error_type": error_type,
            }
        )
        if repaired:
            record["repaired"] = True
        if result.latency_s is not None:
            record["latency_s"] = round(result.latency_s, 4)
        if result.usage:
            record["usage"] = result.usage
        if result.attempts != 1:
            record["attempts"] = result.attempts
        if result.cached:
            record["cached"] = True
        return record

    def compute_metrics(self, records: list[dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any]:
        update_metrics(metrics, records)
        summary = metric_results(metrics, any_scored=bool(scored_records(records)))
        summary.update(record_counts(records))
        save_metric_states(self.run_dir, metrics, self._section("metrics", {}) or {})
        return summary

    def write_metrics(self, summary: dict[str, Any]) -> Path:
        path = self.run_dir / METRICS_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(path)
        return path

