"""evalkit.stats against independent computations: scipy's exact binomial test for McNemar,
and a paired bootstrap written here as a plain loop over resampled records."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy.stats import binomtest

from evalkit.stats import compare_pair, mcnemar_exact


@pytest.mark.parametrize("b,c", [(0, 1), (1, 7), (3, 3), (10, 3), (0, 25), (100, 130), (500, 420), (2, 0), (1000, 1100)])
def test_mcnemar_matches_scipy_binomtest(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=1e-9, abs=1e-15)


def test_mcnemar_no_discordant_pairs_is_one():
    assert mcnemar_exact(0, 0) == 1.0


def _records(seed: int, n: int, skill: float) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tp, fp, fn = rng.randint(0, 3), rng.randint(0, 2), rng.randint(0, 2)
        record = {"id": f"x{i}", "index": i, "error_type": "request" if rng.random() < 0.03 else None,
                  "scores": {"em": rng.random() < skill, "f1": {"tp": tp, "fp": fp, "fn": fn},
                             "ah": {"accuracy": rng.random(), "mse": rng.random(), "n": rng.randint(1, 20)}}}
        out.append(record)
    rng.shuffle(out)  # pairing is by id, not position
    return out


def _reference(base: list[dict], other: list[dict], resamples: int, seed: int) -> dict[str, tuple[float, float, float]]:
    """Paired bootstrap as a textbook loop: resample ids, recompute each metric from the records."""
    by_id = {r["id"]: r for r in other if r["error_type"] != "request"}
    pairs = [(r, by_id[r["id"]]) for r in base if r["error_type"] != "request" and r["id"] in by_id]

    def em(rs):
        return sum(r["scores"]["em"] for r in rs) / len(rs)

    def f1(rs):
        tp = sum(r["scores"]["f1"]["tp"] for r in rs)
        fp = sum(r["scores"]["f1"]["fp"] for r in rs)
        fn = sum(r["scores"]["f1"]["fn"] for r in rs)
        return 2 * tp / (2 * tp + fp + fn)

    def ah_rmse(rs):
        return math.sqrt(sum(r["scores"]["ah"]["mse"] * r["scores"]["ah"]["n"] for r in rs) / sum(r["scores"]["ah"]["n"] for r in rs))

    rng = np.random.default_rng(seed)
    funcs = {"em": em, "f1.micro.f1": f1, "ah.rmse": ah_rmse}
    deltas = {k: [] for k in funcs}
    for _ in range(resamples):
        idx = rng.integers(0, len(pairs), size=len(pairs))
        a = [pairs[i][0] for i in idx]
        b = [pairs[i][1] for i in idx]
        for k, fn_ in funcs.items():
            deltas[k].append(fn_(b) - fn_(a))
    a_all, b_all = [p[0] for p in pairs], [p[1] for p in pairs]
    return {k: (fn_(b_all) - fn_(a_all), *np.percentile(deltas[k], [2.5, 97.5])) for k, fn_ in funcs.items()}


@pytest.mark.parametrize("seed", [0, 7])
def test_paired_bootstrap_matches_reference_loop(seed):
    base, other = _records(1, 400, 0.6), _records(2, 400, 0.7)
    result = compare_pair(base, other, resamples=300, seed=seed)
    figures = {f["figure"]: f for f in result["figures"]}
    for name, (delta, low, high) in _reference(base, other, 300, seed).items():
        assert figures[name]["delta"] == pytest.approx(delta, abs=1e-12)
        assert figures[name]["ci_low"] == pytest.approx(low, abs=1e-12)
        assert figures[name]["ci_high"] == pytest.approx(high, abs=1e-12)
    # the McNemar counts are the discordant pairs of the per-sample verdicts
    by_id = {r["id"]: r for r in other if r["error_type"] != "request"}
    pairs = [(r["scores"]["em"], by_id[r["id"]]["scores"]["em"]) for r in base if r["error_type"] != "request" and r["id"] in by_id]
    b = sum(1 for x, y in pairs if x and not y)
    c = sum(1 for x, y in pairs if not x and y)
    assert result["mcnemar"]["em"] == {"n": len(pairs), "right_to_wrong": b, "wrong_to_right": c, "p_value": pytest.approx(binomtest(b, b + c, 0.5).pvalue)}
    assert figures["em"]["mcnemar_p"] == result["mcnemar"]["em"]["p_value"]


def test_identical_runs_have_zero_delta_and_p_one():
    runs = _records(3, 200, 0.5)
    result = compare_pair(runs, [dict(r) for r in runs], resamples=200)
    assert result["figures"]
    for f in result["figures"]:
        assert f["delta"] == 0 and f["ci_low"] == 0 and f["ci_high"] == 0
    assert result["mcnemar"]["em"]["p_value"] == 1.0
    assert result["mcnemar"]["em"]["right_to_wrong"] == result["mcnemar"]["em"]["wrong_to_right"] == 0


def test_runs_without_scores_give_no_figures():
    plain = [{"id": i, "index": i, "prediction": [], "label": []} for i in range(5)]
    result = compare_pair(plain, plain)
    assert result["num_pairs"] == 5 and result["figures"] == [] and result["mcnemar"] == {}
