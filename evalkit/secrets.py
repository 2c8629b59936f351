"""Keeping API keys out of everything a run writes.

Keys are read from the environment (``backend.api_key_env``) and never enter the config.
Still, a user may paste one into an override (``+backend.api_key=sk-...``); Hydra saves
overrides to ``.hydra/`` before evalkit sees them, so the run dir's config dumps are
scrubbed: values of secret-looking keys, and any value of an environment variable named
by a secret-looking config key, are replaced with ``***``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Iterable

REDACTED = "<redacted>"  # valid YAML as a plain scalar, unlike ***
# Header or option names that hold credentials (used by backends to keep them out of logs).
SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|authorization)", re.IGNORECASE)
_SECRET_WORD = r"(?:api[_-]?key|apikey|token|secret|password|passwd|authorization)"
# A key *ending* in a secret word: api_key, hf_token, client_secret — not tokenizer, max_tokens.
# The value is one word: the words after it in a log line are left alone.
_KV = re.compile(rf"""(?P<key>[\w.\-]*{_SECRET_WORD})(?P<sep>[ \t]*[:=][ \t]*)(?P<value>'[^'\n"]*'|"[^"\n]*"|[^\s,\]\}}"']+)""", re.IGNORECASE)

# "Authorization: Bearer sk-..." — the scheme and the credential, not the rest of the line
# (Hydra writes a swept value with a space as "Bearer\\ sk-..." or quoted: 'Bearer sk-...').
_AUTH = re.compile(
    r"(?P<key>[\w.\-]*authorization)(?P<sep>[ \t]*[:=][ \t]*)"
    r"(?P<value>'[^'\n\"]*'|\"[^\"\n]*\"|(?:(?:bearer|basic|token|digest|apikey)(?:\\?[ \t])+)?[^\s,'\"\]\}]+)",
    re.IGNORECASE,
)

# JSON / Python reprs: "api_key": "sk-...", 'Authorization': 'Bearer sk-...'.
_QUOTED = re.compile(rf"""(?P<key>(?P<q>["'])[\w.\-]*{_SECRET_WORD}(?P=q))(?P<sep>[ \t]*:[ \t]*)(?P<q2>["'])(?P<value>[^"'\n]*)(?P=q2)""", re.IGNORECASE)

# Values that say a secret is absent; redacting them would only hide the reason.
_NOT_SECRETS = frozenset({"null", "none", "~", "true", "false", "set", "unset", "missing", "required", "empty", REDACTED.lower()})

# Environment variables whose values must never appear in a file evalkit writes.
_extra_secret_values: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. the API key read from the environment) for redaction."""
    if value and len(value) >= 4:
        _extra_secret_values.add(value)


def secret_values() -> Iterable[str]:
    return tuple(_extra_secret_values)


def redact_text(text: str) -> str:
    for value in _extra_secret_values:
        text = text.replace(value, REDACTED)

    def keep(key: str, value: str) -> bool:
        return key.endswith(("_env", "-env")) or value.lower() in _NOT_SECRETS

    def repl(m: re.Match[str]) -> str:
        if keep(m.group("key"), m.group("value")):
            return m.group(0)
        return f"{m.group('key')}{m.group('sep')}{REDACTED}"

    def repl_quoted(m: re.Match[str]) -> str:
        if keep(m.group("key").strip("\"'"), m.group("value")):
            return m.group(0)
        q = m.group("q2")
        return f"{m.group('key')}{m.group('sep')}{q}{REDACTED}{q}"

    text = _QUOTED.sub(repl_quoted, text)
    text = _AUTH.sub(repl, text)
    return _KV.sub(repl, text)


def redact_run_dir(run_dir: str | Path) -> None:
    """Scrub ``.hydra/*.yaml`` and ``run.log`` in a run directory, in place."""
    run_dir = Path(run_dir)
    # run_info.json is not listed: it is JSON, written already redacted (write_run_info).
    for path in list((run_dir / ".hydra").glob("*.yaml")) + [run_dir / "run.log"]:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        clean = redact_text(text)
        if clean != text:
            path.write_text(clean, encoding="utf-8")


def env_secret(name: str | None) -> str | None:
    """Read a secret from the environment and register it for redaction."""
    if not name:
        return None
    value = os.environ.get(name)
    register_secret(value)
    return value


class RedactingFilter(logging.Filter):
    """Scrubs secrets from log records before any handler formats them (Hydra's launchers log
    each job's overrides, which may hold a pasted header or key)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


# Loggers that print job overrides themselves (Hydra's launchers).
LAUNCHER_LOGGERS = (
    "hydra._internal.core_plugins.basic_launcher",
    "hydra_plugins.hydra_joblib_launcher._core",
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
)


def _add_filter(target: logging.Filterer) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(RedactingFilter())


def install_log_redaction() -> None:
    """Attach :class:`RedactingFilter` to the root logger's handlers and to the launchers'
    loggers (logger filters survive Hydra re-configuring handlers for each job). Idempotent."""
    for handler in logging.getLogger().handlers:
        _add_filter(handler)
    for name in LAUNCHER_LOGGERS:
        _add_filter(logging.getLogger(name))
