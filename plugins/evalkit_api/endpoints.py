"""Several servers behind one backend: load spreading, per-endpoint limits, health.

Each :class:`Endpoint` has its own adaptive concurrency limit (:class:`AIMDLimit`, starting at
``backend.concurrency``). :meth:`EndpointPool.acquire` gives a request the healthy endpoint
with the lowest load (in flight / limit) that has room, waiting when none has. An endpoint that
refuses connections, or fails ``fail_threshold`` attempts in a row, is taken out for
``down_s`` seconds (doubling while it stays down, up to ``down_max_s``); its attempts in flight
are cancelled so that their samples retry on the others at once. After the pause it is
probed (``GET /models``) and put back when it answers. When no endpoint is healthy the least
recently failed one is used, so retries (and the run's "cannot connect" stop) still happen.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from evalkit_api.adaptive import AIMDLimit


@dataclass
class Endpoint:
    base_url: str
    limit: AIMDLimit
    in_flight: int = 0
    healthy: bool = True
    down_until: float = 0.0
    down_s: float = 0.0
    consecutive_failures: int = 0
    attempts: set[asyncio.Task[Any]] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: {"requests": 0, "ok": 0, "errors": 0, "rate_limited": 0, "hedged": 0, "taken_out": 0})

    @property
    def load(self) -> float:
        return self.in_flight / max(1, self.limit.current)

    def snapshot(self) -> dict[str, Any]:
        pace = self.limit.pace
        return {**self.counts, "healthy": self.healthy, "concurrency": self.limit.current, "concurrency_decreases": self.limit.decreases, "paced_rps": round(pace, 1) if pace else None}


class EndpointPool:
    """Endpoints, their limits and health; all methods run on the backend's event loop."""

    def __init__(
        self,
        base_urls: list[str],
        concurrency: int,
        *,
        adaptive: bool = True,
        min_concurrency: int = 1,
        fail_threshold: int = 5,
        down_s: float = 1.0,
        down_max_s: float = 30.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.endpoints = [Endpoint(url, AIMDLimit(maximum=concurrency, minimum=min_concurrency, enabled=adaptive)) for url in base_urls]
        self.fail_threshold = fail_threshold
        self.base_down_s = down_s
        self.down_max_s = down_max_s
        self.on_change = on_change or (lambda: None)
        self.probe: Callable[[Endpoint], Awaitable[bool]] | None = None
        # Requests waiting for room, oldest first, each with the endpoint it avoids. A freed
        # slot wakes one of them (waking all 64+ on every reply cost more CPU than the HTTP);
        # any other change (limits, health, pacing) wakes them all.
        self._waiters: collections.deque[tuple[asyncio.Future[None], Endpoint | None]] = collections.deque()
        self._probes: set[asyncio.Task[Any]] = set()
        self.halted = False

    # -- choosing ------------------------------------------------------------------------
    @property
    def concurrency(self) -> int:
        return sum(e.limit.current for e in self.endpoints if e.healthy)

    def _candidates(self, avoid: Endpoint | None) -> list[Endpoint]:
        healthy = [e for e in self.endpoints if e.healthy]
        if not healthy:  # everything is down: keep trying the one that failed longest ago
            healthy = [min(self.endpoints, key=lambda e: e.down_until)]
        others = [e for e in healthy if e is not avoid]
        return others or healthy

    def halt(self) -> None:
        """A reply that dooms every request arrived: no further attempt starts (the run ends)."""
        self.halted = True

    async def acquire(self, avoid: Endpoint | None = None) -> Endpoint:
        """An endpoint with room for one more attempt (its ``in_flight`` already counted);
        after :meth:`halt`, waits until the caller is cancelled."""
        while True:
            if self.halted:
                await asyncio.get_running_loop().create_future()
            self._revive()
            now = time.monotonic()
            candidates = self._candidates(avoid)
            room = [e for e in candidates if e.in_flight < e.limit.current and e.limit.start_delay(now) == 0.0]
            if room:
                endpoint = min(room, key=lambda e: e.load)
                endpoint.in_flight += 1
                endpoint.counts["requests"] += 1
                endpoint.limit.started(now)
                return endpoint
            wake = [e.down_until - now for e in self.endpoints if not e.healthy and self.probe is None]
            wake += [e.limit.start_delay(now) for e in candidates if e.in_flight < e.limit.current]
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (waiter, avoid)
            self._waiters.append(entry)
            try:
                await asyncio.wait_for(waiter, timeout=max(0.01, min(wake)) if wake else None)
            except asyncio.TimeoutError:
                pass
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one(None)  # woken for a slot it will not take: pass it on
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()
                try:
                    self._waiters.remove(entry)
                except ValueError:
                    pass

    def acquire_now(self, avoid: Endpoint | None = None) -> Endpoint:
        """An endpoint for a hedge, without waiting for room (hedges are budgeted elsewhere)."""
        self._revive()
        endpoint = min(self._candidates(avoid), key=lambda e: e.load)
        endpoint.in_flight += 1
        endpoint.counts["requests"] += 1
        endpoint.counts["hedged"] += 1
        return endpoint

    def release(self, endpoint: Endpoint) -> None:
        endpoint.in_flight -= 1
        self._wake_one(endpoint)

    def _wake_one(self, freed: Endpoint | None) -> None:
        """A slot on ``freed`` (None: anywhere) opened: wake the oldest waiter that may use it."""
        fallback = None
        for waiter, avoid in self._waiters:
            if waiter.done():
                continue
            if freed is None or avoid is not freed:
                waiter.set_result(None)
                return
            fallback = fallback or waiter
        if fallback is not None:  # all avoid it; one still takes it when nothing else is healthy
            fallback.set_result(None)

    def _changed(self) -> None:
        """Limits, health or pacing changed: every waiter looks again."""
        for waiter, _ in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- outcomes ------------------------------------------------------------------------
    def reply(self, endpoint: Endpoint, *, ok: bool, rate_limited: bool = False, retry_after: float | None = None) -> None:
        """An HTTP reply arrived (a success, a 429, or another status)."""
        if ok:
            endpoint.counts["ok"] += 1
            endpoint.consecutive_failures = 0
            endpoint.down_s = 0.0
        elif rate_limited:
            endpoint.counts["rate_limited"] += 1
        if endpoint.limit.on_reply(rate_limited, retry_after=retry_after):
            self._changed()
            self.on_change()

    def failure(self, endpoint: Endpoint, *, connect: bool) -> None:
        """An attempt failed without a usable reply (5xx, timeout, dropped or refused connection)."""
        endpoint.counts["errors"] += 1
        endpoint.consecutive_failures += 1
        if connect or endpoint.consecutive_failures >= self.fail_threshold:
            self.take_out(endpoint)

    def take_out(self, endpoint: Endpoint) -> None:
        if not endpoint.healthy or len(self.endpoints) < 2:
            return  # one endpoint: nowhere else to go; retries and backoff decide
        endpoint.healthy = False
        endpoint.counts["taken_out"] += 1
        endpoint.down_s = min(self.down_max_s, endpoint.down_s * 2 or self.base_down_s)
        endpoint.down_until = time.monotonic() + endpoint.down_s
        for task in list(endpoint.attempts):  # their samples go to the other endpoints now
            task.cancel()
        if self.probe is not None:
            task = asyncio.ensure_future(self._probe_later(endpoint))
            self._probes.add(task)
            task.add_done_callback(self._probes.discard)
        self._changed()
        self.on_change()

    async def _probe_later(self, endpoint: Endpoint) -> None:
        while not endpoint.healthy:
            await asyncio.sleep(max(0.0, endpoint.down_until - time.monotonic()))
            if self.probe is not None and await self.probe(endpoint):
                self._put_back(endpoint)
                return
            endpoint.down_s = min(self.down_max_s, endpoint.down_s * 2)
            endpoint.down_until = time.monotonic() + endpoint.down_s

    def _revive(self) -> None:
        """Without a probe, a pause that has run out puts the endpoint back on trial."""
        if self.probe is not None:
            return
        now = time.monotonic()
        for endpoint in self.endpoints:
            if not endpoint.healthy and now >= endpoint.down_until:
                self._put_back(endpoint)

    def _put_back(self, endpoint: Endpoint) -> None:
        endpoint.healthy = True
        endpoint.consecutive_failures = 0
        self._changed()
        self.on_change()

    async def close(self) -> None:
        for task in list(self._probes):
            task.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {e.base_url: e.snapshot() for e in self.endpoints}
