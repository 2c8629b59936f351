"""Run engines in spawned child processes and stream their answers back.

Why: a ``vllm.LLM`` never fully gives its accelerator memory back to the process that made
it (CUDA context, NCCL groups, allocator caches). Users who evaluate several checkpoints from
one script or notebook — run each engine in a child process
and let the operating system reclaim everything when it exits. ``backend.isolate: true``
does the same; ``backend.data_parallel_size: N`` starts N such children, each an independent
engine replica on its own ``tensor_parallel_size x pipeline_parallel_size`` devices with its
own share of the prompts (vLLM's ``LLM`` refuses ``data_parallel_size > 1`` in one process).

Children are started with ``spawn`` (CUDA cannot be forked) and are not daemons (vLLM starts
processes of its own). Each sends its finished chunks over one queue as soon as they are done,
so the parent persists them as they arrive, exactly as in-process generation does; a child
that fails sends its one-line error, and a child that dies (killed, out of host memory) is
noticed and reported with its exit code. A child whose parent disappears exits too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue as queue_module
import threading
import time
from typing import Any, Callable, Sequence

from evalkit import errors as evalkit_errors
from evalkit.errors import BackendError, EvalKitError

from evalkit_vllm.logs import route_vllm_logs
from evalkit_vllm.settings import Completion, Job

log = logging.getLogger("evalkit.vllm")

Item = tuple[int, list[dict[str, Any]]]
POLL_S = 0.5


def _watch_parent(parent_pid: int) -> None:
    """Exit when the parent is gone (``kill -9`` of evalkit must not leave an engine behind)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(3)


def _worker_main(rank: int, job: Job, items: Sequence[Item], results: Any, env: dict[str, str], parent_pid: int) -> None:
    """Entry point of a child: build the engine, generate, stream chunks, report the end."""
    os.environ.update(env)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    from evalkit_vllm.engine import Engine

    engine = Engine(job)
    try:
        engine.run(items, lambda chunk: results.put(("results", rank, chunk)))
        results.put(("done", rank, engine.prompts_sent))
    except BaseException as exc:  # report everything, then exit non-zero
        err = exc if isinstance(exc, EvalKitError) else engine.explain(exc)
        results.put(("error", rank, type(err).__name__, err.what, err.where, err.fix))
    finally:
        engine.close()
        # Let the queue's feeder thread flush before the interpreter tears down.
        results.close()
        results.join_thread()


def _rebuild_error(name: str, what: str, where: str | None, fix: str | None) -> EvalKitError:
    cls = getattr(evalkit_errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, EvalKitError)):
        cls = BackendError
    return cls(what, where=where, fix=fix)


def replica_envs(replicas: int, devices_per_replica: int, *, on_cpu: bool) -> list[dict[str, str]]:
    """Environment of each replica: its own GPUs (``CUDA_VISIBLE_DEVICES``), or on CPU its own
    cores (``VLLM_CPU_OMP_THREADS_BIND``) when there are enough; settings the user made win."""
    envs: list[dict[str, str]] = [{} for _ in range(replicas)]
    if replicas <= 1:
        return envs
    if on_cpu:
        if "VLLM_CPU_OMP_THREADS_BIND" in os.environ:
            return envs
        try:
            cores = sorted(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            return envs
        share = len(cores) // replicas
        if share >= 1:
            for rank in range(replicas):
                envs[rank]["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, cores[rank * share : (rank + 1) * share]))
        return envs
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        devices = [d.strip() for d in visible.split(",") if d.strip()]
    else:
        try:
            import torch

            devices = [str(i) for i in range(torch.cuda.device_count())]
        except Exception:  # pragma: no cover
            devices = []
    needed = replicas * devices_per_replica
    if len(devices) < needed:
        raise BackendError(
            f"data_parallel_size={replicas} x {devices_per_replica} device(s) per replica needs {needed} GPUs, {len(devices)} visible",
            where="backend.data_parallel_size",
            fix="lower backend.data_parallel_size (or tensor/pipeline_parallel_size), or expose more GPUs with CUDA_VISIBLE_DEVICES",
        )
    for rank in range(replicas):
        envs[rank]["CUDA_VISIBLE_DEVICES"] = ",".join(devices[rank * devices_per_replica : (rank + 1) * devices_per_replica])
    return envs


def run_in_children(job: Job, shards: Sequence[Sequence[Item]], envs: Sequence[dict[str, str]], on_chunk: Callable[[list[Completion]], None]) -> int:
    """Generate every shard in its own spawned process; ``on_chunk`` runs here, in order of
    arrival. Returns the number of prompts the engines received."""
    route_vllm_logs()  # the children inherit where vLLM's lines go (run.log) through the environment
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = []
    sent = 0
    failed = True
    try:
        for rank, (items, env) in enumerate(zip(shards, envs)):
            proc = ctx.Process(target=_worker_main, args=(rank, job, list(items), results, dict(env), os.getpid()), name=f"evalkit-vllm-{rank}")
            proc.start()
            procs.append(proc)
        pending = set(range(len(procs)))

        def handle(message: tuple[Any, ...]) -> None:
            nonlocal sent
            kind, rank = message[0], message[1]
            if kind == "results":
                on_chunk(message[2])
            elif kind == "done":
                pending.discard(rank)
                sent += int(message[2])
                log.info("vllm: engine process %d finished (%d prompt(s))", rank, int(message[2]))
            elif kind == "error":
                raise _rebuild_error(*message[2:])

        while pending:
            try:
                handle(results.get(timeout=POLL_S))
                continue
            except queue_module.Empty:
                pass
            dead = [rank for rank in pending if not procs[rank].is_alive()]
            if not dead:
                continue
            # A child that exited has flushed everything it sent: drain, then judge.
            while True:
                try:
                    handle(results.get(timeout=POLL_S))
                except queue_module.Empty:
                    break
            for rank in dead:
                if rank in pending:
                    code = procs[rank].exitcode
                    hint = " (killed: out of host memory?)" if code in (-9, 137) else ""
                    raise BackendError(
                        f"the vLLM engine process {rank} exited with code {code}{hint} before finishing; finished samples are saved",
                        where="backend.isolate",
                        fix="see the engine's log above; re-run the same command to resume",
                    )
        failed = False
        return sent
    finally:
        for proc in procs:
            if failed and proc.is_alive():
                proc.terminate()
            proc.join(timeout=30 if not failed else 10)
            if proc.is_alive():  # pragma: no cover - a wedged engine
                proc.kill()
                proc.join(timeout=5)
        results.close()
