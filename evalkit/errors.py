"""Errors that end a run with one clear line: what went wrong, where, and how to fix it.

Every error the CLI shows to a user is an :class:`EvalKitError`. The CLI prints
``str(error)`` (a single line) and exits non-zero; tracebacks are only shown with
``--verbose`` / ``hydra.verbose=true``. Per-sample problems are *not* errors: they are
recorded on the sample and counted (see ``pipeline``).
"""

from __future__ import annotations


class EvalKitError(Exception):
    """Base class: a fatal, user-facing problem.

    Args:
        what: what is wrong, in the user's terms.
        where: the place — ``file:line``, a config key path, a plugin name, a URL.
        fix: how to fix it (an override, a command, a file to check).
    """

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.format())

    def format(self) -> str:
        text = self.what.strip().replace("\n", " ")
        if self.where:
            text = f"{self.where}: {text}"
        if self.fix:
            text = f"{text} (fix: {self.fix.strip()})"
        return text


class ConfigError(EvalKitError):
    """A bad config key or value; ``where`` is the key path, e.g. ``backend.timeout``."""


class DataError(EvalKitError):
    """Bad input data; ``where`` is ``file:line`` (JSONL) or ``file[index]`` (JSON array)."""


class PluginError(EvalKitError):
    """Unknown, duplicate or broken plugin."""


class BackendError(EvalKitError):
    """A backend cannot work at all (unreachable server, auth failure, missing model).

    Raised to stop the whole run early; a single failed request is not a BackendError.
    """

    exit_code = 3


class MissingDependencyError(EvalKitError):
    """An optional heavy library is not installed; ``fix`` carries the pip command."""


def missing_dependency(module: str, extra: str, *, alternative: str | None = None) -> MissingDependencyError:
    """Build the standard "install the extra" error for a lazily imported library."""
    fix = f'pip install "evalkit[{extra}]"'
    if alternative:
        fix = f"{fix} ({alternative})"
    return MissingDependencyError(f"the Python package '{module}' is not installed", where=f"evalkit[{extra}]", fix=fix)


INCOMPLETE_EXIT = 4  # the run finished, but more samples failed than run.max_failed allows


def report_incomplete(metrics: dict, args: list[str]) -> int:
    """One loud line for a run whose failed samples exceed ``run.max_failed``, with the command
    that retries only them (finished samples are kept); returns :data:`INCOMPLETE_EXIT`."""
    import shlex
    import sys

    retry = " ".join(["evalkit", *(shlex.quote(a) for a in args)])
    sys.stderr.write(
        f"evalkit: INCOMPLETE: {metrics.get('num_failed')} of {metrics.get('num_samples')} samples failed and are left out of the metrics "
        f"(metrics.json: complete false; fix: re-run the same command to retry only them: {retry})\n"
    )
    sys.stderr.flush()
    return INCOMPLETE_EXIT
