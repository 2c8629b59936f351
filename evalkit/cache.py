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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from evalkit.types import GenerationConfig, Request, Result

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
                    try:
                        entry = json.loads(value)
                    except ValueError:
                        continue  # a torn or foreign row is a miss, not a crash
                    if isinstance(entry, dict):
                        found[key] = entry
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


# -- one policy for every text backend -----------------------------------------------------
#: Fields of a :class:`~evalkit.types.Result` kept per cached sample besides its text.
_FIRST_ONLY = ("usage", "latency_s", "tool_calls", "finish_reason", "reasoning")


def cache_prompt(prompt: Any, request: "Request | None" = None) -> Any:
    """What a completion was asked: the messages (or rendered text), plus the offered tools and
    ``tool_choice`` when the request has them (function calling answers differently)."""
    if request is None or (request.tools is None and request.tool_choice is None):
        return prompt
    return {"prompt": prompt, "tools": request.tools, "tool_choice": request.tool_choice}


def _valid(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("text"), str)


@dataclass
class CachedGeneration:
    """Split-cached / store-finished for one ``generate`` call of a text backend.

    The rule for sampled outputs (``temperature > 0``): answers are reused only when
    ``generation.seed`` is set (:attr:`GenerationConfig.deterministic`); without a seed each
    run draws fresh samples and nothing is stored. A malformed entry is a miss.

    ``identity`` is the backend's ``cache_identity`` (a mapping, or the method itself, called
    only when the cache is used); ``extras`` are settings outside ``GenerationConfig`` that
    change answers (e.g. beam width).
    """

    cache: "ResponseCache | None"
    identity: "Mapping[str, Any] | Callable[[], Mapping[str, Any]]"
    generation: "GenerationConfig"
    extras: Mapping[str, Any] = field(default_factory=dict)
    keys: dict[int, list[str]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.cache is not None and bool(self.cache.enabled) and self.generation.deterministic

    def split(self, prompts: Iterable[tuple[int, Any]]) -> tuple[list["Result"], list[int]]:
        """``(cached results, indexes still to generate)`` for ``(index, prompt)`` pairs, in order."""
        items = list(prompts)
        if not self.active:
            return [], [index for index, _ in items]
        gen = {**self.generation.to_dict(), **dict(self.extras)}
        identity = self.identity() if callable(self.identity) else self.identity
        n = self.generation.n
        for index, prompt in items:
            self.keys[index] = [cache_key(identity, prompt, gen, i) for i in range(n)]
        found = self.cache.get_many(k for index, _ in items for k in self.keys[index])  # type: ignore[union-attr]
        hits: list[Result] = []
        misses: list[int] = []
        for index, _ in items:
            entries = [found.get(k) for k in self.keys[index]]
            if all(_valid(e) for e in entries):
                hits.append(result_from_entries(index, entries))  # type: ignore[arg-type]
            else:
                misses.append(index)
        return hits, misses

    def entries(self, result: "Result") -> list[tuple[str, dict[str, Any]]]:
        """The cache rows of one finished result (none for failures or unknown indexes)."""
        keys = self.keys.get(result.index)
        if not self.active or not keys or not result.ok or result.outputs is None or len(result.outputs) != len(keys):
            return []
        rows = []
        for i, (key, text) in enumerate(zip(keys, result.outputs)):
            value: dict[str, Any] = {"text": text}
            if i == 0:
                value.update({name: getattr(result, name) for name in _FIRST_ONLY if getattr(result, name) is not None})
            rows.append((key, value))
        return rows

    def store(self, results: Sequence["Result"]) -> None:
        """Store finished results in one transaction (a batch, a chunk, a drained queue)."""
        rows = [row for result in results for row in self.entries(result)]
        if rows:
            self.cache.put_many(rows)  # type: ignore[union-attr]


def result_from_entries(index: int, entries: Sequence[Mapping[str, Any]]) -> "Result":
    """A cached :class:`~evalkit.types.Result`; original latency and usage are kept."""
    from evalkit.types import Result

    first = entries[0]

    def pick(name: str, kind: type | tuple[type, ...]) -> Any:
        value = first.get(name)
        return value if isinstance(value, kind) else None

    return Result(
        index=index,
        outputs=[str(e["text"]) for e in entries],
        latency_s=pick("latency_s", (int, float)),
        usage=dict(first["usage"]) if isinstance(first.get("usage"), dict) and first["usage"] else None,
        attempts=0,
        cached=True,
        tool_calls=pick("tool_calls", list),
        finish_reason=pick("finish_reason", str),
        reasoning=pick("reasoning", str),
    )
