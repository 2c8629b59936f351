"""Adaptive concurrency (AIMD) and hedging decisions: pure bookkeeping, no I/O.

:class:`AIMDLimit` — one endpoint's concurrency limit. When rate limiting is sustained (at least
``threshold`` of the last ``window`` replies were HTTP 429) the limit is multiplied by
``decrease`` — at most once per ``cooldown`` seconds, so one burst of 429s halves it once, and
the count starts afresh after each decrease, so the next one needs new evidence —
and every success adds ``1 / limit`` (about +1 per round trip of the whole window), as TCP
and inspect_ai do. A 429 reply comes back at once, so concurrency alone cannot slow a client
down to a rate limit: sustained 429s also start *pacing* — request starts are spaced to the
rate the server was measured to admit (its successes over the last second, or over at least
half a second early in a run), no start comes
before a ``Retry-After``, and the pace then grows by one request/s per second until the next
429s. Scattered 429s (a few percent: a provider's occasional refusal, not our rate) and 5xx
change nothing, also once pacing has started: the sample that got one just waits its
``Retry-After`` and tries again. (Counting over a window of replies, not an exponentially
smoothed share, is what keeps a chance cluster of scattered 429s from ever looking sustained:
with 2% random 429s, 10 in 100 replies happens about once in 30,000 windows.)

:class:`HedgePolicy` — when one attempt has run ``multiplier`` times the running p95 latency
(never sooner than ``floor`` seconds, and only once ``min_samples`` latencies are known), a
duplicate is sent; at most ``share`` of the samples started may be hedged.
"""

from __future__ import annotations

import collections
import math
import time
from dataclasses import dataclass, field


MIN_MEASURED_S = 0.5  # successes over at least this long before a pace is derived from them


@dataclass
class AIMDLimit:
    maximum: int
    minimum: int = 1
    decrease: float = 0.5
    threshold: float = 0.1  # share of the last `window` replies that were 429: sustained
    window: int = 100
    cooldown: float = 1.0
    enabled: bool = True
    limit: float = 0.0
    decreases: int = 0
    pace: float | None = None  # request starts per second while rate limited; None: unpaced
    _next_decrease: float = 0.0
    _next_start: float = 0.0
    _first_success: float | None = None
    _admitted: collections.deque[float] = field(default_factory=collections.deque)  # success times, last second
    _recent: collections.deque[bool] = field(default_factory=collections.deque)  # last `window` replies: 429?
    _recent_limited: int = 0

    def __post_init__(self) -> None:
        self.minimum = max(1, min(self.minimum, self.maximum))
        self.limit = float(self.maximum)
        self._needed = max(2, math.ceil(self.threshold * self.window))

    def _count(self, rate_limited: bool) -> None:
        self._recent.append(rate_limited)
        self._recent_limited += rate_limited
        if len(self._recent) > self.window:
            self._recent_limited -= self._recent.popleft()

    def start_delay(self, now: float) -> float:
        """Seconds until the next request may start (0: now)."""
        return max(0.0, self._next_start - now) if self.enabled else 0.0

    def started(self, now: float) -> None:
        """A request starts now: the next one waits one pace interval."""
        if self.pace is not None:  # a start that woke late does not push the later ones back
            interval = 1.0 / self.pace
            self._next_start = max(self._next_start, now - interval) + interval

    @property
    def current(self) -> int:
        return max(self.minimum, int(self.limit))

    def on_reply(self, rate_limited: bool, now: float | None = None, retry_after: float | None = None) -> bool:
        """Record one HTTP reply (429 or not); True when the limit changed."""
        if not self.enabled:
            return False
        before = self.current
        now = time.monotonic() if now is None else now
        self._count(rate_limited)
        if not rate_limited:
            self.limit = min(float(self.maximum), self.limit + 1.0 / max(self.limit, 1.0))
            self._admitted.append(now)
            if self._first_success is None:
                self._first_success = now
            while self._admitted and self._admitted[0] < now - 1.0:
                self._admitted.popleft()
            if self.pace is not None:
                self.pace += 1.0 / self.pace  # +1 request/s per second of successes
            return self.current != before
        sustained = self._recent_limited >= self._needed
        if sustained and retry_after:
            self._next_start = max(self._next_start, now + min(retry_after, 5.0))
        if sustained and now >= self._next_decrease:
            self.limit = max(float(self.minimum), self.limit * self.decrease)
            span = min(1.0, now - self._first_success) if self._first_success is not None else 0.0
            if span >= MIN_MEASURED_S:  # the rate admitted over the last second (or what there is of it)
                admitted = 0.95 * sum(1 for t in self._admitted if t >= now - span) / span
                self.pace = max(1.0, admitted if self.pace is None else min(self.pace, admitted))
            self._recent.clear()  # measure again at the new limit
            self._recent_limited = 0
            self._next_decrease = now + self.cooldown
            self.decreases += 1
        return self.current != before


@dataclass
class HedgePolicy:
    enabled: bool
    share: float = 0.03
    multiplier: float = 3.0
    floor: float = 0.5
    min_samples: int = 16
    window: int = 256
    started: int = 0  # samples started
    hedged: int = 0  # duplicates sent
    won: int = 0  # duplicates that answered first
    _latencies: collections.deque[float] = field(default_factory=collections.deque)
    _p95: float | None = None
    _since_sort: int = 0

    def observe(self, latency: float) -> None:
        """A successful attempt's latency."""
        self._latencies.append(latency)
        if len(self._latencies) > self.window:
            self._latencies.popleft()
        self._since_sort += 1
        if self._p95 is None or self._since_sort >= 16:  # re-sorting every reply would cost O(n log n) each
            self._since_sort = 0
            ordered = sorted(self._latencies)
            self._p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]

    def reset(self) -> None:
        """New counts for a new ``generate`` call; the latencies seen so far are kept."""
        self.started = self.hedged = self.won = 0

    def delay(self) -> float | None:
        """Seconds after which an attempt still running gets a duplicate; None: never."""
        if not self.enabled or len(self._latencies) < self.min_samples or self._p95 is None:
            return None
        return max(self.floor, self.multiplier * self._p95)

    def take(self) -> bool:
        """Spend one hedge from the budget (False when the share is used up)."""
        if not self.enabled or self.hedged + 1 > self.share * self.started:
            return False
        self.hedged += 1
        return True
