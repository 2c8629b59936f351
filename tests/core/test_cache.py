"""The response cache and the one policy every text backend uses (CachedGeneration)."""

from __future__ import annotations

import sqlite3

from evalkit.cache import CachedGeneration, ResponseCache, cache_key, cache_prompt
from evalkit.types import GenerationConfig, Request, Result

IDENTITY = {"kind": "test", "model": "m"}
GREEDY = GenerationConfig(max_new_tokens=8)


def test_put_many_is_one_transaction(tmp_path):
    with ResponseCache(tmp_path) as cache:
        statements: list[str] = []
        cache._conn.set_trace_callback(statements.append)  # type: ignore[union-attr]
        cache.put_many([(f"k{i}", {"text": str(i)}) for i in range(50)])
        cache._conn.set_trace_callback(None)  # type: ignore[union-attr]
        verbs = [s.split()[0].upper() for s in statements]
        assert verbs.count("BEGIN") == 1 and verbs.count("COMMIT") == 1
        assert verbs.index("BEGIN") < verbs.index("COMMIT") == len(verbs) - 1
        assert all(v == "INSERT" for v in verbs[1:-1]) and len(verbs) == 52
        assert len(cache) == 50


def test_put_many_rolls_back_as_a_whole(tmp_path):
    with ResponseCache(tmp_path) as cache:
        rows = [("a", {"text": "1"}), ("b", {"bad": object()})]
        try:
            cache.put_many(rows)
        except TypeError:
            pass
        assert len(cache) == 0


def test_malformed_rows_are_misses_not_errors(tmp_path):
    with ResponseCache(tmp_path) as cache:
        cache.put("ok", {"text": "fine"})
        conn = sqlite3.connect(str(cache.path))
        conn.executemany("INSERT INTO responses VALUES (?, ?, 0)", [("torn", '{"text": "x'), ("list", "[1, 2]")])
        conn.commit()
        conn.close()
        assert cache.get_many(["ok", "torn", "list"]) == {"ok": {"text": "fine"}}


def split(cache, generation, prompts, identity=IDENTITY):
    policy = CachedGeneration(cache, identity, generation)
    return policy, *policy.split(prompts)


def test_split_then_store_round_trips_every_field(tmp_path):
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1'}}]
    with ResponseCache(tmp_path) as cache:
        policy, hits, missing = split(cache, GREEDY, [(0, "p0"), (1, "p1")])
        assert hits == [] and missing == [0, 1]
        finished = Result(index=0, outputs=[""], latency_s=0.5, usage={"prompt_tokens": 3}, tool_calls=calls, finish_reason="tool_calls", reasoning="hmm")
        policy.store([finished, Result(index=1, error="HTTP 500")])
        assert len(cache) == 1  # failures are never stored
        _, hits, missing = split(cache, GREEDY, [(0, "p0"), (1, "p1")])
        assert missing == [1]
        [hit] = hits
        assert hit.cached and hit.attempts == 0 and hit.outputs == [""]
        assert (hit.tool_calls, hit.finish_reason, hit.reasoning, hit.latency_s, hit.usage) == (calls, "tool_calls", "hmm", 0.5, {"prompt_tokens": 3})


def test_a_partly_cached_or_malformed_sample_is_generated_again(tmp_path):
    gen = GenerationConfig(n=2, temperature=0.7, seed=3)
    with ResponseCache(tmp_path) as cache:
        key0 = cache_key(IDENTITY, "p", gen.to_dict(), 0)
        key1 = cache_key(IDENTITY, "p", gen.to_dict(), 1)
        cache.put(key0, {"text": "a"})
        assert split(cache, gen, [(0, "p")])[2] == [0]  # sample 1 of n=2 missing
        cache.put(key1, {"no_text": True})
        assert split(cache, gen, [(0, "p")])[2] == [0]  # malformed entry: a miss
        cache.put(key1, {"text": "b"})
        _, hits, missing = split(cache, gen, [(0, "p")])
        assert missing == [] and hits[0].outputs == ["a", "b"]


def test_sampled_outputs_are_reused_only_with_a_seed(tmp_path):
    unseeded = GenerationConfig(temperature=0.8, seed=None)
    seeded = GenerationConfig(temperature=0.8, seed=1)
    with ResponseCache(tmp_path) as cache:
        policy, _, missing = split(cache, unseeded, [(0, "p")])
        assert not policy.active
        policy.store([Result(index=0, outputs=["x"])])
        assert len(cache) == 0 and missing == [0]
        policy, _, _ = split(cache, seeded, [(0, "p")])
        policy.store([Result(index=0, outputs=["x"])])
        assert split(cache, seeded, [(0, "p")])[1][0].outputs == ["x"]
        assert split(cache, unseeded, [(0, "p")])[2] == [0]


def test_identity_is_resolved_only_when_the_cache_is_used(tmp_path):
    def identity():
        raise AssertionError("identity computed for an unused cache")

    assert split(ResponseCache(enabled=False), GREEDY, [(0, "p")], identity=identity)[2] == [0]
    assert split(None, GREEDY, [(0, "p")], identity=identity)[2] == [0]


def test_tools_and_tool_choice_are_part_of_the_key():
    plain = Request(index=0, id=0, messages=[])
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    with_tools = Request(index=0, id=0, messages=[], tools=tools)
    forced = Request(index=0, id=0, messages=[], tools=tools, tool_choice="required")
    keys = {cache_key(IDENTITY, cache_prompt("m", r), GREEDY.to_dict(), 0) for r in (plain, with_tools, forced)}
    assert len(keys) == 3
    assert cache_prompt("m", plain) == "m"  # keys without tools are unchanged
