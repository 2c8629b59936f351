"""Hedged requests, adaptive concurrency and several endpoints, against real servers.

No timing assertions: every check is about what was sent, answered, cancelled and counted.
"""

from __future__ import annotations

import time

from evalkit.types import Request, Result
from evalkit_api.backend import ApiBackend
from tests.api.test_backend import make_requests


class StatusRecorder:
    """A progress object with ``update_status``, as the pipeline's RunProgress has."""

    def __init__(self) -> None:
        self.updates: list[dict] = []

    def retrying(self, delta: int) -> None:
        pass

    def update_status(self, **fields) -> None:
        self.updates.append(fields)


def run(backend: ApiBackend, requests: list[Request], on_result=None) -> list[Result]:
    results: list[Result] = []

    def collect(result: Result) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    backend.generate(requests, collect)
    assert sorted(r.index for r in results) == sorted(r.index for r in requests), "each sample exactly once"
    return sorted(results, key=lambda r: r.index)


def wait_for(condition, what: str, limit: float = 20.0) -> None:
    """Wait for an event the server records asynchronously (not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def hedging_backend(stub, **options) -> ApiBackend:
    options = {"model": "m", "hedge": True, "hedge_floor": 0.2, "timeout": 20.0, "backoff_initial": 0.01, "concurrency": 16, **options}
    return ApiBackend(base_url=stub.base_url, **options)


def warm_up(backend: ApiBackend, stub) -> None:
    """Enough fast answers for a latency p95 (hedging waits for min_samples of them)."""
    run(backend, make_requests(20, offset=1000))
    stub.reset()


def test_a_straggler_is_hedged_the_first_answer_wins_and_the_other_is_cancelled(stub):
    backend = hedging_backend(stub, hedge_share=1.0)
    warm_up(backend, stub)
    stub.configure(faults=("slow",), slow_delay=60.0)  # every first attempt hangs; the second answers
    results = run(backend, make_requests(6))
    assert all(r.ok and r.attempts == 2 for r in results)
    stats = backend.stats()
    assert stats["num_hedged"] == 6 and stats["num_hedge_wins"] == 6
    # One answer per sample; each hanging twin was abandoned by the client, not waited out.
    assert set(stub.stats()["answered"].values()) == {1} and len(stub.stats()["answered"]) == 6
    wait_for(lambda: stub.stats()["status"].get("abandoned", 0) == 6, "6 hung attempts cancelled")
    assert backend.counters.attempt_failures == {}


def test_hedges_stay_within_their_share(stub):
    backend = hedging_backend(stub, hedge_share=0.25, timeout=1.5, concurrency=8)
    warm_up(backend, stub)
    stub.configure(faults=("slow",), slow_delay=60.0)
    results = run(backend, make_requests(8))
    assert all(r.ok and r.attempts == 2 for r in results)
    assert backend.stats()["num_hedged"] == 2  # 25% of 8; the other six wait out their timeout
    assert backend.counters.attempt_failures == {"timeout": 6}


def test_hedging_is_off_for_public_hosts_and_on_for_local_ones():
    assert not ApiBackend(base_url="https://api.example.com/v1", model="m", api_key_env=None).hedge
    assert ApiBackend(base_url="http://127.0.0.1:9/v1", model="m").hedge
    assert ApiBackend(base_url="http://10.0.0.5:8000/v1", model="m").hedge
    assert ApiBackend(base_url="https://api.example.com/v1", model="m", api_key_env=None, hedge=True).hedge
    assert not ApiBackend(base_url="http://127.0.0.1:9/v1", model="m", hedge=False).hedge


def test_no_hedge_without_latency_history(stub):
    backend = hedging_backend(stub, hedge_share=1.0, timeout=1.0)
    stub.configure(faults=("slow",), slow_delay=60.0)
    results = run(backend, make_requests(4))
    assert all(r.ok and r.attempts == 2 for r in results) and backend.stats()["num_hedged"] == 0


def aimd_run(stub, fault: str) -> tuple[ApiBackend, StatusRecorder]:
    stub.configure(faults=(fault,) * 3, retry_after=0.01)
    progress = StatusRecorder()
    backend = ApiBackend(base_url=stub.base_url, model="m", hedge=False, concurrency=16, backoff_initial=0.01, backoff_jitter=0.0, progress=progress)
    results = run(backend, make_requests(32))
    assert all(r.ok and r.attempts == 4 for r in results)
    return backend, progress


def test_sustained_429s_shrink_concurrency(stub):
    backend, progress = aimd_run(stub, "429")
    [endpoint] = backend.stats()["endpoints"].values()
    assert endpoint["concurrency_decreases"] >= 1 and endpoint["rate_limited"] == 96
    assert min(u["concurrency"] for u in progress.updates) < 16
    assert backend.stats()["num_rate_limited"] == 96


def test_server_errors_do_not_shrink_concurrency(stub):
    backend, progress = aimd_run(stub, "500")
    [endpoint] = backend.stats()["endpoints"].values()
    assert endpoint["concurrency_decreases"] == 0 and endpoint["concurrency"] == 16 and endpoint["errors"] == 96
    assert all(u["concurrency"] == 16 for u in progress.updates)
    assert any(u["retrying"] > 0 for u in progress.updates)


def test_a_rate_limited_server_is_followed_not_stormed(stub):
    stub.configure(rate_limit=50.0, rate_burst=0.1)
    backend = ApiBackend(base_url=stub.base_url, model="m", hedge=False, concurrency=32, backoff_initial=0.01)
    results = run(backend, make_requests(60))
    assert all(r.ok for r in results)
    [endpoint] = backend.stats()["endpoints"].values()
    assert endpoint["concurrency_decreases"] >= 1 and endpoint["ok"] == 60


def test_load_is_spread_over_endpoints(stub_process):
    servers = [stub_process("--latency", "0.02") for _ in range(2)]
    backend = ApiBackend(base_url=[s.base_url for s in servers], model="m", hedge=False, concurrency=4)
    run(backend, make_requests(40))
    counts = backend.stats()["endpoints"]
    assert set(counts) == {s.base_url for s in servers}
    assert all(c["ok"] > 0 for c in counts.values()) and sum(c["ok"] for c in counts.values()) == 40
    assert [s.stats()["total"] for s in servers] == [counts[s.base_url]["requests"] for s in servers]


def test_an_endpoint_killed_mid_run_fails_over_and_every_sample_arrives_once(stub_process):
    first, second = stub_process("--latency", "0.05"), stub_process("--latency", "0.05")
    backend = ApiBackend(base_url=[first.base_url, second.base_url], model="m", hedge=False, concurrency=4, backoff_initial=0.01, endpoint_down_s=30.0)
    seen: list[int] = []

    def on_result(result: Result) -> None:
        seen.append(result.index)
        if len(seen) == 10:
            first.kill()  # kill -9 with requests in flight

    results = run(backend, make_requests(60), on_result)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    counts = backend.stats()["endpoints"]
    assert counts[first.base_url]["taken_out"] >= 1 and not counts[first.base_url]["healthy"]
    assert counts[first.base_url]["ok"] + counts[second.base_url]["ok"] == 60
    answered = second.stats()["answered"]
    assert sum(answered.values()) == counts[second.base_url]["ok"]


def test_an_endpoint_down_at_start_is_left_out_and_the_run_completes(stub, closed_url):
    backend = ApiBackend(base_url=[closed_url, stub.base_url], model="m", hedge=False, concurrency=4)
    results = run(backend, make_requests(10))
    assert all(r.ok for r in results)
    counts = backend.stats()["endpoints"]
    assert counts[closed_url]["taken_out"] == 1 and counts[closed_url]["ok"] == 0 and counts[stub.base_url]["ok"] == 10


def test_on_result_raising_stops_the_run_and_the_loop(stub):
    backend = ApiBackend(base_url=stub.base_url, model="m", hedge=False, concurrency=2)
    stub.configure(latency=0.02)

    class Stop(Exception):
        pass

    def on_result(result: Result) -> None:
        raise Stop

    try:
        backend.generate(make_requests(50), on_result)
    except Stop:
        pass
    else:
        raise AssertionError("on_result's error was swallowed")
    # The (at most 2) requests cancelled in flight may already sit in the server's socket
    # buffer and be counted a moment later; after that, nothing more arrives: a loop still
    # running would send about 20 more in the next 0.4 s.
    time.sleep(0.2)
    sent = stub.stats()["total"]
    time.sleep(0.4)  # nothing more is sent once generate has returned
    assert stub.stats()["total"] == sent < 50


def test_a_failed_duplicate_is_replaced_instead_of_waiting_out_the_straggler(stub):
    backend = hedging_backend(stub, hedge_share=1.0, timeout=30.0)
    backend.hedger.share = 2.0  # a budget of two duplicates per sample (the option stops at one)
    warm_up(backend, stub)
    # first attempt hangs; its duplicate gets a 500; the replacement duplicate answers
    stub.configure(faults=("slow", "500"), slow_delay=60.0)
    results = run(backend, make_requests(4))
    assert all(r.ok and r.attempts == 3 for r in results)
    assert backend.stats()["num_hedged"] == 8 and backend.stats()["num_hedge_wins"] == 4
    assert backend.counters.attempt_failures == {}  # no attempt waited out its timeout
    assert stub.stats()["status"]["500"] == 4 and stub.stats()["status"]["200"] == 4
    wait_for(lambda: stub.stats()["status"].get("abandoned", 0) == 4, "4 hung attempts cancelled")


def test_scattered_429s_never_shrink_concurrency_even_after_a_burst(stub):
    from evalkit_api.adaptive import AIMDLimit

    limit = AIMDLimit(maximum=64)
    now = 0.0
    for _ in range(200):  # two seconds of answers, then a burst: 20 429s in a row
        now += 0.01
        limit.on_reply(False, now=now)
    for _ in range(20):
        now += 0.01
        limit.on_reply(True, now=now)
    assert limit.decreases == 1 and limit.current == 32 and limit.pace is not None  # rate limited: paced
    for i in range(3000):  # then one reply in 25 is a 429 (4%), for a long time
        now += 0.01
        limit.on_reply(i % 25 == 0, now=now, retry_after=0.5)
        if i >= 200:  # once the burst (and its Retry-After) is behind
            assert limit.start_delay(now) == 0.0, "a scattered 429 must not hold back every request"
    assert limit.decreases == 1 and limit.current == 64

    # and against a real server answering 3% of requests with 429
    stub.configure(p429=0.03, retry_after=0.01, seed=3)
    backend = ApiBackend(base_url=stub.base_url, model="m", hedge=False, concurrency=16, backoff_initial=0.01)
    results = run(backend, make_requests(300))
    assert all(r.ok for r in results)
    [endpoint] = backend.stats()["endpoints"].values()
    assert endpoint["rate_limited"] > 0 and endpoint["concurrency_decreases"] == 0 and endpoint["concurrency"] == 16
