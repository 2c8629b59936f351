"""The ``evalkit`` console script: a Hydra app whose errors are one clear line.

Hydra composes the config (``+experiment=NAME``, overrides, ``-m`` sweeps); the task function
hands it to :class:`evalkit.pipeline.Pipeline`. Any :class:`EvalKitError`, and any config
composition error Hydra raises, ends the process with one line on stderr and a non-zero
exit status; ``--verbose`` (or ``hydra.verbose=true`` / ``HYDRA_FULL_ERROR=1``) shows the
traceback instead. Heavy libraries are only imported inside the task, so ``evalkit --help``
stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from evalkit.errors import EvalKitError
from evalkit.resolvers import install_hydra_integration

log = logging.getLogger("evalkit")

VERBOSE_ENV = "EVALKIT_VERBOSE"


def _verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1" or os.environ.get("HYDRA_FULL_ERROR") == "1"


def one_line(exc: BaseException) -> str:
    """Collapse an exception message (Hydra's are multi-line) into a single line."""
    if isinstance(exc, EvalKitError):
        return str(exc)
    parts: list[str] = []
    for piece in (str(exc), str(exc.__cause__) if exc.__cause__ else ""):
        for line in piece.splitlines():
            line = line.strip()
            if line and line not in parts and not line.startswith("object_type") and not line.startswith("Set the environment variable"):
                parts.append(line)
    text = "; ".join(parts) or type(exc).__name__
    if _is_config_error(exc):
        hint = "check the override; `evalkit --help` lists config groups and keys"
        if "LexerNoViableAlt" in type(exc.__cause__).__name__ or "no viable alternative" in text:
            hint = "quote values with spaces, braces, ~ or non-ASCII text: key='value'"
        return f"{text} (fix: {hint})"
    return f"{type(exc).__name__}: {text} (run again with --verbose for the traceback)"


def _is_config_error(exc: BaseException) -> bool:
    """Hydra composition / override-grammar / OmegaConf errors, as opposed to bugs in a run."""
    names = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    return bool(names & {"hydra", "omegaconf"})


def report_error(exc: BaseException) -> int:
    code = getattr(exc, "exit_code", 2)
    sys.stderr.write(f"evalkit: error: {one_line(exc)}\n")
    sys.stderr.flush()
    return code


def _run_and_report(func: Any) -> Any:
    """Replacement for Hydra's run_and_report: one line instead of a stack trace."""
    try:
        return func()
    except EvalKitError as exc:
        if _verbose():
            raise
        sys.exit(report_error(exc))
    except Exception as exc:
        if _verbose():
            raise
        sys.exit(report_error(exc))


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """Run one evaluation inside a Hydra job; returns the metrics summary."""
    from hydra.core.hydra_config import HydraConfig

    from evalkit.pipeline import Pipeline
    from evalkit.report import write_reports
    from evalkit.secrets import install_log_redaction, redact_run_dir

    install_log_redaction()
    run_dir = HydraConfig.get().runtime.output_dir
    redact_run_dir(run_dir)
    try:
        pipeline = Pipeline(cfg, run_dir, show_progress=bool(cfg.get("run", {}).get("progress", True)))
        summary = pipeline.run()
        write_reports(cfg, summary)
    finally:
        redact_run_dir(run_dir)  # also when the run failed: logs may hold what it saw
    return summary.metrics


@hydra.main(version_base="1.3", config_path="pkg://evalkit.conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> Any:
    multirun = False
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        pass
    try:
        return run_task(cfg)
    except Exception as exc:
        if _verbose() or cfg.get("verbose"):
            raise
        log.error("run failed: %s", one_line(exc))
        if multirun:
            # In a sweep one failing job must not stop the others: log it and go on.
            sys.stderr.write(f"evalkit: error: {one_line(exc)}\n")
            return {"error": one_line(exc)}
        sys.exit(report_error(exc))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--verbose" in args:
        args.remove("--verbose")
        os.environ[VERBOSE_ENV] = "1"
        os.environ["HYDRA_FULL_ERROR"] = "1"
    if any(a in ("hydra.verbose=true", "hydra.verbose=True", "verbose=true") for a in args):
        os.environ[VERBOSE_ENV] = "1"
        os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = [sys.argv[0]] + args
    install_hydra_integration()
    import hydra._internal.hydra as hydra_internal
    import hydra._internal.utils as hydra_utils

    hydra_utils.run_and_report = _run_and_report
    hydra_internal.run_and_report = _run_and_report
    try:
        _hydra_main()
    except KeyboardInterrupt:
        sys.stderr.write(
            "evalkit: interrupted; finished samples are saved in predictions.jsonl and the response cache "
            "(fix: re-run the same command to resume)\n"
        )
        sys.exit(130)
    from evalkit.sweep import FAILED_JOBS

    if FAILED_JOBS:
        sys.stderr.write(f"evalkit: error: {len(FAILED_JOBS)} sweep job(s) failed: {', '.join(FAILED_JOBS)} (see each job's run.log)\n")
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
