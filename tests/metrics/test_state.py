"""merge_state and state_dict round trips: per-shard states merge into the whole-run result."""

from __future__ import annotations

import io
import json
import warnings

import pytest
import torch

from .ddp_cases import CASES, CHUNK


def _shards(case: str, n: int = 3):
    factory, data, _ = CASES[case]
    preds, target = data()
    bounds = [len(preds) * i // n for i in range(n + 1)]
    return factory, [(preds[a:b], target[a:b]) for a, b in zip(bounds, bounds[1:])]


def _fill(metric, shard):
    preds, target = shard
    for s in range(0, len(preds), CHUNK):
        metric.update(preds[s : s + CHUNK], target[s : s + CHUNK])
    return metric


def _saved(metric) -> dict:
    """What a later task does per shard: torch.save the state_dict, torch.load it back."""
    buf = io.BytesIO()
    torch.save(metric.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _plain(x):
    return json.loads(json.dumps(x))


def _same(a, b):
    """Counts exactly, float sums up to summation order."""
    if isinstance(b, dict):
        assert list(a) == list(b)
        for k in b:
            _same(a[k], b[k])
    elif isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12)
    else:
        assert a == b


@pytest.mark.parametrize("case", sorted(CASES))
def test_merge_state_of_saved_shards_equals_one_pass(case):
    factory, shards = _shards(case)
    whole = factory()
    for shard in shards:
        _fill(whole, shard)
    expected = _plain(whole.compute())

    merged = _fill(factory(), shards[0])
    first = _plain(merged.compute())  # a cached result must not survive the merge
    merged.merge_state(_saved(_fill(factory(), shards[1])))  # a state dict
    merged.merge_state(_fill(factory(), shards[2]))  # a metric instance
    assert _plain(merged.compute()) != first
    _same(_plain(merged.compute()), expected)

    restored = factory()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loaded state counts as an update: no "compute before update"
        restored.load_state_dict(_saved(merged))
        assert _plain(restored.compute()) == _plain(merged.compute())
        fresh = factory()
        fresh.merge_state(_saved(merged))
        assert _plain(fresh.compute()) == _plain(merged.compute())
    # a restored metric keeps counting
    extra = _shards(case)[1][0]
    restored.update(*extra)
    merged.update(*extra)
    assert _plain(restored.compute()) == _plain(merged.compute())


def test_state_dict_holds_the_keyed_counts():
    factory, shards = _shards("tool_f1_name")
    state = _fill(factory(), shards[0]).state_dict()
    assert {"tool_names", "tool_lengths", "tool_counts"} <= set(state)
    assert all(t.dtype in (torch.uint8, torch.int64) for v in state.values() for t in (v if isinstance(v, list) else [v]))


def test_reset_clears_everything():
    for case in ("tool_f1_param_composite", "tool_exact_match", "tolerance_sample", "token_accuracy_token"):
        factory, shards = _shards(case)
        metric = _fill(factory(), shards[0])
        metric.reset()
        _fill(metric, shards[1])
        assert _plain(metric.compute()) == _plain(_fill(factory(), shards[1]).compute())
