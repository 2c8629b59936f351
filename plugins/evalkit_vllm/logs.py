"""vLLM's own log lines go to ``run.log``, not the console (unless ``--verbose``).

A tiny vLLM run prints ~90 lines (28 warnings) of engine internals to the terminal, burying
evalkit's progress and results. Before ``import vllm`` we ask vLLM not to configure logging
(``VLLM_CONFIGURE_LOGGING=0``), so its records propagate to the root logger like any
library's; a filter on the console handlers then keeps them out of the terminal while the
run's file handler (``run.log``) records them. A spawned engine process (``backend.isolate``,
data parallel) has no handlers of its own: it appends to the same ``run.log``, whose path
travels in ``EVALKIT_RUN_LOG``. Settings the user made (``VLLM_CONFIGURE_LOGGING``,
``VLLM_LOGGING_CONFIG_PATH``) and ``--verbose`` (``EVALKIT_VERBOSE=1``) leave vLLM's logging
as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import Iterator

RUN_LOG_ENV = "EVALKIT_RUN_LOG"
LOGGERS = ("vllm",)
# Other libraries' loggers that only speak while vLLM starts (torch's "Triton not available").
STARTUP_LOGGERS = ("torch._library.triton",)
_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


class DropVLLM(logging.Filter):
    """Keeps vLLM's records out of a console handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(LOGGERS)


def _user_configured() -> bool:
    return "VLLM_CONFIGURE_LOGGING" in os.environ or "VLLM_LOGGING_CONFIG_PATH" in os.environ


def route_vllm_logs() -> str | None:
    """Call before ``import vllm`` (again for each engine: Hydra rebuilds the handlers of
    every sweep job). Returns the file vLLM's lines go to; None (nothing changed) outside an
    evalkit run, with ``--verbose`` or when the user configured vLLM's logging."""
    if os.environ.get("EVALKIT_VERBOSE") == "1" or (_user_configured() and os.environ.get("VLLM_CONFIGURE_LOGGING") != "0"):
        return None
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    path = files[0].baseFilename if files else os.environ.get(RUN_LOG_ENV)
    if not path:
        return None  # a notebook or a script: vLLM's usual console logging
    os.environ["VLLM_CONFIGURE_LOGGING"] = "0"
    if files:
        os.environ[RUN_LOG_ENV] = path  # inherited by spawned engine processes
        for name in LOGGERS:  # vLLM imported earlier in this process configured its own
            logger = logging.getLogger(name)
            for handler in [h for h in logger.handlers if not isinstance(h, logging.FileHandler)]:
                logger.removeHandler(handler)
            logger.propagate = True
    elif path:
        handler = None
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(h, logging.FileHandler) and h.baseFilename == os.path.abspath(path) for h in logger.handlers):
                if handler is None:  # one handler for all of them, and none again on a later call
                    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
                    handler.setFormatter(logging.Formatter(_FORMAT))
                logger.addHandler(handler)
            logger.propagate = False
    for handler in root.handlers:
        if not isinstance(handler, logging.FileHandler) and not any(isinstance(f, DropVLLM) for f in handler.filters):
            handler.addFilter(DropVLLM())
    for name in STARTUP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.FileHandler) and h.baseFilename == path for h in logger.handlers):
            handler = logging.FileHandler(path, mode="a", encoding="utf-8")
            handler.setFormatter(logging.Formatter(_FORMAT))
            logger.addHandler(handler)
        logger.propagate = False
    level = os.environ.get("VLLM_LOGGING_LEVEL")
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if level:
            logger.setLevel(level.upper())
        elif logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return path


@contextlib.contextmanager
def warnings_to_run_log(routed: bool) -> Iterator[None]:
    """Python warnings raised inside (vLLM's import and engine start-up: deprecations) go to
    run.log when vLLM's logs are routed there; otherwise they are shown as usual."""
    if not routed:
        yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        yield
    for warning in caught:
        logging.getLogger("vllm.warnings").warning("%s: %s (%s:%s)", warning.category.__name__, warning.message, warning.filename, warning.lineno)
