"""ApiBackend driven directly against the real stub server: retries, waits, cache, errors."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from evalkit.cache import ResponseCache
from evalkit.errors import BackendError, ConfigError
from evalkit.progress import RunProgress
from evalkit.types import GenerationConfig, Request, Result
from evalkit_api.backend import ApiBackend
from tests.servers.openai_stub import messages_hash

KEY = "sk-direct-test-9c0ffee1234"


def make_requests(count: int, *, offset: int = 0) -> list[Request]:
    requests = []
    for i in range(offset, offset + count):
        label = [{"toolName": "t", "paramList": {"i": i}}]
        content = f"question {i}\n#expect: {json.dumps({'label': label})}"
        requests.append(Request(index=i, id=f"s{i}", messages=[{"role": "user", "content": content}]))
    return requests


class RecordingBackend(ApiBackend):
    """Records every backoff wait (seconds) instead of timing anything."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.waits: list[float] = []

    async def _wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        await super()._wait(seconds)


def run(backend: ApiBackend, requests: list[Request]) -> list[Result]:
    results: list[Result] = []
    backend.generate(requests, results.append)
    return sorted(results, key=lambda r: r.index)


def backend_for(stub, **options) -> RecordingBackend:
    options.setdefault("model", "m")
    options.setdefault("backoff_initial", 0.01)
    options.setdefault("backoff_jitter", 0.0)
    options.setdefault("timeout", 5.0)
    options.setdefault("hedge", False)  # exact attempt counts below; hedging has its own tests
    return RecordingBackend(base_url=stub.base_url, **options)


def test_exponential_backoff_after_server_errors(stub):
    stub.configure(faults=("500", "500", "500", "500"))
    backend = backend_for(stub, backoff_initial=0.01, backoff_multiplier=3.0)
    [result] = run(backend, make_requests(1))
    assert result.ok and result.attempts == 5
    assert backend.waits == pytest.approx([0.01, 0.03, 0.09, 0.27])
    assert stub.stats()["received"] == {messages_hash(make_requests(1)[0].messages): 5}


def test_waits_are_capped_and_jittered_within_bounds(stub):
    stub.configure(faults=("500",) * 6)
    backend = backend_for(stub, backoff_initial=0.01, backoff_multiplier=2.0, backoff_max=0.05, backoff_jitter=0.5)
    [result] = run(backend, make_requests(1))
    assert result.ok and len(backend.waits) == 6
    for k, wait in enumerate(backend.waits):
        base = min(0.05, 0.01 * 2**k)
        assert base <= wait <= 1.5 * base


def test_retry_after_is_honoured(stub):
    stub.configure(faults=("429", "429"), retry_after=0.25)
    backend = backend_for(stub, backoff_initial=0.01)
    [result] = run(backend, make_requests(1))
    assert result.ok and result.attempts == 3
    assert backend.waits == pytest.approx([0.25, 0.25])


def test_timeouts_malformed_bodies_and_dropped_connections_are_retried(stub):
    stub.configure(faults=("slow", "malformed", "disconnect"), slow_delay=5.0)
    backend = backend_for(stub, timeout=1.0)
    results = run(backend, make_requests(3))
    assert [r.attempts for r in results] == [4, 4, 4] and all(r.ok for r in results)
    assert backend.counters.attempt_failures == {"timeout": 3, "malformed response": 3, "connection error": 3}
    for result, request in zip(results, make_requests(3)):
        label = json.loads(request.messages[0]["content"].split("#expect: ")[1])
        assert json.loads(result.outputs[0].strip("`\njson")) == label
        assert result.usage["total_tokens"] == result.usage["prompt_tokens"] + result.usage["completion_tokens"]


def test_a_sample_that_keeps_failing_is_recorded_and_the_run_completes(stub):
    stub.configure(p500=1.0)
    backend = backend_for(stub, max_retries=2)
    results = run(backend, make_requests(4))
    assert len(results) == 4
    for result in results:
        assert not result.ok and result.attempts == 3
        assert result.error.startswith("HTTP 500: injected internal server error (after 3 attempts)")
    assert backend.counters.failures == {"HTTP 500": 4}
    assert stub.stats()["total"] == 12


def test_progress_counts_each_backoff_and_ends_balanced(stub):
    stub.configure(faults=("500", "429"), retry_after=0.02)
    progress = RunProgress(5, enabled=False)
    backend = backend_for(stub, progress=progress)
    run(backend, make_requests(5))
    assert progress.retries_total == 10 and progress.retrying_now == 0


def test_results_arrive_one_at_a_time_on_the_calling_thread(stub):
    stub.configure(latency=0.01, p500=0.3, seed=1)
    backend = backend_for(stub, concurrency=16)
    caller = threading.get_ident()
    active = []
    seen = []

    def on_result(result: Result) -> None:
        assert not active, "on_result re-entered"
        active.append(1)
        seen.append((threading.get_ident(), result.index))
        active.pop()

    backend.generate(make_requests(40), on_result)
    assert sorted(i for _, i in seen) == list(range(40))
    assert {t for t, _ in seen} == {caller}


def test_cache_serves_a_rerun_and_stores_each_of_n_samples(stub, tmp_path):
    generation = GenerationConfig(n=3, temperature=0.7, seed=5)
    with ResponseCache(tmp_path / "cache") as cache:
        first = run(backend_for(stub, generation=generation, cache=cache), make_requests(6))
        assert len(cache) == 18
        assert all(len(r.outputs) == 3 and not r.cached for r in first)
        sent = stub.stats()["total"]
        assert sent == 6
        second = run(backend_for(stub, generation=generation, cache=cache), make_requests(6))
        assert stub.stats()["total"] == sent
        assert all(r.cached and r.attempts == 0 for r in second)
        assert [r.outputs for r in second] == [r.outputs for r in first]
        assert [r.usage for r in second] == [r.usage for r in first]
        # Other generation settings are other answers: nothing reused.
        run(backend_for(stub, generation=GenerationConfig(n=3, temperature=0.7, seed=6), cache=cache), make_requests(6))
        assert stub.stats()["total"] == sent + 6


def test_failures_are_not_cached(stub, tmp_path):
    stub.configure(p500=1.0)
    with ResponseCache(tmp_path / "cache") as cache:
        run(backend_for(stub, cache=cache, max_retries=0), make_requests(3))
        assert len(cache) == 0
        stub.configure(p500=0.0)
        results = run(backend_for(stub, cache=cache), make_requests(3))
        assert all(r.ok and not r.cached for r in results) and len(cache) == 3


def test_unknown_model_stops_the_run_without_retries(stub):
    backend = backend_for(stub, model="not-served", concurrency=2)
    delivered: list[Result] = []
    with pytest.raises(BackendError) as err:
        backend.generate(make_requests(10), delivered.append)
    assert "HTTP 404" in str(err.value) and "backend.model" in str(err.value)
    assert delivered == [] and stub.stats()["total"] <= 2


def test_wrong_key_error_names_the_variable_and_hides_the_key(stub, monkeypatch, caplog):
    stub.configure(api_key="right-key-0000")
    monkeypatch.setenv("MY_GATEWAY_KEY", KEY)
    backend = backend_for(stub, api_key_env="MY_GATEWAY_KEY")
    with caplog.at_level(logging.DEBUG), pytest.raises(BackendError) as err:
        backend.generate(make_requests(3), lambda r: None)
    message = str(err.value)
    assert "MY_GATEWAY_KEY" in message and "401" in message and "\n" not in message
    assert KEY not in message and KEY not in caplog.text


def test_the_key_and_headers_are_sent(stub, monkeypatch):
    stub.configure(api_key=KEY)
    monkeypatch.setenv("MY_GATEWAY_KEY", KEY)
    assert all(r.ok for r in run(backend_for(stub, api_key_env="MY_GATEWAY_KEY"), make_requests(2)))
    # A key given as a header (e.g. a gateway's own scheme) works without any env var.
    assert all(r.ok for r in run(backend_for(stub, api_key_env=None, headers={"Authorization": f"Bearer {KEY}"}), make_requests(2, offset=2)))


def test_model_is_discovered_when_not_given(stub):
    backend = backend_for(stub, model=None)
    assert all(r.ok for r in run(backend, make_requests(2)))
    assert backend.model == "m"


def test_unreachable_at_start_is_one_error_naming_base_url(closed_url):
    base_url = closed_url
    backend = ApiBackend(base_url=base_url, model="m")
    with pytest.raises(BackendError) as err:
        backend.generate(make_requests(5), lambda r: None)
    assert "cannot connect" in str(err.value) and base_url in str(err.value)


def test_server_lost_mid_run_stops_instead_of_failing_every_sample(stub):
    backend = backend_for(stub, max_retries=2)
    results: list[Result] = []
    backend.generate(make_requests(2), results.append)  # reachable: preflight passes
    stub.stop()

    async def no_preflight(client, pool):
        return None

    backend._preflight = no_preflight  # the server dies after the start-up check
    with pytest.raises(BackendError) as err:
        backend.generate(make_requests(3, offset=2), results.append)
    assert "cannot connect" in str(err.value) and len(results) == 2


def test_missing_key_for_a_remote_server_is_a_warning(monkeypatch, caplog):
    monkeypatch.delenv("SOME_UNSET_KEY_VAR", raising=False)
    with caplog.at_level(logging.WARNING, logger="evalkit.api"):
        ApiBackend(base_url="https://api.example.com/v1", model="m", api_key_env="SOME_UNSET_KEY_VAR")
        ApiBackend(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="SOME_UNSET_KEY_VAR")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "SOME_UNSET_KEY_VAR" in warnings[0] and "api.example.com" in warnings[0]


@pytest.mark.parametrize(
    "options, where",
    [
        ({"concurrency": 0}, "backend.concurrency"),
        ({"timeout": 0}, "backend.timeout"),
        ({"base_url": "127.0.0.1:8000/v1"}, "backend.base_url"),
        ({"bogus": 1}, "backend.bogus"),
        ({"model": 3}, "backend.model"),
        ({"event_loop": "trio"}, "backend.event_loop"),
    ],
)
def test_bad_options_name_their_key(options, where):
    from evalkit.config import validate_options

    with pytest.raises(ConfigError) as err:
        # the path the pipeline takes: typed options first, then the backend's own checks
        checked = validate_options(ApiBackend, {"base_url": "http://127.0.0.1:9/v1", **options}, path="backend", plugin="backend 'api'")
        ApiBackend(**checked)
    assert str(err.value).startswith(where)


def test_what_goes_over_the_wire(stub):
    generation = GenerationConfig(max_new_tokens=48, temperature=0.6, top_p=0.9, top_k=20, n=2, seed=11, stop=("</s>",))
    extra = {"chat_template_kwargs": {"enable_thinking": False}}
    backend = backend_for(stub, generation=generation, extra_body=extra, headers={"X-Trace": "evalkit-test"})
    [request] = make_requests(1)
    [result] = run(backend, [request])
    assert len(result.outputs) == 2 and result.outputs[1].startswith("<think>sample 1</think>")
    key = messages_hash(request.messages)
    body = stub.stats()["bodies"][key]
    assert body == {
        "model": "m",
        "messages": request.messages,
        "max_tokens": 48,
        "temperature": 0.6,
        "top_p": 0.9,
        "top_k": 20,
        "n": 2,
        "seed": 11,
        "stop": ["</s>"],
        "stream": False,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    assert stub.stats()["headers"][key]["X-Trace"] == "evalkit-test"


def test_secret_header_values_are_registered_for_redaction():
    from evalkit.secrets import redact_text

    ApiBackend(base_url="http://127.0.0.1:9/v1", model="m", headers={"Authorization": "Bearer tok-hdr-4242abcd", "X-Api-Key": "xk-77aa88bb"})
    text = redact_text("sent Bearer tok-hdr-4242abcd and xk-77aa88bb")
    assert "tok-hdr-4242abcd" not in text and "xk-77aa88bb" not in text


def test_a_server_that_ignores_n_stops_the_run_naming_generation_n(stub):
    stub.configure(ignore_n=True)
    backend = backend_for(stub, generation=GenerationConfig(n=3), concurrency=2)
    with pytest.raises(BackendError) as err:
        backend.generate(make_requests(6), lambda r: None)
    assert str(err.value).startswith("generation.n: 1 of 3 choices returned") and stub.stats()["total"] <= 2


def test_generate_works_when_called_inside_a_running_event_loop(stub):
    import asyncio

    backend = backend_for(stub)
    results: list[Result] = []

    async def notebook_cell() -> None:
        backend.generate(make_requests(3), results.append)

    asyncio.run(notebook_cell())
    assert sorted(r.index for r in results) == [0, 1, 2] and all(r.ok for r in results)


def test_proxy_from_the_environment_is_used(stub, monkeypatch):
    # The stub serves absolute-form requests as an HTTP proxy would forward them; the host
    # below does not resolve, so only a request sent through the proxy can be answered.
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", stub.base_url.rsplit("/v1", 1)[0])
    backend = ApiBackend(base_url="http://evalkit-proxy-test.invalid/v1", model="m", api_key_env=None, backoff_initial=0.01)
    results = run(backend, make_requests(3))
    assert all(r.ok for r in results), [r.error for r in results]
    assert stub.stats()["status"]["200"] == 3


def test_uvloop_where_installed_and_asyncio_on_request_give_the_same_answers(stub):
    # (the api extra installs uvloop everywhere but on Windows, where "auto" means asyncio)
    requests = make_requests(40)
    fast, plain = backend_for(stub), backend_for(stub, event_loop="asyncio")
    fast_results, plain_results = run(fast, requests), run(plain, requests)
    assert (fast.event_loop, fast.loop_used) == ("uvloop", "uvloop")
    assert (plain.event_loop, plain.loop_used) == ("asyncio", "asyncio")
    assert [(r.index, r.outputs, r.error) for r in fast_results] == [(r.index, r.outputs, r.error) for r in plain_results]
    assert all(r.ok for r in fast_results) and len(fast_results) == 40
