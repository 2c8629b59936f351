"""Run one function in a forked child process while the parent does something else.

Why: with one GIL, a light backend's requests (replay, API) and the metrics' imports (torch,
torchmetrics: about 2 s of CPU) slow each other down even on a thread. Forked, the child
sends the requests and persists each record while the parent loads the metrics' libraries
on the other core; the child's return value (or its error, traceback attached) comes back
through a pipe. See docs/design.md ("Fixed cost").

Only where it is safe: Linux, ``os.fork``, no other thread running in the parent and torch
not loaded yet (:func:`can_fork`). The child dies with its parent (``PR_SET_PDEATHSIG``)
and never returns into the parent's stack: it leaves through ``os._exit``.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
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
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_fd)
            _die_with_parent(parent)
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signal.signal(signal.SIGINT, _interrupt_once)
            code = 0
            try:
                try:
                    data = _payload("ok", fn())
                except BaseException as exc:  # noqa: BLE001 - every error goes to the parent
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
        os.close(write_fd)
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
