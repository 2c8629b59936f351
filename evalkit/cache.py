"""A response cache on embedded SQLite, shared by every backend that generates text.

Why: re-running a command after a crash, ``kill -9`` or a sweep job restart must send only
what is missing. Each successful completion is stored as soon as it arrives, keyed by
everything that determines the answer — backend kind, endpoint/model identity, the
messages, the generation settings, and the sample's position within ``n`` — so a changed
prompt or temperature never returns a stale answer. Failures are never stored.

The database runs in WAL mode with a busy timeout, so parallel jobs (Hydra joblib launcher,
shards on one machine) can share it without lost or duplicated entries. Keys are SHA-256
digests; no API key or header is part of what is stored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

DEFAULT_FILENAME = "responses.sqlite3"


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("evalkit"))


def cache_key(identity: Mapping[str, Any], messages: Any, generation: Mapping[str, Any], sample_index: int) -> str:
    """Digest of everything that determines one completion.

    ``identity`` holds the backend kind and what names the model (base URL + served name,
    or checkpoint path + adapter). ``sample_index`` is the position within ``n`` samples.
    """
    payload = {"identity": dict(identity), "messages": messages, "generation": dict(generation), "i": sample_index}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """``get_many`` / ``put`` over one SQLite file; safe across threads and processes."""

    def __init__(self, directory: str | Path | None = None, *, enabled: bool = True, filename: str = DEFAULT_FILENAME) -> None:
        self.enabled = enabled
        self.path: Path | None = None
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if not enabled:
            return
        directory = Path(directory).expanduser() if directory else default_cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / filename
        self._conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=60000")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
        )

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        if not self._conn:
            return {}
        keys = list(keys)
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, value in self._conn.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk):
                    found[key] = json.loads(value)
        return found

    def get(self, key: str) -> dict[str, Any] | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        """Store one successful response (durable before returning)."""
        if not self._conn:
            return
        blob = json.dumps(dict(value), ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)", (key, blob, time.time())
            )

    def put_many(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Store several successful responses in one transaction (a finished batch/chunk)."""
        if not self._conn:
            return
        now = time.time()
        rows = [(key, json.dumps(dict(value), ensure_ascii=False), now) for key, value in items]
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)", rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def __len__(self) -> int:
        if not self._conn:
            return 0
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        if self._conn:
            with self._lock:
                self._conn.close()
            self._conn = None

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
