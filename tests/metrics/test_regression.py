"""ToleranceAccuracy and TokenAccuracy against seed-style numpy / Python references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evalkit_metrics import TokenAccuracy, ToleranceAccuracy, token_accuracy, tolerance_accuracy

from .randomdata import regression_data
from .reference import ref_token_accuracy, ref_tolerance

KEYS = ("accuracy", "mae", "mse", "rmse")


def assert_close(actual: dict, expected: dict, rel: float) -> None:
    assert set(actual) == set(expected)
    for k in expected:
        assert isinstance(actual[k], float), k
        assert math.isclose(actual[k], expected[k], rel_tol=rel, abs_tol=1e-12), f"{k}: {actual[k]} != {expected[k]}"


@pytest.mark.parametrize("average", ["sample", "token"])
@pytest.mark.parametrize("dtype,rel", [(np.float32, 2e-6), (np.float64, 1e-11)])
def test_tolerance_on_padded_tensors(average, dtype, rel):
    preds, labels = regression_data(300, seed=3, ragged=False, dtype=dtype, length=96)
    expected = ref_tolerance(preds, labels, average=average)
    p, t = torch.from_numpy(np.stack(preds)), torch.from_numpy(np.stack(labels))
    metric = ToleranceAccuracy(average=average)
    for start in range(0, 300, 64):
        metric.update(p[start : start + 64], t[start : start + 64])
    assert_close(metric.compute(), expected, rel)
    assert_close(tolerance_accuracy(p, t, average=average), expected, rel)
    assert_close(tolerance_accuracy(np.stack(preds), np.stack(labels), average=average), expected, rel)


def test_tolerance_decides_borderline_positions_like_the_seed():
    """float32 inputs: the correct/incorrect decision is bit-identical, so accuracy matches exactly."""
    preds, labels = regression_data(400, seed=11, ragged=False, dtype=np.float32, length=128)
    for average in ("sample", "token"):
        got = tolerance_accuracy(torch.from_numpy(np.stack(preds)), torch.from_numpy(np.stack(labels)), average=average)
        assert got["accuracy"] == pytest.approx(ref_tolerance(preds, labels, average=average)["accuracy"], rel=1e-12)
    # a label exactly at the threshold is "large" (relative error), below it absolute error
    # 0.05 vs 0.0099: small label, |d| = 0.04 <= 0.1 -> correct; 0.05 vs 0.01: relative 4.0 -> wrong
    assert tolerance_accuracy([[0.05, 0.05]], [[0.0099, 0.01]])["accuracy"] == 0.5
    assert tolerance_accuracy([[0.0105]], [[0.01]], tolerance=0.04)["accuracy"] == 0.0  # relative 5%


@pytest.mark.parametrize("average", ["sample", "token"])
def test_tolerance_on_ragged_lists_with_none(average):
    preds, labels = regression_data(250, seed=5, ragged=True, dtype=np.float64, length=80)
    expected = ref_tolerance(preds, labels, average=average)
    # the pipeline's form: Python lists, "not scored" as -100 or None
    plist = [p.tolist() for p in preds]
    llist = [[None if (v == -100 and i % 2) else v for i, v in enumerate(lab.tolist())] for lab in labels]
    metric = ToleranceAccuracy(average=average)
    metric.update(plist[:100], llist[:100])
    metric.update(plist[100:], llist[100:])
    assert_close(metric.compute(), expected, 1e-11)


def test_tolerance_options_and_from_logits():
    preds, labels = regression_data(120, seed=8, ragged=False, dtype=np.float64, length=40)
    logits = [np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6))) for p in preds]
    clipped = [1 / (1 + np.exp(-lg)) for lg in logits]
    for average in ("sample", "token"):
        expected = ref_tolerance(clipped, labels, tolerance=0.05, threshold=0.02, average=average)
        metric = ToleranceAccuracy(tolerance=0.05, small_label_threshold=0.02, average=average, from_logits=True)
        metric.update(torch.tensor(np.stack(logits)), torch.tensor(np.stack(labels)))
        assert_close(metric.compute(), expected, 1e-9)
    # a different ignore value
    lab = [np.where(label == -100, -1.0, label) for label in labels]
    assert_close(
        tolerance_accuracy(np.stack(preds), np.stack(lab), ignore_index=-1),
        ref_tolerance(preds, lab, ignore=-1),
        1e-11,
    )


def test_tolerance_edge_cases():
    nothing = tolerance_accuracy([[0.5, 0.5]], [[-100, None]])
    assert all(math.isnan(v) for v in nothing.values())
    with pytest.raises(ValueError, match="sample 1"):
        tolerance_accuracy([[0.1], [0.2, 0.3]], [[0.1], [0.2]])
    with pytest.raises(ValueError, match="differ in length"):
        tolerance_accuracy([[0.1]], [[0.1], [0.2]])
    with pytest.raises(ValueError, match="do not match"):
        tolerance_accuracy(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="average"):
        ToleranceAccuracy(average="macro")
    # a single 1-D sample is a batch of one
    assert tolerance_accuracy(torch.tensor([0.5, 0.2]), torch.tensor([0.5, -100.0]))["accuracy"] == 1.0


def _token_data(seed: int, n: int = 200, vocab: int = 7, length: int = 30):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, vocab, (n, length))
    labels[:, : length // 3] = -100  # the prompt
    labels[rng.random((n, length)) < 0.1] = -100
    labels[5] = -100  # a sample without response tokens
    logits = rng.normal(size=(n, length, vocab)).astype(np.float32)
    ids = logits.argmax(-1)
    # make about half of the next-token predictions right
    right = rng.random((n, length - 1)) < 0.5
    ids[:, :-1] = np.where(right & (labels[:, 1:] >= 0), labels[:, 1:], ids[:, :-1])
    logits[np.arange(n)[:, None], np.arange(length)[None, :], ids] += 10.0
    return ids, logits, labels


@pytest.mark.parametrize("average", ["sample", "token"])
@pytest.mark.parametrize("shift", [True, False])
def test_token_accuracy_matches_reference(average, shift):
    ids, logits, labels = _token_data(seed=2)
    expected = ref_token_accuracy(ids.tolist(), labels.tolist(), shift=shift, average=average)
    assert 0.05 < expected < 0.9
    for preds in (torch.from_numpy(ids), torch.from_numpy(logits)):
        metric = TokenAccuracy(shift=shift, average=average)
        metric.update(preds[:120], torch.from_numpy(labels[:120]))
        metric.update(preds[120:], torch.from_numpy(labels[120:]))
        got = metric.compute()
        assert set(got) == {"accuracy"} and got["accuracy"] == pytest.approx(expected, rel=1e-12)
    assert token_accuracy(ids, labels, shift=shift, average=average)["accuracy"] == pytest.approx(expected, rel=1e-12)


def test_token_accuracy_ragged_lists():
    ids, _, labels = _token_data(seed=4, n=60)
    lengths = np.random.default_rng(0).integers(2, ids.shape[1] + 1, len(ids))
    preds = [ids[i, :n].tolist() for i, n in enumerate(lengths)]
    labs = [labels[i, :n].tolist() for i, n in enumerate(lengths)]
    for average in ("sample", "token"):
        expected = ref_token_accuracy(preds, labs, average=average)
        assert token_accuracy(preds, labs, average=average)["accuracy"] == pytest.approx(expected, rel=1e-12)


def test_token_accuracy_shift_semantics():
    # logits at position t predict the token at t + 1
    labels = torch.tensor([[-100, -100, 5, 6, 7]])
    assert token_accuracy(torch.tensor([[0, 5, 6, 0, 9]]), labels)["accuracy"] == pytest.approx(2 / 3)
    assert token_accuracy(torch.tensor([[0, 0, 5, 6, 0]]), labels, shift=False)["accuracy"] == pytest.approx(2 / 3)
    assert math.isnan(token_accuracy(torch.tensor([[1, 2]]), torch.tensor([[-100, -100]]))["accuracy"])


@pytest.mark.parametrize("threshold", [0.01, 0.0])
def test_accelerator_kernel_equals_cpu_kernel(threshold):
    """The torch kernel (used for tensors on a GPU) decides and sums like the numpy CPU kernel."""
    from evalkit_metrics.functional_tolerance import _row_sums_numpy, _row_sums_torch

    preds, labels = regression_data(64, seed=13, ragged=False, dtype=np.float32, length=257)
    p, t = np.stack(preds), np.stack(labels)
    t[3, :7] = np.nan  # None labels
    t[4, :5] = 0.0
    p[5, t[5] == -100] = np.inf  # garbage where nothing is scored must not leak
    for ignore in (-100.0, math.nan):
        cpu = _row_sums_numpy(p, t, 0.1, threshold, ignore)
        acc = _row_sums_torch(torch.from_numpy(p), torch.from_numpy(t), 0.1, threshold, ignore).numpy()
        assert np.array_equal(cpu[:2], acc[:2])  # counts: identical decisions
        np.testing.assert_allclose(cpu[2:], acc[2:], rtol=2e-6)
        if ignore == -100.0:
            assert np.isfinite(cpu).all()
    # and both agree with the per-sample reference
    got = tolerance_accuracy(torch.from_numpy(p), torch.from_numpy(t), small_label_threshold=threshold)
    assert_close(got, ref_tolerance(list(p), list(t), threshold=threshold), 2e-6)


def test_tolerance_sample_scores_average_to_the_metric():
    """Per-sample scores are the metric's own: their mean is the sample-averaged result."""
    from evalkit_metrics import ToleranceAccuracy

    from .randomdata import regression_data

    preds, labels = regression_data(40, seed=3, ragged=True)
    metric = ToleranceAccuracy(average="sample")
    metric.update(preds, labels)
    scores = metric.sample_scores(preds, labels)
    assert len(scores) == 40
    kept = [s for s in scores if s is not None]
    assert kept and all(set(s) == {"accuracy", "mae", "mse", "rmse", "n"} for s in kept)
    result = metric.compute()
    for key in ("accuracy", "mae", "mse", "rmse"):
        assert sum(s[key] for s in kept) / len(kept) == pytest.approx(result[key], rel=1e-9)
