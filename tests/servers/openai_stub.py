"""A real OpenAI-compatible chat-completions server for tests and benchmarks (aiohttp).

It listens on 127.0.0.1 (a free port by default) and answers ``POST /v1/chat/completions``
and ``GET /v1/models`` like vLLM's server, with knobs for what goes wrong in practice:

* ``latency`` (+ ``latency_jitter``): seconds before each reply;
* random faults by share of requests: ``p500`` (HTTP 500), ``p429`` (HTTP 429 with
  ``Retry-After: retry_after``), ``p_slow`` (reply after ``slow_delay`` — longer than the
  client's timeout), ``p_malformed`` (HTTP 200 with a torn JSON body), ``p_disconnect``
  (connection closed without a reply);
* ``faults``: a deterministic schedule, the k-th request for a given conversation gets
  ``faults[k]`` (``"500"``, ``"429"``, ``"slow"``, ``"malformed"``, ``"disconnect"``,
  ``"ok"``) — so a test can make *every* sample meet every fault once;
* ``api_key``: requests whose ``Authorization`` is not ``Bearer <api_key>`` get 401 (and,
  like some real servers, the 401 message echoes the key it received);
* ``model``: another model name gets 404; ``max_tokens_limit``: a larger ``max_tokens``
  gets 400, like vLLM's context-length check; ``ignore_n``: one choice whatever ``n`` asks;
* ``max_concurrent``: requests processed at once (a server's batch capacity); the rest
  queue, so their latency grows;
* ``rate_limit``: requests admitted per second (a token bucket holding ``rate_burst`` seconds
  of them); beyond it HTTP 429 with ``Retry-After`` = the time until the next one is admitted;
* ``tool_mode``, for requests that offer ``tools`` (function calling): ``native`` answers
  with ``tool_calls`` and ``content: null`` (``finish_reason: tool_calls``, plus a
  ``reasoning_content``), ``torn`` does the same with each ``arguments`` string cut in half,
  ``tag`` leaves a hermes ``<tool_call>{...}</tool_call>`` inside ``content`` and no
  ``tool_calls`` (a server whose tool parser failed silently). The calls are the expected
  ``label`` list (``{"toolName", "paramList"}`` items) as OpenAI calls.

A slow reply whose client gave up (timeout, or a hedge won) is counted as ``abandoned`` in
the status counts as soon as the client closes the connection.

The last request body and headers (``Authorization`` excluded) per conversation are kept too,
so tests can check exactly what a client sent.

Answers are deterministic: the server echoes what follows the last ``#expect:`` marker in
the conversation, as a fenced JSON block (``{"label": []}`` when there is none), so tests
can check predictions. Replies carry ``usage`` (whitespace token counts) and honour ``n``.
A request log counts, per conversation hash (:func:`messages_hash`), requests received and
successful replies sent — tests assert that nothing finished is sent again.

Use in-process (a background thread)::

    with StubServer(latency=0.01, p500=0.1) as server:
        server.base_url            # http://127.0.0.1:PORT/v1
        server.stats()             # the request log

or as a process (benchmarks): ``python tests/servers/openai_stub.py --latency 0.1 --p500 0.03``
prints ``READY <base_url>`` once listening; ``GET /_stats``, ``POST /_config`` (JSON of the
knobs above) and ``POST /_reset`` control it over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import hashlib
import json
import random
import signal
import sys
import threading
import time
from typing import Any

from aiohttp import web

FAULTS = ("ok", "500", "429", "slow", "malformed", "disconnect")
TOOL_MODES = ("native", "torn", "tag")
EXPECT_MARKER = "#expect:"
DEFAULT_ANSWER = '{"label": []}'


def messages_hash(messages: Any) -> str:
    """Stable digest of a conversation: the key of the request log."""
    blob = json.dumps(messages, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def expected_answer(messages: Any) -> str:
    """What follows the last ``#expect:`` marker (to the end of its line), else the default."""
    answer = DEFAULT_ANSWER
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str) and EXPECT_MARKER in content:
            answer = content.rsplit(EXPECT_MARKER, 1)[1].split("\n", 1)[0].strip() or DEFAULT_ANSWER
    return answer


def expected_calls(answer: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, arguments)`` of each ``{"toolName", "paramList"}`` in an expected answer."""
    try:
        label = json.loads(answer).get("label", [])
    except (ValueError, AttributeError):
        return []
    return [(str(c.get("toolName")), dict(c.get("paramList") or {})) for c in label if isinstance(c, dict)]


def _tokens(text: str) -> int:
    return len(text.split())


@dataclasses.dataclass
class StubConfig:
    model: str | None = None  # None: serve any model name
    api_key: str | None = None  # None: no auth
    latency: float = 0.0
    latency_jitter: float = 0.0
    p500: float = 0.0
    p429: float = 0.0
    p_slow: float = 0.0
    p_malformed: float = 0.0
    p_disconnect: float = 0.0
    retry_after: float = 0.1
    slow_delay: float = 2.0
    faults: tuple[str, ...] = ()
    max_tokens_limit: int | None = None
    ignore_n: bool = False  # always one choice, like hosted APIs without n support
    max_concurrent: int = 0  # requests processed at once (like vLLM's max_num_seqs); the rest queue; 0: no limit
    rate_limit: float = 0.0  # requests admitted per second; 0: no limit
    rate_burst: float = 1.0  # seconds of rate_limit the bucket holds
    tool_mode: str = "native"  # native | torn | tag, for requests that offer tools
    seed: int = 0

    def update(self, **changes: Any) -> None:
        for key, value in changes.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown stub option {key!r}")
            if key == "faults":
                value = tuple(value)
                bad = [f for f in value if f not in FAULTS]
                if bad:
                    raise ValueError(f"unknown fault {bad[0]!r}; known: {', '.join(FAULTS)}")
            if key == "tool_mode" and value not in TOOL_MODES:
                raise ValueError(f"unknown tool_mode {value!r}; known: {', '.join(TOOL_MODES)}")
            setattr(self, key, value)


class RequestLog:
    """Counts per conversation hash; updated on the server thread, read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.received: collections.Counter[str] = collections.Counter()
            self.answered: collections.Counter[str] = collections.Counter()  # 200s with a real completion
            self.status: collections.Counter[str] = collections.Counter()
            self.timeline: list[tuple[float, str]] = []  # (seconds since the first request, status)
            self.started: float | None = None
            self.bodies: dict[str, dict[str, Any]] = {}  # the last request body per conversation
            self.headers: dict[str, dict[str, str]] = {}  # ... and its headers (minus Authorization)
            self.total = 0

    def arrive(self, key: str, body: dict[str, Any], headers: dict[str, str]) -> int:
        with self._lock:
            self.total += 1
            self.received[key] += 1
            self.bodies[key] = body
            self.headers[key] = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            return self.received[key]

    def reply(self, key: str | None, status: str) -> None:
        with self._lock:
            self.status[status] += 1
            now = time.monotonic()
            self.started = now if self.started is None else self.started
            self.timeline.append((now - self.started, status))
            if key is not None and status == "200":
                self.answered[key] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self.total,
                "received": dict(self.received),
                "answered": dict(self.answered),
                "status": dict(self.status),
                "bodies": dict(self.bodies),
                "headers": dict(self.headers),
                "timeline": list(self.timeline),
            }


class StubApp:
    """The aiohttp application and its handlers."""

    def __init__(self, config: StubConfig) -> None:
        self.config = config
        self.log = RequestLog()
        self.rng = random.Random(config.seed)
        self._tokens: float | None = None  # rate-limit bucket
        self._slots: asyncio.Semaphore | None = None  # max_concurrent
        self._refilled = time.monotonic()
        self.app = web.Application(client_max_size=64 * 1024**2)
        self.app.add_routes(
            [
                web.post("/v1/chat/completions", self.chat),
                web.get("/v1/models", self.models),
                web.get("/_stats", self.stats),
                web.post("/_config", self.set_config),
                web.post("/_reset", self.reset),
            ]
        )

    # -- helpers -------------------------------------------------------------------------
    def _error(self, status: int, message: str, kind: str, key: str | None, headers: dict[str, str] | None = None) -> web.Response:
        self.log.reply(key, str(status))
        body = {"error": {"message": message, "type": kind, "code": status}}
        return web.json_response(body, status=status, headers=headers)

    def _authorized(self, request: web.Request) -> str | None:
        """None when fine, else the (wrong) key that was received."""
        if self.config.api_key is None:
            return None
        header = request.headers.get("Authorization", "")
        if header == f"Bearer {self.config.api_key}":
            return None
        return header.removeprefix("Bearer ").strip() or "(none)"

    def _pick_fault(self, attempt: int) -> str:
        cfg = self.config
        if attempt <= len(cfg.faults):
            return cfg.faults[attempt - 1]
        r = self.rng.random()
        for name, share in (("500", cfg.p500), ("429", cfg.p429), ("slow", cfg.p_slow), ("malformed", cfg.p_malformed), ("disconnect", cfg.p_disconnect)):
            if r < share:
                return name
            r -= share
        return "ok"

    def _admit(self) -> float | None:
        """None when the rate limit admits a request now, else seconds until it would."""
        rate = self.config.rate_limit
        if rate <= 0:
            return None
        capacity = max(1.0, rate * self.config.rate_burst)
        now = time.monotonic()
        tokens = capacity if self._tokens is None else min(capacity, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return None
        self._tokens = tokens
        return (1.0 - tokens) / rate

    async def _latency(self) -> None:
        if self.config.max_concurrent > 0:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.config.max_concurrent)
            async with self._slots:
                await self._sleep_latency()
        else:
            await self._sleep_latency()

    async def _sleep_latency(self) -> None:
        delay = self.config.latency + (self.rng.uniform(0, self.config.latency_jitter) if self.config.latency_jitter else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)

    # -- handlers ------------------------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        wrong = self._authorized(request)
        if wrong is not None:
            return self._error(401, f"Incorrect API key provided: {wrong}", "invalid_request_error", None)
        name = self.config.model or "stub-model"
        return web.json_response({"object": "list", "data": [{"id": name, "object": "model", "owned_by": "evalkit-tests"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "request body is not valid JSON", "invalid_request_error", None)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            return self._error(400, "'messages' must be a list of {role, content} objects", "invalid_request_error", None)
        key = messages_hash(messages)
        attempt = self.log.arrive(key, body, dict(request.headers))
        wrong = self._authorized(request)
        if wrong is not None:
            return self._error(401, f"Incorrect API key provided: {wrong}", "invalid_request_error", key)
        cfg = self.config
        if cfg.model is not None and body.get("model") != cfg.model:
            return self._error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError", key)
        max_tokens = body.get("max_tokens")
        if cfg.max_tokens_limit is not None and isinstance(max_tokens, int) and max_tokens > cfg.max_tokens_limit:
            return self._error(400, f"max_tokens={max_tokens} exceeds this model's limit of {cfg.max_tokens_limit} tokens", "BadRequestError", key)
        n = body.get("n", 1)
        if not isinstance(n, int) or n < 1:
            return self._error(400, "n must be a positive integer", "BadRequestError", key)

        wait = self._admit()
        if wait is not None:
            headers = {"Retry-After": f"{wait:.3f}", "retry-after-ms": str(max(1, int(wait * 1000)))}
            return self._error(429, "Rate limit reached; please retry later", "rate_limit_error", key, headers)
        fault = self._pick_fault(attempt)
        if fault == "429":
            headers = {"Retry-After": f"{cfg.retry_after:g}", "retry-after-ms": str(int(cfg.retry_after * 1000))}
            return self._error(429, "Rate limit reached; please retry later", "rate_limit_error", key, headers)
        await self._latency()
        if fault == "500":
            return self._error(500, "injected internal server error", "InternalServerError", key)
        if fault == "disconnect":
            self.log.reply(key, "disconnect")
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPInternalServerError()  # never reaches the client: the socket is gone
        if fault == "slow":
            deadline = time.monotonic() + cfg.slow_delay
            while time.monotonic() < deadline:
                if request.transport is None or request.transport.is_closing():
                    self.log.reply(key, "abandoned")  # the client gave up (timeout, or a hedge won)
                    raise web.HTTPRequestTimeout()
                await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        reply = self._completion(body, messages, 1 if cfg.ignore_n else n)
        if fault == "malformed":
            self.log.reply(key, "malformed")
            text = json.dumps(reply)
            return web.Response(status=200, text=text[: len(text) // 2], content_type="application/json")
        # A slow reply is sent, but after the client's deadline: not counted as answered.
        self.log.reply(key, "slow" if fault == "slow" else "200")
        return web.json_response(reply)

    def _completion(self, body: dict[str, Any], messages: list[dict[str, Any]], n: int) -> dict[str, Any]:
        answer = expected_answer(messages)
        choices = []
        for i in range(n):
            if body.get("tools"):
                choices.append({"index": i, **self._tool_message(answer, i)})
                continue
            think = f"<think>sample {i}</think>\n" if i else ""
            content = f"{think}```json\n{answer}\n```"
            choices.append({"index": i, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"})
        prompt_tokens = sum(_tokens(m.get("content") or "") for m in messages if isinstance(m.get("content"), str))
        completion_tokens = sum(_tokens(c["message"]["content"] or json.dumps(c["message"].get("tool_calls"))) for c in choices)
        return {
            "id": f"chatcmpl-{messages_hash(messages)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
        }

    def _tool_message(self, answer: str, i: int) -> dict[str, Any]:
        """A function-calling reply carrying the expected label's calls, as ``tool_mode`` says."""
        calls = expected_calls(answer)
        mode = self.config.tool_mode
        if mode == "tag":
            tags = "".join(f"<tool_call>\n{json.dumps({'name': name, 'arguments': args}, ensure_ascii=False)}\n</tool_call>" for name, args in calls)
            return {"message": {"role": "assistant", "content": tags}, "finish_reason": "stop"}
        openai_calls = []
        for k, (name, args) in enumerate(calls):
            arguments = json.dumps(args, ensure_ascii=False)
            if mode == "torn":
                arguments = arguments[: len(arguments) // 2]
            openai_calls.append({"id": f"call_{i}_{k}", "type": "function", "function": {"name": name, "arguments": arguments}})
        message = {"role": "assistant", "content": None, "tool_calls": openai_calls, "reasoning_content": f"calling {len(calls)} tool(s)"}
        return {"message": message, "finish_reason": "tool_calls"}

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.log.snapshot())

    async def set_config(self, request: web.Request) -> web.Response:
        try:
            self.config.update(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": {"message": str(exc)}}, status=400)
        return web.json_response(dataclasses.asdict(self.config))

    async def reset(self, request: web.Request) -> web.Response:
        self.log.reset()
        self.rng.seed(self.config.seed)
        self._tokens = None
        return web.json_response({"ok": True})


class StubServer:
    """Runs :class:`StubApp` on its own event loop in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        config = StubConfig()
        config.update(**options)
        self.stub = StubApp(config)
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> StubConfig:
        return self.stub.config

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def configure(self, **changes: Any) -> None:
        self.stub.config.update(**changes)

    def stats(self) -> dict[str, Any]:
        return self.stub.log.snapshot()

    def reset(self) -> None:
        self.stub.log.reset()
        self.stub.rng.seed(self.stub.config.seed)
        self.stub._tokens = None

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.stub.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> "StubServer":
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
            leftover = asyncio.all_tasks(loop)  # handlers still sleeping (slow replies)
            for task in leftover:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="openai-stub", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop = None

    def __enter__(self) -> "StubServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible stub server with latency and fault injection")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    for field in dataclasses.fields(StubConfig):
        if field.name == "faults":
            parser.add_argument("--faults", default="", help=f"comma-separated schedule per conversation: {','.join(FAULTS)}")
            continue
        if field.type == "bool":
            parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, action="store_true")
            continue
        kind = {"float": float, "int": int}.get(str(field.type).split(" ")[0], str)
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, type=kind, default=field.default)
    args = vars(parser.parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    args["faults"] = tuple(f for f in args["faults"].split(",") if f)
    server = StubServer(host=host, port=port, **args).start()
    print(f"READY {server.base_url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
