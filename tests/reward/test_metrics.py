"""Reward metrics against independent references on randomized data; functional twins; shard
merging (4 shards merged == one process) and state_dict round trips."""

from __future__ import annotations

import math

import pytest

from evalkit_reward import functional as F
from evalkit_reward.metrics import BestOfN, PairwiseAccuracy, PairwiseCalibration, RankingAccuracy, RewardBenchScore, ScoreRegression

from . import reference as ref
from .randomdata import best_of_n_rows, pair_rows, ranked_rows, rb2_rows, scored_rows


def close(a, b, path=""):
    if isinstance(b, dict):
        assert set(a) == set(b), f"{path}: {sorted(a)} != {sorted(b)}"
        for k in b:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(b, float) and math.isnan(b):
        assert math.isnan(a), path
    elif isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def chunks(metric, preds, labels, size=37):
    for s in range(0, len(preds), size):
        metric.update(preds[s : s + size], labels[s : s + size])
    return metric.compute()


@pytest.mark.parametrize("ties", ["apart", "half"])
def test_pairwise_matches_reference(ties):
    preds, labels = pair_rows(700, seed=3)
    expected = ref.pairwise(preds, labels, ties)
    assert expected["ties"] > 20  # the data really has ties
    close(chunks(PairwiseAccuracy(ties=ties), preds, labels), expected)
    close(F.pairwise_accuracy(preds, labels, ties=ties), expected)


def test_pairwise_expands_best_of_n_and_ranked_rows():
    for preds, labels in (best_of_n_rows(200, 5), ranked_rows(200, 6)):
        close(chunks(PairwiseAccuracy(), preds, labels), ref.pairwise(preds, labels))


def test_strict_greater_and_ties_half():
    preds = [{"chosen": 1.0, "rejected": 1.0}, {"chosen": 2.0, "rejected": 1.0}, {"chosen": 0.0, "rejected": 1.0}, {"chosen": 0.5, "rejected": 0.5}]
    labels = [{"kind": "pair", "subset": None}] * 4
    assert F.pairwise_accuracy(preds, labels)["accuracy"] == 0.25
    assert F.pairwise_accuracy(preds, labels)["ties"] == 2
    assert F.pairwise_accuracy(preds, labels, ties="half")["accuracy"] == 0.5
    scores = PairwiseAccuracy(ties="half").sample_scores(preds, labels)
    assert scores[0] == {"chosen": 1.0, "rejected": 1.0, "margin": 0.0, "correct": 0.5}
    assert scores[1]["correct"] is True and scores[2]["correct"] is False


def test_calibration_matches_reference():
    preds, labels = pair_rows(500, seed=8)
    got = chunks(PairwiseCalibration(), preds, labels)
    assert got["ece"] == pytest.approx(ref.ece(preds, labels), abs=1e-12)
    assert sum(b["count"] for b in got["bins"]) == got["total"] == 500


def test_ranking_matches_reference():
    preds, labels = ranked_rows(300, seed=9)
    close(chunks(RankingAccuracy(), preds, labels), ref.ranking(preds, labels))


def test_score_regression_matches_reference():
    preds, labels = scored_rows(300, seed=10)
    close(chunks(ScoreRegression(), preds, labels), ref.score_regression(preds, labels))


def test_best_of_n_matches_reference():
    preds, labels = best_of_n_rows(300, seed=11)
    close(chunks(BestOfN(), preds, labels), ref.best_of_n(preds, labels))
    tie = F.best_of_n_row({"scores": [2.0, 2.0, 1.0, 2.0]}, {"kind": "best_of_n", "num_correct": 1})
    assert tie == pytest.approx(1 / 3)


def test_rewardbench2_ties_subset_is_scored_as_a_whole():
    """RewardBench 2's Ties formula on a hand-worked example (a zero spread included)."""
    def tie(group, prompt, k, scores):
        return {"scores": scores}, {"kind": "best_of_n", "num_correct": k, "subset": "Ties", "ties": {"group": group, "prompt": prompt}}

    rows = [tie("ref", 0, 1, [2.0, 1.0, 0.5]), tie("tied", 0, 2, [3.0, 2.5, 1.0]),  # accurate both; gaps 1.0 / 1.5, spread 0.5
            tie("ref", 1, 1, [0.0, 1.0]), tie("tied", 1, 2, [1.0, 1.0, 0.0]),  # ref wrong (gap -1); tied right, spread 0
            tie("tied", 2, 2, [1.0, 0.2, 0.5])]  # tied only, wrong
    rows += [({"scores": [1.0, 0.0, 0.0, 0.0]}, {"kind": "best_of_n", "num_correct": 1, "subset": "Focus"}),
             ({"scores": [0.0, 1.0, 0.0, 0.0]}, {"kind": "best_of_n", "num_correct": 1, "subset": "Math"})]
    preds, labels = [p for p, _ in rows], [t for _, t in rows]
    margin = (math.tanh(1.0 / 0.5 - 1) + -1.0) / 2
    expected = 0.3 * (2 / 3) + 0.3 * 0.5 + 0.2 * 1.0 + 0.2 * 0.5 + 0.01 * margin
    got = chunks(BestOfN(), preds, labels, size=3)
    ties = got["by_subset"]["Ties"]
    assert ties["accuracy"] == pytest.approx(expected) and ties["total"] == 5 and ties["prompts"] == 2
    assert (ties["ref_accuracy"], ties["tied_accuracy"], ties["correctness_preferred"], ties["correctness_preferred_hard"]) == pytest.approx((0.5, 2 / 3, 1.0, 0.5))
    assert got["accuracy"] == 0.5 and got["total"] == 7  # row accuracy over the best-of-4 rows only
    assert got["score"] == pytest.approx((1.0 + 0.0 + expected) / 3)
    close(F.best_of_n(preds, labels), got)
    assert BestOfN().sample_scores(preds, labels)[:5] == [None] * 5


def test_rewardbench_sections_weight_by_example_counts():
    preds, labels = pair_rows(600, seed=12)
    got = chunks(RewardBenchScore(), preds, labels)
    by = ref.pairwise(preds, labels)["by_subset"]
    # Reasoning = math-prm (weight 984) and hep-python (164); Chat = alpacaeval-easy alone
    reasoning = (by["math-prm"]["accuracy"] * 984 + by["hep-python"]["accuracy"] * 164) / (984 + 164)
    assert got["sections"]["Reasoning"] == pytest.approx(reasoning)
    assert got["sections"]["Chat"] == pytest.approx(by["alpacaeval-easy"]["accuracy"])
    custom = RewardBenchScore(sections={"Mine": ["自定义", "donotanswer"]}, weights={"donotanswer": 1})
    got = chunks(custom, preds, labels)
    expected = (by["自定义"]["accuracy"] * by["自定义"]["total"] + by["donotanswer"]["accuracy"]) / (by["自定义"]["total"] + 1)
    assert got["sections"] == {"Mine": pytest.approx(expected)}


FACTORIES = {
    "pairwise": (PairwiseAccuracy, pair_rows),
    "calibration": (PairwiseCalibration, pair_rows),
    "rewardbench": (RewardBenchScore, pair_rows),
    "best_of_n": (BestOfN, best_of_n_rows),
    "best_of_n_rb2_ties": (BestOfN, rb2_rows),
    "ranking": (RankingAccuracy, ranked_rows),
    "scored": (ScoreRegression, scored_rows),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_four_merged_shards_equal_one_process(name):
    cls, data = FACTORIES[name]
    preds, labels = data(400, 13)
    single = chunks(cls(), preds, labels)
    shards = []
    for k in range(4):
        m = cls()
        m.update(preds[k::4], labels[k::4])
        restored = cls()
        m.persistent(True)
        restored.load_state_dict(m.state_dict())  # as evalkit-merge reads metric_states.pt
        shards.append(restored)
    merged = shards[3]
    for other in shards[:3]:
        merged.merge_state(other)
    close(merged.compute(), single)


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match="ties"):
        PairwiseAccuracy(ties="third")
    with pytest.raises(ValueError, match="score_regression"):
        F.pairwise_accuracy([{"score": 1.0}], [{"kind": "scored", "score": 2.0}])
    with pytest.raises(ValueError, match="chosen"):
        F.pairwise_accuracy([{"x": 1}], [None])
