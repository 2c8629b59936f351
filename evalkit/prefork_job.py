"""The console script's pre-forked child: when to fork it, and how it takes on the job.

``evalkit key=value ...`` forks one child (:class:`evalkit.forked.Prefork`) before Hydra
composes the config. It imports what a light backend's requests need (for ``backend=api``
on the command line, aiohttp) on the other core, then runs the generation phase as its one
job; see docs/design.md ("Fixed cost"). Forked before Hydra's job began, it takes on what
the job set up when the job is handed over (:func:`job_context`): the environment (with
``hydra.job.env_set``), the working directory, Hydra's config (for ``${hydra:...}``) and the
job's logging (console and ``run.log``).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence


CONFIG_SOURCE_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")


def wanted(args: Sequence[str]) -> bool:
    """A plain run: overrides and where the config comes from (``--config-dir`` ...), no
    ``-m``, ``--cfg``, ``--info`` or other flag."""
    return all(not a.startswith("-") or a.split("=", 1)[0] in CONFIG_SOURCE_FLAGS for a in args)


def backend_on_command_line(args: Sequence[str]) -> str | None:
    """The backend that ``backend=NAME`` (or ``backend.name=NAME``) picks, the last one winning."""
    name = None
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") in ("backend", "backend.name") and value:
            name = value.strip("'\"")
    return name


def start(args: Sequence[str]) -> None:
    """Fork the pre-forked child for this plain run, where that is safe (Linux, one thread)."""
    if not wanted(args):
        return
    from evalkit.forked import start_prefork
    from evalkit.warmup import warm_requests

    backend = backend_on_command_line(args)
    start_prefork(lambda: warm_requests(backend), job_context)


def job_context() -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """In the parent, when the job is handed over: what the child calls first."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.instance().cfg if HydraConfig.initialized() else None
    return enter_job, (dict(os.environ), os.getcwd(), hydra_cfg)


def enter_job(environ: dict[str, str], cwd: str, hydra_cfg: Any) -> None:
    """In the child: the parent's environment, working directory, Hydra config and logging."""
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    if hydra_cfg is not None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.core.utils import configure_log

        HydraConfig.instance().set_config(hydra_cfg)
        configure_log(hydra_cfg.hydra.job_logging, hydra_cfg.hydra.verbose)
    from evalkit.secrets import install_log_redaction

    install_log_redaction()
