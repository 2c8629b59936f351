"""When to try a request again, and how long to wait first.

Two kinds of failure, kept apart on purpose:

* :class:`RetryableError` — the *attempt* failed but the request is fine: HTTP 429 and 5xx
  (also 408/409), a per-attempt timeout, a connection error, a torn or malformed body.
  Another attempt after a backoff will most likely succeed.
* :class:`FatalError` — the *run* cannot succeed: 401/403 (bad key), 400/404/422 (a wrong
  model name, base URL or request field). Every other request would fail the same way, so
  the backend stops at once instead of burning the quota on N identical failures.

:class:`Backoff` computes the wait before attempt ``k + 1``: ``initial * multiplier**(k-1)``
capped at ``max``, plus up to ``jitter`` × that at random so that many requests failing
together (a 503 burst) do not come back together. A server's ``Retry-After`` (capped at
``retry_after_max``) is the least we wait: it knows when capacity returns, and a tiny one
("retry in 20 ms") must not let a sample burn its retries in a second of 429s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


class RetryableError(Exception):
    """One attempt failed in a way another attempt may fix.

    ``reason`` is short and stable (``"HTTP 503"``, ``"timeout"``, ``"connection error"``,
    ``"malformed response"``): failures are grouped by it in the end-of-run summary.
    """

    def __init__(self, reason: str, detail: str = "", *, retry_after: float | None = None, connect: bool = False) -> None:
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
        self.connect = connect  # the server could not be reached at all (no HTTP exchange)
        super().__init__(f"{reason}: {detail}" if detail else reason)


class FatalError(Exception):
    """A reply that dooms the whole run (auth, invalid request, unknown model)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"HTTP {status}: {detail}")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with proportional jitter; see the module docstring."""

    initial: float = 0.1
    max: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    retry_after_max: float = 120.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.max < 0 or self.multiplier < 1 or self.jitter < 0:
            raise ValueError("backoff needs initial >= 0, max >= 0, multiplier >= 1 and jitter >= 0")

    def delay(self, failed_attempts: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``failed_attempts`` (>= 1) failures in a row."""
        base = min(self.max, self.initial * self.multiplier ** max(0, failed_attempts - 1))
        if retry_after is not None and retry_after > 0:
            return max(min(retry_after, self.retry_after_max), base)
        spread = (rng or random).uniform(0.0, self.jitter * base) if self.jitter else 0.0
        return base + spread
