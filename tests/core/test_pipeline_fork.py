"""A light backend's generation phase runs in a forked child while the parent builds the
metrics: same records and figures as in one process, in another process, stopped early
when the metrics cannot be built."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest
from omegaconf import OmegaConf

from evalkit.errors import BackendError, ConfigError
from evalkit import hookimpl
from evalkit.pipeline import Pipeline
from evalkit.plugins import build_plugin_set
from evalkit.registry import Registry
from evalkit.types import Result
from tests.core.test_experiments_compose import compose_with

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="evalkit forks its generation only on Linux; elsewhere runs take the in-process path the rest of the suite covers")


class EchoBackend:
    """Answers each request with its row's label and records which process answered."""

    light = True
    uses_messages = False

    def __init__(self, delay: float = 0.0, reverse: bool = False) -> None:
        self.delay = delay
        self.reverse = reverse

    def generate(self, requests, on_result):
        for request in (list(requests)[::-1] if self.reverse else requests):
            time.sleep(self.delay)
            on_result(Result(index=request.index, outputs=[json.dumps({"label": request.row["label"]}, ensure_ascii=False)], reasoning=f"pid {os.getpid()}"))

    def close(self):
        pass


def _broken_metric(wait_for: str = ""):
    """Fails once the child has finished a sample (so that there is a child to stop)."""
    deadline = time.monotonic() + 30
    while wait_for and time.monotonic() < deadline:
        path = os.path.join(wait_for, "predictions.jsonl")
        if os.path.exists(path) and open(path, encoding="utf-8").read().count("\n") >= 1:
            break
        time.sleep(0.01)
    raise ConfigError("this metric cannot be built", where="metrics.broken")


class RefusingBackend(EchoBackend):
    """Fails at once, as a backend whose server is down."""

    def generate(self, requests, on_result):
        raise BackendError("cannot connect to the API server", where="backend.base_url")


def _gated_metric(gate: str):
    """Built only once ``gate`` exists (a metrics import that takes its time)."""
    deadline = time.monotonic() + 60
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise ConfigError("the gate never opened: the run waited for the metrics", where="metrics.gated")
        time.sleep(0.01)
    return _FailingUpdate()


class _FailingUpdate:
    """Builds fine, fails when the finished records are scored."""

    def update(self, preds, targets):
        raise RuntimeError("scoring failed")


class _Plugin:
    @hookimpl
    def evalkit_register_backends(self, register):
        register("echo_pid", EchoBackend)
        register("refusing_for_tests", RefusingBackend)

    @hookimpl
    def evalkit_register_metrics(self, register):
        register("broken_for_tests", _broken_metric)
        register("failing_update_for_tests", _FailingUpdate)
        register("gated_for_tests", _gated_metric)


def _registry() -> Registry:
    return Registry(build_plugin_set(extra_plugins=[_Plugin()]))


def _cfg(*overrides: str):
    cfg = compose_with(["+experiment=toolcall", "run.progress=false", *overrides])
    OmegaConf.set_struct(cfg, False)
    cfg.backend = {"name": "echo_pid"}
    return cfg


def _run(tmp_path, name, *, fork, cfg=None):
    summary = Pipeline(cfg or _cfg(), tmp_path / name, registry=_registry(), show_progress=False, fork=fork).run()
    return summary, [json.loads(line) for line in (tmp_path / name / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]


def _without(record, *keys):
    return {k: v for k, v in record.items() if k not in keys}


def test_forked_and_in_process_runs_give_the_same_records_and_figures(tmp_path):
    forked, forked_rows = _run(tmp_path, "forked", fork=True)
    local, local_rows = _run(tmp_path, "local", fork=False)
    assert {r["reasoning"] for r in forked_rows} != {f"pid {os.getpid()}"}  # answered by another process
    assert {r["reasoning"] for r in local_rows} == {f"pid {os.getpid()}"}
    assert [_without(r, "reasoning") for r in forked_rows] == [_without(r, "reasoning") for r in local_rows]
    assert len(forked_rows) == 48 and all(r["scores"]["tool_exact_match"] is True for r in forked_rows)
    figures = lambda m: {k: v for k, v in m.items() if k != "wall_time_s"}  # noqa: E731
    assert figures(forked.metrics) == figures(local.metrics)
    assert forked.metrics["tool_f1"]["micro"]["f1"] == 1.0


def test_a_resumed_forked_run_keeps_finished_samples_and_sends_only_the_rest(tmp_path):
    run_dir = tmp_path / "resume"
    _run(tmp_path, "resume", fork=True, cfg=_cfg("data.limit=20"))
    first = {json.loads(line)["index"]: json.loads(line)["reasoning"] for line in (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()}
    summary, rows = _run(tmp_path, "resume", fork=True)
    assert len(rows) == 48 and summary.metrics["num_samples"] == 48
    by_index = {r["index"]: r["reasoning"] for r in rows}
    assert all(by_index[i] == pid for i, pid in first.items())  # kept, not sent again
    assert {by_index[i] for i in range(20, 48)}.isdisjoint(set(first.values()))  # a new child sent the rest


def test_a_metric_that_cannot_be_built_stops_the_child_early(tmp_path):
    cfg = _cfg()
    cfg.backend = {"name": "echo_pid", "delay": 0.5}  # 48 samples: 24 s if nobody stopped it
    cfg.metrics = {"broken": {"name": "broken_for_tests", "wait_for": str(tmp_path / "broken")}}
    with pytest.raises(ConfigError, match="this metric cannot be built"):
        Pipeline(cfg, tmp_path / "broken", registry=_registry(), show_progress=False, fork=True).run()
    rows = (tmp_path / "broken" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert 1 <= len(rows) < 48  # interrupted: what it finished is kept, the rest was never sent


def test_run_fork_false_keeps_the_generation_in_this_process(tmp_path):
    _, rows = _run(tmp_path, "off", fork=None, cfg=_cfg("run.fork=false"))
    assert {r["reasoning"] for r in rows} == {f"pid {os.getpid()}"}


def test_run_fork_rejects_other_values(tmp_path):
    with pytest.raises(ConfigError, match="run.fork must be auto or false"):
        _run(tmp_path, "bad", fork=None, cfg=_cfg("run.fork=always"))


@pytest.mark.parametrize("fork", [True, False])
def test_a_run_whose_scoring_fails_still_leaves_its_predictions_in_dataset_order(tmp_path, fork):
    cfg = _cfg()
    cfg.backend = {"name": "echo_pid", "reverse": True}  # answered last sample first
    cfg.metrics = {"failing": {"name": "failing_update_for_tests"}}
    with pytest.raises(RuntimeError, match="scoring failed"):
        Pipeline(cfg, tmp_path / "run", registry=_registry(), show_progress=False, fork=fork).run()
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["index"] for r in rows] == list(range(48))  # one row each, in order: not as appended


def test_a_child_that_fails_at_once_is_reported_before_the_metrics_are_built(tmp_path):
    gate = tmp_path / "metrics-may-load"
    cfg = _cfg()
    cfg.backend = {"name": "refusing_for_tests"}
    cfg.metrics = {"gated": {"name": "gated_for_tests", "gate": str(gate)}}
    try:
        with pytest.raises(BackendError, match="cannot connect to the API server"):
            Pipeline(cfg, tmp_path / "run", registry=_registry(), show_progress=False, fork=True).run()
    finally:
        gate.touch()  # lets the metrics thread end
