"""data -> prompt -> backend -> head -> parser -> metrics -> store -> reports.

The pipeline only composes plugins; it knows no backend, head, parser, metric or domain by
name. Each finished sample is parsed and persisted immediately (``PredictionStore``); metrics
and per-sample scores are computed at the end from the final, de-duplicated records, so a
resumed run gives exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from evalkit.cache import ResponseCache
from evalkit.config import to_container
from evalkit.data import load_samples
from evalkit.errors import BackendError, ConfigError, DataError, PluginError
from evalkit.factory import RunSettings, build_plugin, check_plugin_options, generation_from_config
from evalkit.paths import resolve_path
from evalkit.progress import RunProgress
from evalkit.prompts import PromptBuilder, prompt_from_config
from evalkit.records import ParsedOutput, ParserRunner, build_record, make_parser  # noqa: F401 - ParsedOutput kept importable here
from evalkit.registry import Registry, default_registry
from evalkit.schema import check_top_level, split_section
from evalkit.states import read_run_info, save_metric_states, write_run_info
from evalkit.store import PredictionStore, rewrite_predictions
from evalkit.summary import add_sample_scores, metric_results, record_counts, run_status, scored_records, update_metrics
from evalkit.types import Backend, Request, Result, Sample

log = logging.getLogger("evalkit")

METRICS_FILE = "metrics.json"
SELECTING_KEYS = ("limit", "num_shards", "shard_index", "display_fields")  # choose samples, not results


@dataclass
class RunSummary:
    run_dir: Path
    metrics: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)  # dataset rows by index, for reports


class MetricsJob:
    """Builds the run's metrics now, or on a daemon thread (``background``) so their imports
    overlap the backend's work; ``result()`` waits and re-raises a build error where it is
    needed. (Daemon: a run that fails meanwhile exits without waiting for torch's import.)"""

    def __init__(self, build: Any, *, background: bool) -> None:
        self._done = threading.Event()
        self._metrics: Any = None
        self._error: BaseException | None = None
        if background:
            threading.Thread(target=self._build, args=(build,), name="evalkit-metrics", daemon=True).start()
        else:
            self._metrics = build()
            self._done.set()

    def _build(self, build: Any) -> None:
        try:
            self._metrics = build()
        except BaseException as exc:  # noqa: BLE001 - re-raised by result() / raise_if_failed()
            self._error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the build has ended (built or failed)."""
        return self._done.wait(timeout)

    def raise_if_failed(self) -> None:
        if self._done.is_set() and self._error is not None:
            raise self._error

    def result(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._metrics


@dataclass
class GenerationOutcome:
    """What the generation phase hands back: the final records in dataset order, the
    backend's counters (``num_hedged``, per-endpoint counts, ...) and its wall time."""

    records: list[dict[str, Any]]
    backend_stats: dict[str, Any]
    elapsed_s: float


class GenerationPhase:
    """Samples -> requests -> backend -> one persisted record per sample (resumable).

    Runs in the pipeline's process or in a forked child (:class:`evalkit.forked.ForkedCall`):
    it opens and closes everything it uses (store, cache, backend) itself."""

    def __init__(self, pipeline: "Pipeline", samples: list[Sample], *, generation: Any, head: Any, mode: str, parser: ParserRunner | None, prompts: PromptBuilder | None, tools: Any, resume: bool, uses_messages: bool) -> None:
        self.pipeline = pipeline
        self.samples = samples
        self.generation = generation
        self.head = head
        self.mode = mode
        self.parser = parser
        self.prompts = prompts
        self.tools = tools
        self.resume = resume
        self.uses_messages = uses_messages

    def _requests(self, pending: list[Sample]) -> tuple[list[Request], dict[int, Any]]:
        requests: list[Request] = []
        messages_by_index: dict[int, Any] = {}
        for sample in pending:
            messages = self.pipeline._messages(self.prompts, sample, required=self.uses_messages)
            request = Request(index=sample.index, id=sample.id, messages=messages, row=sample.row, where=sample.where)
            if self.tools is not None:
                request.tools, request.tool_choice, request.messages = self.tools.apply(sample.row, messages)
                messages = request.messages
            messages_by_index[sample.index] = messages
            requests.append(request)
        if self.mode == "generate" and self.prompts is None and requests and self.uses_messages:
            log.info("no prompt configured; backends receive rows only")
        return requests, messages_by_index

    def run(self, check: Any = None) -> GenerationOutcome:
        """``check()`` is called with every result (it may raise to end the run early)."""
        pipeline, samples, parser = self.pipeline, self.samples, self.parser
        store = PredictionStore(pipeline.run_dir, resume=self.resume)
        pending = [s for s in samples if not store.done(s.index)]
        by_index = {s.index: s for s in samples}
        requests, messages_by_index = self._requests(pending)
        cache = pipeline.make_cache()
        start = time.monotonic()
        log.info("evaluating %d samples (%d already done in %s)", len(samples), len(samples) - len(pending), pipeline.run_dir)
        progress = RunProgress(len(pending), enabled=pipeline.show_progress)
        backend = None
        backend_stats: dict[str, Any] = {}

        def on_result(result: Result) -> None:
            if check is not None:
                check()  # a bad metric option ends the run early, not at the end
            sample = by_index[result.index]
            store.add(build_record(sample, messages_by_index.get(result.index), result, parser))
            progress.advance(ok=result.ok)

        answered = False
        try:
            if requests:
                # Built before the progress bar starts: a backend that cannot start (missing
                # library, bad checkpoint) fails with its one line and no empty bar.
                settings = RunSettings(model=pipeline._section("model", {}) or {}, generation=self.generation, cache=cache, progress=progress, run_dir=pipeline.run_dir)
                backend = build_plugin(pipeline.registry, "backend", pipeline._section("backend"), path="backend", inject=settings)
                judging = self.mode == "score" and getattr(self.head, "wants", None) == "generations"
                pipeline._check_backend(backend, "generate" if judging else self.mode)
                with progress:
                    if judging:  # a head that scores by generating (a pairwise judge): any text backend
                        self.head.score_generations(backend.generate, requests, on_result)
                    elif self.mode == "score":
                        backend.score(requests, self.head, on_result)
                    else:
                        backend.generate(requests, on_result)
            answered = True
        finally:
            try:
                if backend is not None:
                    stats = getattr(backend, "stats", None)
                    backend_stats = dict(stats() or {}) if callable(stats) else {}
                    if hasattr(backend, "close"):
                        backend.close()
            finally:
                cache.close()
                # Once every request was answered the pipeline rewrites the file in order, with
                # the per-sample scores: an ordered rewrite here would be written twice.
                records = store.finalize(keep=set(by_index), rewrite=not answered)
        return GenerationOutcome(records=records, backend_stats=backend_stats, elapsed_s=time.monotonic() - start)


class Pipeline:
    """One evaluation run, from a composed config to files in ``run_dir``."""

    def __init__(self, cfg: Any, run_dir: str | Path, *, registry: Registry | None = None, show_progress: bool = True, fork: bool | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.registry = registry or default_registry()
        self.show_progress = show_progress
        self.fork = fork  # None: as run.fork says (auto: where it is safe and helps)
        self._default_registry = registry is None  # what a pre-forked child rebuilds for itself

    # -- composition -------------------------------------------------------------------
    def _section(self, key: str, default: Any = None) -> Any:
        value = self.cfg.get(key, default) if hasattr(self.cfg, "get") else default
        return to_container(value) if value is not None else default

    def load_samples(self) -> list[Sample]:
        core, extra = split_section("data", self._section("data", {}))
        label_format = core.get("label_format", "any")
        if not core.get("path") and label_format == "any":
            raise ConfigError("no dataset given", where="data.path", fix="add data.path=/path/to/file.jsonl")
        return load_samples(
            resolve_path(core["path"]) if core.get("path") else None,
            id_key=core.get("id_key", "id"),
            label_key=core.get("label_key", "label"),
            label_format=label_format,
            format_options=extra,
            require_label=core.get("require_label", True),
            limit=core.get("limit"),
            num_shards=int(core.get("num_shards", 1) or 1),
            shard_index=int(core.get("shard_index", 0) or 0),
        )

    def make_cache(self) -> ResponseCache:
        cache, _ = split_section("cache", self._section("cache", {}))
        return ResponseCache(cache.get("dir"), enabled=bool(cache.get("enabled", True)))

    def make_prompts(self) -> PromptBuilder | None:
        """Templates from ``prompt.file`` and/or ``prompt.system`` / ``prompt.user``
        (:func:`evalkit.prompts.prompt_from_config`)."""
        return prompt_from_config(self._section("prompt"))

    def make_tools(self) -> Any:
        """The ``tools`` node (function calling), or None when no tools are offered."""
        node = self._section("tools")
        if not node or (isinstance(node, Mapping) and node.get("mode") in (None, "none") and not node.get("field") and not node.get("file")):
            return None
        try:
            from evalkit.toolspec import ToolSpec
        except ImportError:  # pragma: no cover - shipped with the core
            raise ConfigError("tools are not supported by this evalkit build", where="tools") from None
        return ToolSpec.from_config(node)

    def fingerprint(self) -> str:
        """Digest of everything that decides a sample's record: resuming a run dir is only
        safe when it is unchanged (metrics and reports are recomputed anyway)."""
        data = dict(self._section("data", {}) or {})
        for key in SELECTING_KEYS:
            data.pop(key, None)
        parts = {key: self._section(key) for key in ("backend", "model", "head", "parser", "prompt", "tools", "generation")}
        parts["data"] = data
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def check_top_level(self) -> None:
        check_top_level(self.cfg)

    def check_backend_config(self) -> Any:
        """Fail on a bad backend name or option before any data is read or model loaded."""
        return check_plugin_options(self.registry, "backend", self._section("backend"), path="backend")

    def build_metrics(self) -> dict[str, Any]:
        nodes = self._section("metrics", {}) or {}
        return {key: build_plugin(self.registry, "metric", node, path=f"metrics.{key}") for key, node in nodes.items() if node}

    def _messages(self, prompts: PromptBuilder | None, sample: Sample, *, required: bool) -> Any:
        if prompts is None:
            return None
        if required:
            return prompts.render(sample)
        try:  # a backend that sends no messages (replay) records them where they render
            return prompts.render(sample)
        except DataError:
            return None

    def generation_phase(self, samples: list[Sample], *, resume: bool, uses_messages: bool) -> GenerationPhase:
        """The run's generation phase over ``samples`` (built the same way in a pre-forked child)."""
        registry = self.registry
        generation = generation_from_config(self._section("generation", {}) or {})
        head = build_plugin(registry, "head", self._section("head", {"name": "lm"}), path="head")
        mode = getattr(head, "mode", "generate")
        parser = make_parser(registry, self._section("parser")) if mode == "generate" else None
        prompts = self.make_prompts() if mode == "generate" else None
        tools = self.make_tools() if mode == "generate" else None
        return GenerationPhase(
            self, samples, generation=generation, head=head, mode=mode, parser=parser, prompts=prompts, tools=tools,
            resume=resume, uses_messages=uses_messages,
        )

    # -- running -----------------------------------------------------------------------
    def run(self) -> RunSummary:
        from evalkit.forked import release_prefork

        self.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in (METRICS_FILE, "report.xlsx", "report.html"):
            (self.run_dir / stale).unlink(missing_ok=True)  # a failed re-run must not look finished
        self.check_top_level()
        backend_factory = self.check_backend_config()
        run_cfg, _ = split_section("run", self._section("run", {}))
        forks = self._forks(run_cfg, backend_factory)
        if not forks:
            release_prefork()  # a run that loads a model (or run.fork=false) has no use for it
        samples = self.load_samples()
        data_path = self._section("data", {}).get("path")
        previous = read_run_info(self.run_dir)
        info = write_run_info(self.run_dir, self.cfg, samples, resolve_path(data_path) if data_path else "", fingerprint=self.fingerprint())
        same_setup = previous.get("fingerprint") in (None, info["fingerprint"]) and previous.get("dataset", {}).get("sha256") in (None, info["dataset"]["sha256"])
        resume = bool(run_cfg.get("resume", True))
        if resume and not same_setup and (self.run_dir / "predictions.jsonl").exists():
            log.warning(
                "%s holds predictions of a different data file or backend/prompt/parser/generation setup; "
                "starting afresh (responses already in the cache are still reused)", self.run_dir,
            )
            resume = False
        by_index = {s.index: s for s in samples}
        uses_messages = bool(getattr(backend_factory, "uses_messages", True))
        # The pre-forked child (console script) starts on the requests before this process
        # builds anything more.
        call = self._submit_to_prefork(GenerationJob(self.cfg, str(self.run_dir), samples, resume, uses_messages, self.show_progress)) if forks else None
        try:
            phase = self.generation_phase(samples, resume=resume, uses_messages=uses_messages)
        except BaseException:  # a bad head/parser/prompt option: stop the child it was also handed to
            if call is not None:
                call.interrupt()
                call.wait()
            raise
        parser = phase.parser
        # A light backend (replay, API) needs no torch: the metrics, whose libraries take
        # seconds to import, load while it works: in the parent while a forked child sends the
        # requests (two cores, two GILs), or else on a thread.
        if forks:
            metrics, outcome = self._generate_forked(phase, call)
        else:
            metrics_job = MetricsJob(self.build_metrics, background=bool(getattr(backend_factory, "light", False)))
            outcome = phase.run(check=metrics_job.raise_if_failed)
            metrics = metrics_job.result()
        records = [r for r in outcome.records if r["index"] in by_index]
        try:
            finished = {r["index"] for r in records}
            missing = [s.index for s in samples if s.index not in finished]
            if missing:
                raise BackendError(f"the backend returned no result for {len(missing)} sample(s) (first index {missing[0]})", where="backend")
            summary = self.compute_metrics(records, metrics, failed=run_cfg.get("failed", "exclude"), parser=parser)
        finally:  # in dataset order, one row each: with the per-sample scores unless scoring failed
            rewrite_predictions(self.run_dir, records)
        summary.update(outcome.backend_stats)
        summary.update(run_status(summary, max_failed=float(run_cfg.get("max_failed", 0.0))))
        summary["wall_time_s"] = round(outcome.elapsed_s, 3)
        self.write_metrics(summary)
        return RunSummary(run_dir=self.run_dir, metrics=summary, records=records, rows={s.index: s.row for s in samples})

    def _forks(self, run_cfg: Mapping[str, Any], backend_factory: Any) -> bool:
        """Whether the generation phase runs in a forked child (``run.fork``: auto or false;
        ``Pipeline(fork=True)`` forces it, for tests)."""
        setting = run_cfg.get("fork", "auto")
        if setting not in ("auto", False):
            raise ConfigError(f"run.fork must be auto or false, got {setting!r}", where="run.fork", fix="run.fork=auto (the default) or run.fork=false")
        if not getattr(backend_factory, "light", False):
            return False
        if self.fork is not None:
            return self.fork
        from evalkit.forked import can_fork, has_prefork

        return setting == "auto" and ((self._default_registry and has_prefork()) or can_fork())

    def _submit_to_prefork(self, job: "GenerationJob") -> Any:
        """The job's handle in the console script's pre-forked child, or None (fork afresh)."""
        from evalkit.forked import take_prefork

        prefork = take_prefork() if self._default_registry else None
        if prefork is None:
            return None
        call = prefork.submit(run_generation_job, job)
        if call is not None:
            log.debug("generating in the pre-forked child (pid %d) while the metrics load", call.pid)
        return call

    def _generate_forked(self, phase: GenerationPhase, call: Any = None) -> tuple[dict[str, Any], GenerationOutcome]:
        """The phase in a forked child (``call``: one already started) while this process
        builds the metrics."""
        from evalkit.forked import ForkedCall

        if call is None:
            call = ForkedCall(phase.run)
            log.debug("generating in a forked child (pid %d) while the metrics load", call.pid)
        try:
            # On a thread, while this one watches the child: a child that fails at once (no
            # server, a bad key) is reported now, not after torch's import. The thread holds
            # the GIL alone meanwhile (this one waits), so the import runs at full speed.
            loading = MetricsJob(self._load_metrics_and_reports, background=True)
            while not loading.wait(0.05):
                if call.poll() and call.failed():
                    call.result()  # raises the child's error
            metrics = loading.result()
        except BaseException:
            call.interrupt()  # a bad metric option (or Ctrl-C) ends the run early, not at the end
            call.wait()  # the child saves what it finished before it ends
            raise
        try:
            return metrics, call.result()
        except KeyboardInterrupt:  # maybe sent to this process only (kill -INT): pass it on
            call.interrupt()
            call.wait()
            raise

    def _load_metrics_and_reports(self) -> dict[str, Any]:
        metrics = self.build_metrics()
        from evalkit.warmup import REPORT_MODULES, preload

        preload(REPORT_MODULES)  # the child is still at work: the reports' imports cost nothing now
        # The heap now holds torch's and torchmetrics' module objects, which live as long as the
        # process: keep them out of every later collection (which would otherwise traverse them
        # again and again while records and reports are built).
        gc.freeze()
        return metrics

    def _check_backend(self, backend: Any, mode: str) -> None:
        name = self._section("backend", {}).get("name")
        if not isinstance(backend, Backend):
            raise PluginError(
                f"backend '{name}' built a {type(backend).__name__}, which lacks generate(requests, on_result) / close()",
                where="backend.name",
                fix="the plugin must return an object following evalkit.types.Backend",
            )
        if mode == "score" and not callable(getattr(backend, "score", None)):
            raise ConfigError(
                f"backend '{name}' cannot score tokens for head '{self._section('head', {}).get('name')}'",
                where="backend.name",
                fix="use a backend that loads weights (backend=hf)",
            )

    def compute_metrics(self, records: list[dict[str, Any]], metrics: dict[str, Any], *, failed: str = "exclude", parser: ParserRunner | None = None) -> dict[str, Any]:
        empty = parser.empty() if parser is not None else None
        scored = scored_records(records, failed=failed, empty=empty)
        update_metrics(metrics, scored)
        add_sample_scores(metrics, scored)
        summary = metric_results(metrics, any_scored=bool(scored))
        summary.update(record_counts(records, num_scored=len(scored)))
        save_metric_states(self.run_dir, metrics, self._section("metrics", {}) or {})
        return summary

    def write_metrics(self, summary: dict[str, Any]) -> Path:
        path = self.run_dir / METRICS_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        tmp.replace(path)
        return path


@dataclass
class GenerationJob:
    """A pipeline's generation phase as data, for a child forked before the config existed
    (:class:`evalkit.forked.Prefork`): it rebuilds the phase from these and the default
    registry. Picklable: the config, the samples and plain values."""

    cfg: Any
    run_dir: str
    samples: list[Sample]
    resume: bool
    uses_messages: bool
    show_progress: bool


def run_generation_job(job: GenerationJob) -> GenerationOutcome:
    """Run ``job`` here (in the pre-forked child): the same phase the parent would have run."""
    pipeline = Pipeline(job.cfg, job.run_dir, show_progress=job.show_progress, fork=False)
    return pipeline.generation_phase(job.samples, resume=job.resume, uses_messages=job.uses_messages).run()
