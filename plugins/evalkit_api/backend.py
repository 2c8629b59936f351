"""``backend=api``: any OpenAI-compatible chat-completions server (OpenAI, vLLM, DashScope).

One asyncio event loop drives ``concurrency`` workers that share one HTTP connection pool.
Each finished sample goes to the response cache and then to ``on_result`` the moment it
completes, so a killed run loses only what was in flight; re-running the same command sends
only what is missing (the pipeline resumes ``predictions.jsonl``, the cache covers a new run
directory). A sample that still fails after ``max_retries`` is recorded with its reason and
the run goes on; a reply that dooms every request (bad key, unknown model, invalid request)
stops the run at once with one line.

Why aiohttp and a retry loop of our own: ``docs/design.md``.

Decisions worth knowing:

* **Off the loop**: the event loop runs on a helper thread and only does HTTP; finished
  results are handed to the calling thread, which stores each drained batch in the response
  cache (one transaction) and then calls ``on_result`` — SQLite and ``predictions.jsonl``
  never stall the requests in flight.
* **Cache**: :class:`evalkit.cache.CachedGeneration` (identity = kind, base URL(s), model,
  ``extra_body``; the key also covers messages, tools, generation settings and the index
  within ``n``). Sampled outputs are reused only when ``generation.seed`` is set.
  ``headers`` are not part of the identity (they may hold secrets).
* **Many endpoints, adaptive concurrency, hedging**: see :mod:`evalkit_api.endpoints` and
  :mod:`evalkit_api.adaptive`. ``stats()`` returns the counts the pipeline adds to
  ``metrics.json`` (``num_hedged``, per-endpoint requests/ok/errors/429s).
* **API key**: read from the environment variable ``api_key_env`` and sent as
  ``Authorization: Bearer``. Servers on loopback/private addresses need none. For any other
  host a missing variable is a warning, not an error (some gateways need no key); the server's
  401 then ends the run with a line naming the variable.
* **Unreachable server**: before the first request, ``GET {base_url}/models`` (any HTTP reply,
  404 included, counts as reachable; 3 tries). A refused connection ends the run with one line
  naming ``base_url``. Mid-run, a sample whose every attempt failed to connect does the same
  (the server went away; everything finished is already saved).
* **Latency** is that of the successful attempt (the model's speed, not our backoff); the
  number of attempts is recorded separately. Cached samples keep their original latency and
  token usage, so totals describe the responses, not this process's spend.
* **400/404/422** stop the run: with one request body shape for every sample, a rejected
  request means a wrong model name, URL or field that every other sample would hit too. So
  does a server that answers ``n > 1`` with fewer choices (it ignores ``n``).
* **Headers** holding credentials should reference the environment —
  ``+backend.headers.X-Api-Key='${oc.env:MY_KEY}'`` — so that Hydra's saved config keeps the
  reference, not the value. Values under secret-looking names are also registered for
  redaction.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import json
import logging
import queue
import threading
import time
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from evalkit.cache import CachedGeneration, cache_prompt
from evalkit.errors import BackendError, ConfigError, missing_dependency
from evalkit.secrets import SECRET_KEY, env_secret, redact_text, register_secret
from evalkit.types import GenerationConfig, Request, Result, chat_messages

from evalkit_api.adaptive import HedgePolicy
from evalkit_api.endpoints import Endpoint, EndpointPool
from evalkit_api.protocol import (
    AUTH_STATUS,
    Completion,
    MalformedResponse,
    TooFewChoices,
    build_payload,
    chat_url,
    error_message,
    is_retryable_status,
    normalize_base_url,
    parse_completion,
    retry_after_seconds,
)
from evalkit_api.retry import Backoff, FatalError, RetryableError

log = logging.getLogger("evalkit.api")

PREFLIGHT_TRIES = 3
LOOP_LAG_S = 0.1  # a hedge timer that fires this late means the event loop was stalled
_DONE = object()


def is_local_url(url: str) -> bool:
    """Loopback, private or link-local hosts: local servers (vLLM on a box) need no key."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def _import_aiohttp() -> Any:
    try:
        import aiohttp
    except ImportError:
        raise missing_dependency("aiohttp", "api") from None
    return aiohttp


EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def loop_runner(event_loop: str) -> tuple[str, Callable[[Any], Any]]:
    """``(name, run)`` for ``backend.event_loop``: ``auto`` is uvloop where it is installed
    (the ``api`` extra has it off Windows; about a third less CPU per request), else asyncio."""
    if event_loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if event_loop == "uvloop":
                raise missing_dependency("uvloop", "api") from None
        else:
            return "uvloop", uvloop.run
    return "asyncio", asyncio.run


def env_proxy(url: str) -> dict[str, Any]:
    """``proxy=`` / ``proxy_auth=`` for requests to ``url`` from HTTP(S)_PROXY / NO_PROXY, as
    curl and requests read them; ``{}`` for none. Looked up once per endpoint: aiohttp's own
    ``trust_env`` looks the proxy up (and reads ``~/.netrc``) on a worker thread for every
    request — two thread hand-offs per request, a third of the client's CPU at 64 in flight."""
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    try:
        proxy, auth = get_env_proxy_for_url(URL(url))
    except LookupError:
        return {}
    return {"proxy": proxy, "proxy_auth": auth}


class Handoff:
    """Results from the event loop to the calling thread, one hand-off per loop iteration.

    Replies that arrive together (the loop reads every ready socket in one iteration) go over
    as one list: the calling thread wakes once for them, not once each, and the loop does not
    wait on the GIL between them. Nothing is held back longer than that iteration."""

    def __init__(self, put: Callable[[Any], None]) -> None:
        self._put = put
        self._items: list[Any] = []

    def emit(self, item: Any) -> None:
        if not self._items:
            asyncio.get_running_loop().call_soon(self.flush)
        self._items.append(item)

    def flush(self) -> None:
        if self._items:
            items, self._items = self._items, []
            self._put(items)


class RunStats:
    """Counts for the end-of-run summary (and for benchmarks)."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.cached = 0
        self.attempts = 0
        self.retries = 0
        self.failures: collections.Counter[str] = collections.Counter()  # samples, by final reason
        self.attempt_failures: collections.Counter[str] = collections.Counter()  # attempts, by reason


class ApiBackend:
    """Chat completions over HTTP with adaptive concurrency, hedging, retries and a cache.

    Options (``backend.*``): ``base_url`` (the API root, e.g. ``http://127.0.0.1:8000/v1``,
    or a list of roots serving the same model; a pasted ``.../chat/completions`` is
    accepted), ``model`` (the served model name; when null, the only model ``/models``
    lists), ``api_key_env``, ``concurrency`` (per endpoint, the most in flight),
    ``adaptive_concurrency`` / ``min_concurrency`` (AIMD on sustained 429s), ``timeout``
    (seconds per attempt), ``max_retries`` (attempts after the first), ``backoff_*`` (see
    :class:`~evalkit_api.retry.Backoff`), ``hedge`` (null: on for loopback/private hosts
    only) with ``hedge_share`` / ``hedge_multiplier`` / ``hedge_floor``, ``endpoint_down_s``,
    ``headers`` (never logged), ``extra_body`` (merged into every request body) and
    ``event_loop`` (``auto``: uvloop where installed; ``asyncio``).
    """

    light = True  # needs no torch: the run may load the metrics' libraries behind the requests

    @classmethod
    def warm_up(cls) -> None:
        """Import what sending requests needs (aiohttp and the proxy helpers: about 0.2 s of
        CPU, a TLS context included), so a pre-forked child starts on them at once."""
        try:
            import aiohttp.helpers  # noqa: F401

            loop_runner("auto")
        except ImportError:  # reported where the backend is built, with the fix
            pass

    kind = "api"

    def __init__(
        self,
        base_url: str | list[str] = "http://127.0.0.1:8000/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 32,
        timeout: float = 120.0,
        max_retries: int = 10,
        backoff_initial: float = 0.1,
        backoff_max: float = 30.0,
        backoff_multiplier: float = 2.0,
        backoff_jitter: float = 0.5,
        retry_after_max: float = 120.0,
        adaptive_concurrency: bool = True,
        min_concurrency: int = 1,
        hedge: bool | None = None,
        hedge_share: float = 0.03,
        hedge_multiplier: float = 3.0,
        hedge_floor: float = 0.5,
        endpoint_down_s: float = 1.0,
        headers: dict[str, str] | None = None,
        extra_body: dict[str, Any] | None = None,
        event_loop: str = "auto",
        generation: GenerationConfig | None = None,
        cache: Any = None,
        progress: Any = None,
        model: str | None = None,
    ) -> None:
        self._aiohttp = _import_aiohttp()
        if event_loop not in EVENT_LOOPS:
            raise ConfigError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}, got {event_loop!r}", where="backend.event_loop", fix="backend.event_loop=auto (the default)")
        self.event_loop, self._run_loop = loop_runner(event_loop)
        urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
        if not urls:
            raise ConfigError("base_url is an empty list", where="backend.base_url", fix="give one URL or a list, e.g. backend.base_url=[http://h1:8000/v1,http://h2:8000/v1]")
        for url in urls:
            if not url or not str(url).startswith(("http://", "https://")):
                raise ConfigError(f"base_url must start with http:// or https://, got {url!r}", where="backend.base_url", fix="e.g. backend.base_url=http://127.0.0.1:8000/v1")
        for key, value, low in (("concurrency", concurrency, 1), ("max_retries", max_retries, 0), ("min_concurrency", min_concurrency, 1)):
            if value < low:
                raise ConfigError(f"{key} must be >= {low}, got {value}", where=f"backend.{key}")
        for key, value in (("timeout", timeout), ("hedge_multiplier", hedge_multiplier), ("endpoint_down_s", endpoint_down_s)):
            if value <= 0:
                raise ConfigError(f"{key} must be > 0, got {value}", where=f"backend.{key}")
        if not 0 <= hedge_share <= 1:
            raise ConfigError(f"hedge_share must be between 0 and 1, got {hedge_share}", where="backend.hedge_share")
        if hedge_floor < 0:
            raise ConfigError(f"hedge_floor must be >= 0 seconds, got {hedge_floor}", where="backend.hedge_floor")
        try:
            self.backoff = Backoff(initial=backoff_initial, max=backoff_max, multiplier=backoff_multiplier, jitter=backoff_jitter, retry_after_max=retry_after_max)
        except ValueError as exc:
            raise ConfigError(str(exc), where="backend.backoff_initial") from None
        self.base_urls = list(dict.fromkeys(normalize_base_url(str(u)) for u in urls))
        self.base_url = self.base_urls[0]
        self.model = model
        self.api_key_env = api_key_env or None
        self.concurrency = int(concurrency)
        self.adaptive_concurrency = bool(adaptive_concurrency)
        self.min_concurrency = min(int(min_concurrency), self.concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        # Hedges cost a duplicate request: free on your own servers, billed on public APIs.
        self.hedge = all(is_local_url(u) for u in self.base_urls) if hedge is None else bool(hedge)
        self.hedge_options = {"share": float(hedge_share), "multiplier": float(hedge_multiplier), "floor": float(hedge_floor)}
        self.endpoint_down_s = float(endpoint_down_s)
        self.extra_body = dict(extra_body or {})
        self.generation = generation or GenerationConfig()
        self.cache = cache
        self.progress = progress
        self.counters = RunStats()
        self.hedger = HedgePolicy(enabled=self.hedge, **self.hedge_options)
        self.pool: EndpointPool | None = None
        self._proxies: dict[str, dict[str, Any]] = {}
        self._retrying = 0
        self._headers = {str(k): str(v) for k, v in (headers or {}).items()}
        for name, value in self._headers.items():
            if SECRET_KEY.search(name) or name.lower() in ("api-key", "x-api-key"):
                register_secret(value)
                register_secret(value.split()[-1] if value.split() else value)  # "Bearer <token>"
        self._api_key = env_secret(self.api_key_env)
        remote = [u for u in self.base_urls if not is_local_url(u)]
        if self.api_key_env and not self._api_key and remote:
            log.warning("environment variable %s is not set; sending requests to %s without an API key", self.api_key_env, ", ".join(remote))

    # -- public API ----------------------------------------------------------------------
    def generate(self, requests: Sequence[Request], on_result: Callable[[Result], None]) -> None:
        """Answer every request; ``on_result`` runs on the calling thread, one at a time.

        The HTTP work runs on an event loop in a helper thread; each batch of finished
        results is stored in the cache and then delivered here, so neither SQLite nor the
        caller's own writes ever stall the requests in flight.
        """
        requests = list(requests)
        if not requests:
            return
        cached = CachedGeneration(self.cache, self.cache_identity, self.generation)
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        state: dict[str, Any] = {}

        handoff = Handoff(out.put)

        def target() -> None:
            error: BaseException | None = None
            try:
                self._run_loop(self._generate(requests, handoff.emit, cached, state))
            except BaseException as exc:  # re-raised in the caller's thread
                error = exc
            handoff.flush()
            out.put((_DONE, error))

        thread = threading.Thread(target=target, name="evalkit-api", daemon=True)
        thread.start()
        try:
            while True:
                batch = [out.get()]
                while True:
                    try:
                        batch.append(out.get_nowait())
                    except queue.Empty:
                        break
                batch = [item for part in batch for item in (part if isinstance(part, list) else [part])]
                results = [item for item in batch if isinstance(item, Result)]
                cached.store([r for r in results if not r.cached])
                for result in results:
                    on_result(result)
                done = [item for item in batch if isinstance(item, tuple) and item and item[0] is _DONE]
                if done:
                    if done[0][1] is not None:
                        raise done[0][1]
                    return
        except BaseException:
            self._stop(state, thread)
            raise

    @staticmethod
    def _stop(state: dict[str, Any], thread: threading.Thread) -> None:
        """Cancel the loop's work (Ctrl-C, or ``on_result`` raised) and wait for it to end."""
        loop, task = state.get("loop"), state.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile
                pass
        thread.join(30)

    def close(self) -> None:
        """Nothing to release: the HTTP session lives only as long as one ``generate`` call."""

    def stats(self) -> dict[str, Any]:
        """Counts of the last ``generate`` call for ``metrics.json``: hedges, requests, 429s,
        and per endpoint (``endpoints``: base URL -> requests/ok/errors/rate_limited/...)."""
        c = self.counters
        return {
            "num_hedged": self.hedger.hedged,
            "num_hedge_wins": self.hedger.won,
            "num_requests": c.attempts,
            "num_retries": c.retries,
            "num_rate_limited": c.attempt_failures.get("HTTP 429", 0),
            "endpoints": self.pool.snapshot() if self.pool is not None else {},
        }

    # -- orchestration -------------------------------------------------------------------
    def cache_identity(self) -> dict[str, Any]:
        base_url: Any = self.base_url if len(self.base_urls) == 1 else sorted(self.base_urls)
        return {"kind": self.kind, "base_url": base_url, "model": self.model, "extra_body": self.extra_body}

    def _request_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        headers.update(self._headers)
        return headers

    async def _generate(self, requests: list[Request], emit: Callable[[Any], None], cached: CachedGeneration, state: dict[str, Any]) -> None:
        state["loop"], state["task"] = asyncio.get_running_loop(), asyncio.current_task()
        self.loop_used = type(state["loop"]).__module__.split(".")[0]  # "uvloop" or "asyncio"
        aiohttp = self._aiohttp
        self.counters = RunStats()
        self.hedger.reset()
        self.pool = pool = EndpointPool(
            self.base_urls,
            self.concurrency,
            adaptive=self.adaptive_concurrency,
            min_concurrency=self.min_concurrency,
            down_s=self.endpoint_down_s,
            on_change=self._show_status,
        )
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)  # the pool bounds what is in flight
        timeout = aiohttp.ClientTimeout(total=self.timeout)  # one deadline per attempt, body included
        self._proxies = {url: env_proxy(url) for url in self.base_urls}
        try:
            async with aiohttp.ClientSession(headers=self._request_headers(), connector=connector, timeout=timeout) as client:
                pool.probe = lambda endpoint: self._reachable(client, endpoint.base_url)
                checked = False
                if self.model is None:
                    await self._preflight(client, pool)
                    checked = True
                todo = self._split_cached(requests, cached, emit)
                if todo:
                    if not checked:
                        await self._preflight(client, pool)
                    await self._run_all(client, pool, todo, emit)
                await pool.close()
        finally:
            self._log_summary()

    def _split_cached(self, requests: list[Request], cached: CachedGeneration, emit: Callable[[Any], None]) -> list[tuple[Request, bytes]]:
        """Emit every fully cached sample; return the rest with their request bodies."""
        prompts = {r.index: chat_messages(r, "api") for r in requests}
        hits, missing = cached.split((r.index, cache_prompt(prompts[r.index], r)) for r in requests)
        for hit in hits:
            emit(hit)
        self.counters.cached = len(hits)
        if hits:
            log.info("api: %d sample(s) answered from the response cache", len(hits))
        by_index = {r.index: r for r in requests}
        todo = []
        for index in missing:
            request = by_index[index]
            payload = build_payload(self.model or "", prompts[index], self.generation, self.extra_body, tools=request.tools, tool_choice=request.tool_choice)
            todo.append((request, json.dumps(payload, ensure_ascii=False).encode("utf-8")))
        return todo

    async def _run_all(self, client: Any, pool: EndpointPool, todo: list[tuple[Request, bytes]], emit: Callable[[Any], None]) -> None:
        queue_ = collections.deque(todo)

        async def worker() -> None:
            while queue_:
                request, data = queue_.popleft()
                emit(await self._complete(client, pool, request, data))

        # Twice the slots: samples waiting out a backoff do not hold back the free ones.
        workers = min(len(todo), 2 * self.concurrency * len(self.base_urls))
        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # One fatal reply (or cancellation): stop the others; finished samples were
            # already delivered, in-flight ones are simply not.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _start(self, client: Any, pool: EndpointPool, endpoint: Endpoint, data: bytes) -> "asyncio.Task[tuple[Completion, float]]":
        self.counters.attempts += 1
        task = asyncio.ensure_future(self._attempt(client, pool, endpoint, data))
        endpoint.attempts.add(task)

        def finished(done: "asyncio.Task[Any]") -> None:
            endpoint.attempts.discard(done)
            if not done.cancelled() and isinstance(done.exception(), FatalError):
                pool.halt()  # before the freed slot wakes a waiting sample: nothing more is sent
            pool.release(endpoint)

        task.add_done_callback(finished)
        return task

    async def _complete(self, client: Any, pool: EndpointPool, request: Request, data: bytes) -> Result:
        """One sample: attempts (and at most one hedge per attempt) until success, a fatal
        reply, or retries run out."""
        self.hedger.started += 1
        attempts = connect_failures = failures = 0
        avoid: Endpoint | None = None
        while True:
            endpoint = await pool.acquire(avoid)
            attempts += 1
            primary = self._start(client, pool, endpoint, data)
            running = {primary: endpoint}
            started = time.monotonic()
            may_hedge = self.hedger.enabled
            not_before = started  # a duplicate replacing a failed one waits out its retry delay
            won: tuple[Completion, float] | None = None
            hedge_won = False
            error: RetryableError | None = None
            try:
                while running and won is None:
                    delay = self.hedger.delay() if may_hedge else None
                    if may_hedge and delay is None:  # no latency history yet: look again soon
                        timeout: float | None = max(0.05, self.hedger.floor)
                    else:
                        timeout = None if delay is None else max(0.0, max(started + delay, not_before) - time.monotonic())
                    done, _ = await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                    now = time.monotonic()
                    if not done and delay is not None and now - started >= delay and now >= not_before:
                        if now - max(started + delay, not_before) > LOOP_LAG_S:
                            # Woke late: the loop (or the machine) stalled, so replies may be
                            # waiting unread. Look again shortly rather than hedge them all.
                            not_before = now + LOOP_LAG_S / 2
                            continue
                        # still running long after the others' p95: send one duplicate
                        may_hedge = False
                        if not pool.halted and self.hedger.take():
                            twin = pool.acquire_now(avoid=endpoint)
                            attempts += 1
                            running[self._start(client, pool, twin, data)] = twin
                        continue
                    if not done:
                        continue
                    for task in done:
                        where = running.pop(task)
                        if task.cancelled():  # its endpoint was taken out: go elsewhere now
                            error = RetryableError("endpoint taken out", where.base_url, connect=True)
                            continue
                        try:
                            won, hedge_won = task.result(), task is not primary
                            break
                        except RetryableError as exc:
                            error = exc
                            if task is not primary and primary in running and self.hedger.enabled:
                                # The duplicate failed (5xx, 429) while the straggler still
                                # hangs: another duplicate after the retry delay, not the
                                # straggler's whole timeout. It comes out of the same budget.
                                may_hedge = True
                                not_before = now + self.backoff.delay(1, exc.retry_after)
                        except FatalError as exc:
                            raise self._fatal(exc, request) from None
            finally:
                for task in running:  # the slower twin
                    task.cancel()
                if running:
                    await asyncio.gather(*running, return_exceptions=True)
            if won is not None:
                completion, latency = won
                if hedge_won:
                    self.hedger.won += 1
                self.hedger.observe(latency)
                self.counters.ok += 1
                return Result(
                    index=request.index,
                    outputs=completion.texts,
                    latency_s=latency,
                    usage=completion.usage,
                    attempts=attempts,
                    tool_calls=completion.tool_calls[0] if completion.tool_calls else None,
                    finish_reason=completion.finish_reasons[0] if completion.finish_reasons else None,
                    reasoning=completion.reasoning[0] if completion.reasoning else None,
                )
            assert error is not None
            failures += 1
            self.counters.attempt_failures[error.reason] += 1
            connect_failures += error.connect
            if attempts > self.max_retries:
                if connect_failures == failures and not any(e.healthy for e in pool.endpoints if e is not endpoint):
                    raise self._unreachable(error.detail) from None
                reason = redact_text(f"{error.reason}: {error.detail} (after {attempts} attempts)")
                self.counters.failed += 1
                self.counters.failures[error.reason] += 1
                return Result(index=request.index, error=reason, attempts=attempts)
            self.counters.retries += 1
            avoid = endpoint
            rerouted = error.reason == "endpoint taken out" or (error.connect and any(e.healthy for e in pool.endpoints))
            if not rerouted:
                await self._wait(self.backoff.delay(failures, error.retry_after))

    async def _attempt(self, client: Any, pool: EndpointPool, endpoint: Endpoint, data: bytes) -> tuple[Completion, float]:
        """One HTTP exchange, classified: a completion, RetryableError or FatalError."""
        aiohttp = self._aiohttp
        endpoint.attempts.discard(asyncio.current_task())  # type: ignore[arg-type]  # taking its endpoint out must not cancel this one
        start = time.monotonic()
        try:
            async with client.post(chat_url(endpoint.base_url), data=data, allow_redirects=False, **self._proxies[endpoint.base_url]) as response:
                body = await response.read()
                status, headers = response.status, response.headers
        except aiohttp.ClientConnectorError as exc:  # refused, unresolvable, unroutable
            pool.failure(endpoint, connect=True)
            raise RetryableError("connection error", f"{type(exc).__name__}: {exc}", connect=True) from None
        except asyncio.TimeoutError:
            pool.failure(endpoint, connect=False)
            raise RetryableError("timeout", f"no reply within {self.timeout:g}s") from None
        except aiohttp.ClientError as exc:  # dropped connection, torn chunked body, ...
            pool.failure(endpoint, connect=False)
            raise RetryableError("connection error", f"{type(exc).__name__}: {exc}") from None
        latency = time.monotonic() - start
        if status >= 400:
            detail = error_message(body)
            if status == 429:
                pool.reply(endpoint, ok=False, rate_limited=True, retry_after=retry_after_seconds(headers))
            elif is_retryable_status(status):
                pool.failure(endpoint, connect=False)
            if is_retryable_status(status):
                raise RetryableError(f"HTTP {status}", detail, retry_after=retry_after_seconds(headers))
            raise FatalError(status, detail)
        if status >= 300 or status < 200:
            location = headers.get("Location", "")
            raise FatalError(status, f"unexpected reply (redirect to {location!r}?)" if location else "unexpected reply")
        try:
            completion = parse_completion(body, self.generation.n)
        except TooFewChoices as exc:
            raise FatalError(status, f"{exc}; the server does not support n > 1") from None
        except MalformedResponse as exc:
            pool.failure(endpoint, connect=False)
            raise RetryableError("malformed response", str(exc)) from None
        pool.reply(endpoint, ok=True)
        return completion, latency

    async def _wait(self, seconds: float) -> None:
        self._retrying += 1
        if self.progress is not None:
            self.progress.retrying(+1)
        self._show_status()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._retrying -= 1
            if self.progress is not None:
                self.progress.retrying(-1)

    def _show_status(self) -> None:
        """Current concurrency (and endpoints up) on the progress bar, when it can show them."""
        update = getattr(self.progress, "update_status", None)
        if update is None or self.pool is None:
            return
        fields: dict[str, Any] = {"concurrency": self.pool.concurrency, "retrying": self._retrying}
        if len(self.pool.endpoints) > 1:
            fields["endpoints"] = f"{sum(e.healthy for e in self.pool.endpoints)}/{len(self.pool.endpoints)}"
        update(**fields)

    # -- start-up check and run-ending errors --------------------------------------------
    async def _preflight(self, client: Any, pool: EndpointPool) -> None:
        """Fail fast with one line when no endpoint answers; find the model. With several
        endpoints, unreachable ones start out of rotation (probed again later)."""
        if len(pool.endpoints) == 1:
            await self._preflight_one(client, self.base_url)
            return
        outcomes = await asyncio.gather(*(self._preflight_one(client, e.base_url) for e in pool.endpoints), return_exceptions=True)
        reachable = [e for e, outcome in zip(pool.endpoints, outcomes) if not isinstance(outcome, BaseException)]
        if not reachable:
            raise outcomes[0]  # type: ignore[misc]
        for endpoint, outcome in zip(pool.endpoints, outcomes):
            if isinstance(outcome, BackendError) and "cannot connect" in str(outcome):
                log.warning("api: %s is unreachable; continuing with the other endpoints", endpoint.base_url)
                pool.take_out(endpoint)
            elif isinstance(outcome, BaseException):
                raise outcome

    async def _reachable(self, client: Any, base_url: str) -> bool:
        """Any HTTP reply from ``GET {base_url}/models`` (health probe of a taken-out endpoint)."""
        aiohttp = self._aiohttp
        try:
            async with client.get(base_url + "/models", timeout=aiohttp.ClientTimeout(total=min(self.timeout, 5.0)), **self._proxies[base_url]) as response:
                await response.read()
            return True
        except (asyncio.TimeoutError, aiohttp.ClientError):
            return False

    async def _preflight_one(self, client: Any, base_url: str) -> None:
        aiohttp = self._aiohttp
        url = base_url + "/models"
        status, body = None, b""
        detail = ""
        for attempt in range(PREFLIGHT_TRIES):
            try:
                async with client.get(url, timeout=aiohttp.ClientTimeout(total=min(self.timeout, 10.0)), **self._proxies[base_url]) as response:
                    status, body = response.status, await response.read()
                break
            except aiohttp.ClientConnectorError as exc:
                detail = f"{type(exc).__name__}: {exc}"
                if attempt + 1 < PREFLIGHT_TRIES:
                    await asyncio.sleep(0.5 * 2**attempt)
            except (asyncio.TimeoutError, aiohttp.ClientError):
                break  # something answers, slowly or oddly: let the real requests decide
        else:
            raise self._unreachable(detail, base_url)
        if status == 401:
            raise self._fatal(FatalError(401, error_message(body)), None)
        if self.model is None:
            self.model = self._discover_model(status, body, base_url)

    def _discover_model(self, status: int | None, body: bytes, base_url: str) -> str:
        names: list[str] = []
        if status == 200:
            try:
                names = [str(m["id"]) for m in json.loads(body).get("data", []) if isinstance(m, dict) and "id" in m]
            except (ValueError, AttributeError, TypeError):
                names = []
        if len(names) == 1:
            log.info("api: backend.model not set; using the only model the server lists: %s", names[0])
            return names[0]
        listed = f"the server lists: {', '.join(names[:10])}" if names else f"{base_url}/models lists none"
        raise ConfigError(f"no model given and {listed}", where="backend.model", fix="add backend.model=<served model name>")

    def _unreachable(self, detail: str, base_url: str | None = None) -> BackendError:
        where = base_url or ", ".join(self.base_urls)
        return BackendError(
            redact_text(f"cannot connect to the API server at {where} ({detail})"),
            where="backend.base_url",
            fix="start the server, or correct backend.base_url (it usually ends in /v1)",
        )

    def _fatal(self, exc: FatalError, request: Request | None) -> BackendError:
        detail = redact_text(exc.detail)
        if exc.status in AUTH_STATUS:
            env = self.api_key_env
            if env and not self._api_key:
                fix = f"environment variable {env} is not set; export it with a valid key for this server"
            elif env:
                fix = f"check that environment variable {env} holds a valid key for this server"
            else:
                fix = "set backend.api_key_env to the environment variable that holds your key"
            return BackendError(f"the server at {self.base_url} rejected the API key (HTTP {exc.status}: {detail})", where=f"backend.api_key_env={env}", fix=fix)
        sample = f" for sample {request.id!r}" if request is not None else ""
        if 200 <= exc.status < 300:
            return BackendError(f"{detail}{sample}", where="generation.n", fix="set generation.n=1 for this server (or repeat the run with different generation.seed values)")
        if exc.status == 404:
            return BackendError(
                f"HTTP 404 from {chat_url(self.base_url)}{sample}: {detail}",
                where="backend.base_url / backend.model",
                fix="check that backend.base_url is the API root (e.g. http://host:8000/v1) and backend.model a model the server serves",
            )
        return BackendError(
            f"the server rejected the request{sample} (HTTP {exc.status}: {detail}); the run stops because every request has this shape",
            where="backend",
            fix="check backend.model, backend.extra_body and the generation settings (e.g. generation.max_new_tokens)",
        )

    def _log_summary(self) -> None:
        s = self.counters
        if not (s.ok or s.failed or s.cached):
            return
        retried = ", ".join(f"{reason} x{count}" for reason, count in s.attempt_failures.most_common())
        log.info(
            "api: %d ok, %d failed, %d from cache; %d requests, %d retries%s",
            s.ok, s.failed, s.cached, s.attempts, s.retries, f" ({retried})" if retried else "",
        )
        if self.hedger.hedged:
            log.info("api: %d hedged request(s), %d answered first", self.hedger.hedged, self.hedger.won)
        if self.pool is not None and len(self.pool.endpoints) > 1:
            for url, counts in self.pool.snapshot().items():
                log.info("api: endpoint %s: %d requests, %d ok, %d errors, %d rate-limited, taken out %d time(s)", url, counts["requests"], counts["ok"], counts["errors"], counts["rate_limited"], counts["taken_out"])
        if s.failures:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in s.failures.most_common())
            log.warning("api: %d sample(s) failed after all retries, by reason: %s", s.failed, reasons)
