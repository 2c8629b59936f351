"""``backend=api``: any OpenAI-compatible chat-completions server (OpenAI, vLLM, DashScope).

One asyncio event loop drives ``concurrency`` workers that share one HTTP connection pool.
Each finished sample goes to the response cache and then to ``on_result`` the moment it
completes, so a killed run loses only what was in flight; re-running the same command sends
only what is missing (the pipeline resumes ``predictions.jsonl``, the cache covers a new run
directory). A sample that still fails after ``max_retries`` is recorded with its reason and
the run goes on; a reply that dooms every request (bad key, unknown model, invalid request)
stops the run at once with one line.

Why aiohttp, and not httpx or the official ``openai`` client (README): evalkit talks to
servers that are only *mostly* OpenAI-compatible (vLLM, DashScope's compatible mode, in-house
gateways) and must itself decide what each reply means, so it wants the raw status, headers
and body of every attempt — a torn JSON body is then a retryable failure, not an exception
from inside an SDK's response models, and ``Retry-After``/fatal-vs-retryable live in one small
tested module (``retry.py``). The ``openai`` client also hides a retry loop of its own that
would stack with ours. Between the two raw clients, throughput decided: at the concurrency
users run evaluations with (64 requests in flight), httpx's connection pool (httpcore 1.x)
re-scans every connection for every queued request on each event (encode/httpx#3215) and
cost 13 ms of CPU per request on our benchmark machine — 70 requests/s, slower than the
seed's 25 threads — where ``aiohttp.ClientSession`` cost 0.3 ms (the ``openai`` SDK itself now
offers an aiohttp transport for this reason). aiohttp is mature (aio-libs, since 2014), already
installed wherever vLLM is, and also runs evalkit's test server. The retry loop is ten lines
over :class:`~evalkit_api.retry.Backoff` rather than tenacity: every decision that matters
(Retry-After, fatal vs. retryable, progress around the wait) would be a tenacity callback.

Decisions worth knowing:

* **Cache**: every successful response is stored (identity = kind, base URL, model,
  ``extra_body``; key also covers messages, generation settings and the index within ``n``).
  With ``temperature > 0`` a re-run therefore reuses the earlier samples rather than drawing
  new ones — change ``generation.seed`` or set ``cache.enabled=false`` for fresh draws.
  ``headers`` are not part of the identity (they may hold secrets).
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
import threading
import time
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from evalkit.cache import cache_key
from evalkit.errors import BackendError, ConfigError, missing_dependency
from evalkit.secrets import SECRET_KEY, env_secret, redact_text, register_secret
from evalkit.types import GenerationConfig, Request, Result, chat_messages

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
    """Chat completions over HTTP with bounded concurrency, retries and a response cache.

    Options (``backend.*``): ``base_url`` (the API root, e.g. ``http://127.0.0.1:8000/v1``;
    a pasted ``.../chat/completions`` is accepted), ``model`` (the served model name; when
    null, the only model ``/models`` lists), ``api_key_env``, ``concurrency``, ``timeout``
    (seconds per attempt), ``max_retries`` (attempts after the first), ``backoff_*`` (see
    :class:`~evalkit_api.retry.Backoff`), ``headers`` (never logged) and ``extra_body``
    (merged into every request body).
    """

    kind = "api"

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 32,
        timeout: float = 120.0,
        max_retries: int = 10,
        backoff_initial: float = 0.1,
        backoff_max: float = 30.0,
        backoff_multiplier: float = 2.0,
        backoff_jitter: float = 0.5,
        retry_after_max: float = 120.0,
        headers: dict[str, str] | None = None,
        extra_body: dict[str, Any] | None = None,
        generation: GenerationConfig | None = None,
        cache: Any = None,
        progress: Any = None,
        model: str | None = None,
    ) -> None:
        self._aiohttp = _import_aiohttp()
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, got {base_url!r}", where="backend.base_url", fix="e.g. backend.base_url=http://127.0.0.1:8000/v1")
        for key, value, low in (("concurrency", concurrency, 1), ("max_retries", max_retries, 0)):
            if value < low:
                raise ConfigError(f"{key} must be >= {low}, got {value}", where=f"backend.{key}")
        if timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout}", where="backend.timeout")
        try:
            self.backoff = Backoff(initial=backoff_initial, max=backoff_max, multiplier=backoff_multiplier, jitter=backoff_jitter, retry_after_max=retry_after_max)
        except ValueError as exc:
            raise ConfigError(str(exc), where="backend.backoff_initial") from None
        self.base_url = normalize_base_url(base_url)
        self.model = model
        self.api_key_env = api_key_env or None
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.extra_body = dict(extra_body or {})
        self.generation = generation or GenerationConfig()
        self.cache = cache
        self.progress = progress
        self.stats = RunStats()
        self._headers = {str(k): str(v) for k, v in (headers or {}).items()}
        for name, value in self._headers.items():
            if SECRET_KEY.search(name) or name.lower() in ("api-key", "x-api-key"):
                register_secret(value)
                register_secret(value.split()[-1] if value.split() else value)  # "Bearer <token>"
        self._api_key = env_secret(self.api_key_env)
        if self.api_key_env and not self._api_key and not is_local_url(self.base_url):
            log.warning("environment variable %s is not set; sending requests to %s without an API key", self.api_key_env, self.base_url)

    # -- public API ----------------------------------------------------------------------
    def generate(self, requests: Sequence[Request], on_result: Callable[[Result], None]) -> None:
        """Answer every request; ``on_result`` runs on this call's event loop, one at a time."""
        requests = list(requests)
        if not requests:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._generate(requests, on_result))
            return
        # Called from inside a running loop (a notebook): run ours on a helper thread.
        errors: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(self._generate(requests, on_result))
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=target, name="evalkit-api", daemon=True)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Nothing to release: the HTTP session lives only as long as one ``generate`` call."""

    # -- orchestration -------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_url": self.base_url, "model": self.model, "extra_body": self.extra_body}

    def _request_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        headers.update(self._headers)
        return headers

    async def _generate(self, requests: list[Request], on_result: Callable[[Result], None]) -> None:
        aiohttp = self._aiohttp
        self.stats = RunStats()
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout)  # one deadline per attempt, body included
        try:
            # trust_env: honour HTTP(S)_PROXY / NO_PROXY like curl and requests do.
            async with aiohttp.ClientSession(headers=self._request_headers(), connector=connector, timeout=timeout, trust_env=True) as client:
                checked = False
                if self.model is None:
                    await self._preflight(client)
                    checked = True
                todo = self._deliver_cached(requests, on_result)
                if todo:
                    if not checked:
                        await self._preflight(client)
                    await self._run_all(client, todo, on_result)
        finally:
            self._log_summary()

    def _deliver_cached(self, requests: list[Request], on_result: Callable[[Result], None]) -> list[tuple[Request, Any, list[str]]]:
        """Deliver every fully cached sample now; return the rest with their cache keys."""
        identity = self.identity()
        gen = self.generation.to_dict()
        planned = []
        for request in requests:
            messages = chat_messages(request, "api")
            keys = [cache_key(identity, messages, gen, i) for i in range(self.generation.n)]
            planned.append((request, messages, keys))
        found: dict[str, dict[str, Any]] = {}
        if self.cache is not None and getattr(self.cache, "enabled", False):
            found = self.cache.get_many(k for _, _, keys in planned for k in keys)
        todo = []
        for request, messages, keys in planned:
            entries = [found.get(k) for k in keys]
            if all(isinstance(e, dict) and isinstance(e.get("text"), str) for e in entries):
                first = entries[0] or {}
                self.stats.cached += 1
                on_result(
                    Result(
                        index=request.index,
                        outputs=[e["text"] for e in entries],  # type: ignore[index]
                        latency_s=first.get("latency_s"),
                        usage=first.get("usage"),
                        attempts=0,
                        cached=True,
                    )
                )
            else:
                todo.append((request, messages, keys))
        if self.stats.cached:
            log.info("api: %d sample(s) answered from the response cache", self.stats.cached)
        return todo

    async def _run_all(self, client: Any, todo: list[tuple[Request, Any, list[str]]], on_result: Callable[[Result], None]) -> None:
        queue = collections.deque(todo)

        async def worker() -> None:
            while queue:
                request, messages, keys = queue.popleft()
                on_result(await self._complete(client, request, messages, keys))

        tasks = [asyncio.ensure_future(worker()) for _ in range(min(self.concurrency, len(todo)))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # One fatal reply (or a failing on_result): stop the others; finished samples were
            # already delivered, in-flight ones are simply not.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _complete(self, client: Any, request: Request, messages: Any, keys: list[str]) -> Result:
        """One sample: attempts with backoff until success, a fatal reply, or retries run out."""
        payload = build_payload(self.model or "", messages, self.generation, self.extra_body)
        attempts = connect_failures = 0
        while True:
            attempts += 1
            self.stats.attempts += 1
            try:
                completion, latency = await self._attempt(client, payload)
            except RetryableError as exc:
                self.stats.attempt_failures[exc.reason] += 1
                connect_failures += exc.connect
                if attempts > self.max_retries:
                    if connect_failures == attempts:
                        raise self._unreachable(exc.detail) from None
                    reason = redact_text(f"{exc.reason}: {exc.detail} (after {attempts} attempts)")
                    self.stats.failed += 1
                    self.stats.failures[exc.reason] += 1
                    return Result(index=request.index, error=reason, attempts=attempts)
                self.stats.retries += 1
                await self._wait(self.backoff.delay(attempts, exc.retry_after))
                continue
            except FatalError as exc:
                raise self._fatal(exc, request) from None
            self._store(keys, completion, latency)
            self.stats.ok += 1
            return Result(index=request.index, outputs=completion.texts, latency_s=latency, usage=completion.usage, attempts=attempts)

    async def _attempt(self, client: Any, payload: dict[str, Any]) -> tuple[Completion, float]:
        """One HTTP exchange, classified: a completion, RetryableError or FatalError."""
        aiohttp = self._aiohttp
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        start = time.monotonic()
        try:
            async with client.post(chat_url(self.base_url), data=data, allow_redirects=False) as response:
                body = await response.read()
                status, headers = response.status, response.headers
        except aiohttp.ClientConnectorError as exc:  # refused, unresolvable, unroutable
            raise RetryableError("connection error", f"{type(exc).__name__}: {exc}", connect=True) from None
        except asyncio.TimeoutError:
            raise RetryableError("timeout", f"no reply within {self.timeout:g}s") from None
        except aiohttp.ClientError as exc:  # dropped connection, torn chunked body, ...
            raise RetryableError("connection error", f"{type(exc).__name__}: {exc}") from None
        latency = time.monotonic() - start
        if status >= 400:
            detail = error_message(body)
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
            raise RetryableError("malformed response", str(exc)) from None
        return completion, latency

    async def _wait(self, seconds: float) -> None:
        if self.progress is not None:
            self.progress.retrying(+1)
        try:
            await asyncio.sleep(seconds)
        finally:
            if self.progress is not None:
                self.progress.retrying(-1)

    def _store(self, keys: list[str], completion: Completion, latency: float) -> None:
        if self.cache is None or not getattr(self.cache, "enabled", False):
            return
        for i, key in enumerate(keys):
            value: dict[str, Any] = {"text": completion.texts[i], "finish_reason": completion.finish_reasons[i]}
            if i == 0:
                value.update({"usage": completion.usage, "latency_s": latency})
            self.cache.put(key, value)

    # -- start-up check and run-ending errors --------------------------------------------
    async def _preflight(self, client: Any) -> None:
        """Fail fast with one line when nothing listens at ``base_url``; find the model."""
        aiohttp = self._aiohttp
        url = self.base_url + "/models"
        status, body = None, b""
        detail = ""
        for attempt in range(PREFLIGHT_TRIES):
            try:
                async with client.get(url, timeout=aiohttp.ClientTimeout(total=min(self.timeout, 10.0))) as response:
                    status, body = response.status, await response.read()
                break
            except aiohttp.ClientConnectorError as exc:
                detail = f"{type(exc).__name__}: {exc}"
                if attempt + 1 < PREFLIGHT_TRIES:
                    await asyncio.sleep(0.5 * 2**attempt)
            except (asyncio.TimeoutError, aiohttp.ClientError):
                break  # something answers, slowly or oddly: let the real requests decide
        else:
            raise self._unreachable(detail)
        if status == 401:
            raise self._fatal(FatalError(401, error_message(body)), None)
        if self.model is None:
            self.model = self._discover_model(status, body)

    def _discover_model(self, status: int | None, body: bytes) -> str:
        names: list[str] = []
        if status == 200:
            try:
                names = [str(m["id"]) for m in json.loads(body).get("data", []) if isinstance(m, dict) and "id" in m]
            except (ValueError, AttributeError, TypeError):
                names = []
        if len(names) == 1:
            log.info("api: backend.model not set; using the only model the server lists: %s", names[0])
            return names[0]
        listed = f"the server lists: {', '.join(names[:10])}" if names else f"{self.base_url}/models lists none"
        raise ConfigError(f"no model given and {listed}", where="backend.model", fix="add backend.model=<served model name>")

    def _unreachable(self, detail: str) -> BackendError:
        return BackendError(
            redact_text(f"cannot connect to the API server at {self.base_url} ({detail})"),
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
        s = self.stats
        if not (s.ok or s.failed or s.cached):
            return
        retried = ", ".join(f"{reason} x{count}" for reason, count in s.attempt_failures.most_common())
        log.info(
            "api: %d ok, %d failed, %d from cache; %d requests, %d retries%s",
            s.ok, s.failed, s.cached, s.attempts, s.retries, f" ({retried})" if retried else "",
        )
        if s.failures:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in s.failures.most_common())
            log.warning("api: %d sample(s) failed after all retries, by reason: %s", s.failed, reasons)
