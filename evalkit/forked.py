"""Run one function in a forked child process while the parent does something else.

Why: with one GIL, a light backend's requests (replay, API) and the metrics' imports (torch,
torchmetrics: about 2 s of CPU) slow each other down even on a thread. Forked, the child
sends the requests and persists each record while the parent loads the metrics' libraries
on the other core; the child's return value (or its error, traceback attached) comes back
through a pipe. See docs/design.md ("Fixed cost").

:class:`Prefork` goes one step earlier for the console script: a child forked before the
config is composed imports what the requests need while the parent composes, then takes the
generation phase as its one job.

Only where it is safe: Linux, ``os.fork``, no other thread running in the parent and torch
not loaded yet (:func:`can_fork`). The child dies with its parent (``PR_SET_PDEATHSIG``)
and never returns into the parent's stack: it leaves through ``os._exit``.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import select
import signal
import sys
import threading
import traceback
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1


def can_fork() -> bool:
    """True where forking this process is safe and worth it (see the module docstring)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and threading.active_count() == 1
        and "torch" not in sys.modules
    )


class ChildError(RuntimeError):
    """An error of the child that could not travel through the pipe as itself."""

    exit_code = 3


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # noqa: BLE001 - best effort: the child still finishes its work
        pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _interrupt_once(signum: int, frame: Any) -> None:
    """The child's Ctrl-C: the first SIGINT stops the work; later ones (the parent forwards
    the one it got, which a terminal also sent here) must not cut its cleanup short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _flush_all() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream has nothing to flush
            pass
    for handler in logging.getLogger().handlers + logging.getLogger("evalkit").handlers:
        try:
            handler.flush()
        except Exception:  # noqa: BLE001
            pass


def _payload(kind: str, value: Any) -> bytes:
    try:
        return pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result or error: send its text
        if kind == "error":
            text = "".join(traceback.format_exception_only(type(value), value)).strip()
            return pickle.dumps(("error", ChildError(text)))
        return pickle.dumps(("error", ChildError(f"the forked child's result cannot be sent back: {exc}")))


def _arm_interrupt() -> None:
    """In a child: the first SIGINT stops its work, later ones are ignored (see
    :func:`_interrupt_once`); a parent that ignores SIGINT passes that on unchanged."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt_once)


_SIGINT = {signal.SIGINT}
_sigint_was_blocked = False  # in a child: whether the parent had SIGINT blocked before the fork


def _fork() -> int:
    """``os.fork()`` with SIGINT blocked across it. The parent gets its mask back at once; the
    child keeps SIGINT blocked and unblocks it only inside ``try`` blocks that end in
    ``os._exit``: a Ctrl-C (or :meth:`ForkedCall.interrupt`) arriving at any other moment
    waits there, and never raises a KeyboardInterrupt that would unwind into the parent's stack."""
    global _sigint_was_blocked
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGINT)
    pid = os.fork()
    if pid == 0:
        _sigint_was_blocked = signal.SIGINT in old
    else:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


def _allow_interrupt(allowed: bool) -> None:
    """In a child: let SIGINT in (``allowed``) or hold it back again."""
    if not _sigint_was_blocked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK if allowed else signal.SIG_BLOCK, _SIGINT)


def _run_child(fn: Callable[[], Any], write_fd: int) -> None:
    """The child's whole life after the fork: run ``fn``, send its value or error through
    ``write_fd``, leave through ``os._exit`` (never back into the parent's stack). SIGINT is
    let in only while ``fn`` runs."""
    code = 0
    try:
        try:
            _allow_interrupt(True)
            value = fn()
            _allow_interrupt(False)
            data = _payload("ok", value)
        except BaseException as exc:  # noqa: BLE001 - every error goes to the parent
            _allow_interrupt(False)
            if hasattr(exc, "add_note"):
                exc.add_note("in the forked child (pid %d):\n%s" % (os.getpid(), "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()))
            data = _payload("error", exc)
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)
    except BaseException:  # noqa: BLE001 - the parent sees no result and says so
        code = 1
    finally:
        _flush_all()
        os._exit(code)


class ForkedCall(Generic[T]):
    """``fn()`` running in a forked child; :meth:`result` waits for it and returns its value
    or raises its error (with the child's traceback as a note, shown by ``--verbose``).
    Objects alive at the fork are frozen out of garbage collection (``gc.freeze``), as
    Python advises for a fork without exec: meant for a run's own process, not a long-lived one."""

    def __init__(self, fn: Callable[[], T]) -> None:
        _flush_all()  # buffered output must not be written twice, once by each process
        # What exists now lives on in both processes: out of every later collection in
        # either (and no copy-on-write of its pages when the child's collector would touch them).
        gc.freeze()
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        pid = _fork()
        if pid == 0:  # the child
            os.close(read_fd)
            _die_with_parent(parent)
            _arm_interrupt()
            _run_child(fn, write_fd)
        os.close(write_fd)
        self._attach(pid, read_fd)

    @classmethod
    def attached(cls, pid: int, read_fd: int) -> "ForkedCall[Any]":
        """The handle of a call already running in child ``pid`` (see :class:`Prefork`)."""
        call: ForkedCall[Any] = cls.__new__(cls)
        call._attach(pid, read_fd)
        return call

    def _attach(self, pid: int, read_fd: int) -> None:
        self.pid = pid
        self._pipe = os.fdopen(read_fd, "rb")
        self._outcome: tuple[str, Any] | None = None
        self._exit_code: int | None = None

    def interrupt(self) -> None:
        """Ask the child to stop as Ctrl-C would (it keeps what it finished); only the first
        request counts, so forwarding a Ctrl-C the child also got is harmless."""
        if self._exit_code is None:
            try:
                os.kill(self.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def _reap(self) -> int:
        if self._exit_code is None:
            self._pipe.close()
            _, status = os.waitpid(self.pid, 0)
            self._exit_code = os.waitstatus_to_exitcode(status)
        return self._exit_code

    def _collect(self) -> tuple[str, Any]:
        if self._outcome is None:
            data = self._pipe.read()  # until the child closes its end
            code = self._reap()
            if not data:
                self._outcome = ("error", ChildError(f"the forked child (pid {self.pid}) ended without a result (exit status {code})"))
            else:
                enabled = gc.isenabled()
                gc.disable()  # thousands of new containers: no collections over the parent's heap meanwhile (0.16 s -> 0.02 s)
                try:
                    self._outcome = pickle.loads(data)
                except Exception as exc:  # noqa: BLE001
                    self._outcome = ("error", ChildError(f"the forked child's result could not be read: {exc}"))
                finally:
                    if enabled:
                        gc.enable()
        return self._outcome

    def poll(self, timeout: float = 0.0) -> bool:
        """True once the child has sent its outcome or ended (:meth:`result` will not wait long)."""
        if self._outcome is not None:
            return True
        readable, _, _ = select.select([self._pipe], [], [], timeout)
        return bool(readable)

    def failed(self) -> bool:
        """Whether the child's outcome is an error (waits for the outcome)."""
        return self._collect()[0] == "error"

    def result(self) -> T:
        """Wait for the child; its return value, or its error raised here."""
        kind, value = self._collect()
        if kind == "error":
            raise value
        return value

    def wait(self) -> None:
        """Wait for the child to end, ignoring its outcome (the parent is failing already)."""
        while self._exit_code is None:
            try:
                if not self._pipe.closed:
                    self._pipe.read()
                self._reap()
            except BaseException:  # noqa: BLE001 - a second Ctrl-C while waiting: keep waiting
                continue


class Prefork:
    """A child forked at the start of a console-script run, before the config exists.

    While the parent composes the config, the child imports what a light backend's requests
    need (``warm``: aiohttp, the pipeline's modules, the plugin registry); then it waits for
    one job. :meth:`submit` hands it a picklable call and returns its :class:`ForkedCall`
    handle, so the requests start without paying for those imports (they were made on the
    other core) or for forking a process that has grown. :meth:`cancel` ends it unused (a
    run that loads a model, ``run.fork=false``); it also ends when the parent does (pipe
    closed, ``PR_SET_PDEATHSIG``). A Ctrl-C while it waits ends it quietly.

    ``context`` is called in the parent at :meth:`submit`; it returns a picklable
    ``(function, args)`` that the child calls first, to take on what the parent set up after
    the fork (its environment, working directory, logging).
    """

    def __init__(self, warm: Callable[[], None], context: Callable[[], tuple[Callable[..., Any], tuple[Any, ...]]] | None = None) -> None:
        self._context = context
        _flush_all()
        job_read, job_write = os.pipe()
        result_read, result_write = os.pipe()
        parent = os.getpid()
        pid = _fork()
        if pid == 0:  # the child
            os.close(job_write)
            os.close(result_read)
            _die_with_parent(parent)
            _arm_interrupt()
            self._serve(warm, job_read, result_write)
        os.close(job_read)
        os.close(result_write)
        self.pid = pid
        self._job: int | None = job_write
        self._result: int | None = result_read

    @staticmethod
    def _serve(warm: Callable[[], None], job_read: int, result_write: int) -> None:
        chunks: list[bytes] = []

        def receive() -> None:  # meanwhile: the parent's write must not wait for the warm-up
            with os.fdopen(job_read, "rb") as pipe:
                chunks.append(pipe.read())

        try:
            _allow_interrupt(True)  # idle: a Ctrl-C ends it quietly
            reader = threading.Thread(target=receive, name="evalkit-prefork-job", daemon=True)
            reader.start()
            try:
                warm()
            except Exception:  # noqa: BLE001 - the job's own imports raise it where it belongs
                pass
            reader.join()
            data = b"".join(chunks)
            if not data:  # cancelled, or the parent is gone
                os._exit(0)
            gc.disable()  # thousands of new objects (the samples): no collection over them meanwhile
            enter, enter_args, fn, args = pickle.loads(data)
            gc.enable()
            _allow_interrupt(False)  # until the job runs (in _run_child's try)
        except BaseException:  # noqa: BLE001 - a Ctrl-C while waiting: the parent reports it
            os._exit(0)

        def job() -> Any:
            if enter is not None:
                enter(*enter_args)
            return fn(*args)

        _run_child(job, result_write)

    def submit(self, fn: Callable[..., T], *args: Any) -> "ForkedCall[T] | None":
        """Run ``fn(*args)`` (picklable: a module-level function and plain data) in the child;
        None when the child is gone (the caller forks afresh)."""
        if self._job is None or self._result is None:
            return None
        enter, enter_args = self._context() if self._context is not None else (None, ())
        data = pickle.dumps((enter, enter_args, fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        job, self._job = self._job, None
        try:
            with os.fdopen(job, "wb") as pipe:
                pipe.write(data)
        except OSError:  # BrokenPipeError: the child ended meanwhile
            self.cancel()
            return None
        result, self._result = self._result, None
        return ForkedCall.attached(self.pid, result)

    def cancel(self) -> None:
        """End the child unused (idempotent; nothing once a job was handed over): it holds
        nothing yet, so it is simply killed."""
        if self._job is not None:
            os.close(self._job)
            self._job = None
        if self._result is not None:
            os.close(self._result)
            self._result = None
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)


_prefork: Prefork | None = None


def start_prefork(warm: Callable[[], None], context: Callable[[], tuple[Callable[..., Any], tuple[Any, ...]]] | None = None) -> Prefork | None:
    """Fork the process's :class:`Prefork` child where :func:`can_fork` allows (once)."""
    global _prefork
    if _prefork is None and can_fork():
        import atexit

        _prefork = Prefork(warm, context)
        atexit.register(release_prefork)
    return _prefork


def take_prefork() -> Prefork | None:
    """The waiting :class:`Prefork` child, handed out once (None when there is none)."""
    global _prefork
    prefork, _prefork = _prefork, None
    return prefork


def release_prefork() -> None:
    """End the waiting :class:`Prefork` child, if any, unused."""
    prefork = take_prefork()
    if prefork is not None:
        prefork.cancel()


def has_prefork() -> bool:
    return _prefork is not None
