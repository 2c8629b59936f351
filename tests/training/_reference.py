"""Independent references written from the metric definitions (numpy, one sample at a time).

They share no code with evalkit: seed 000's tolerance accuracy / MAE / MSE / RMSE (per-sample
means over scored positions, then the mean over samples), LLaMA-Factory's shifted token
accuracy, and micro precision/recall/F1 of tool names with multiplicity (seed 002).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

IGNORE = -100


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def tolerance_reference(preds: list[np.ndarray], labels: list[np.ndarray], tolerance: float = 0.1, threshold: float = 0.01) -> dict[str, float]:
    acc, mae, mse, rmse = [], [], [], []
    for pred, label in zip(preds, labels):
        pred = np.asarray(pred, dtype=np.float64).reshape(-1)
        label = np.asarray(label, dtype=np.float64).reshape(-1)
        keep = label != IGNORE
        if not keep.any():
            continue
        p, t = pred[keep], label[keep]
        err = np.abs(p - t)
        ok = [(e <= tolerance) if l < threshold else (e / l <= tolerance) for e, l in zip(err, t)]
        acc.append(np.mean(ok))
        mae.append(err.mean())
        m = np.mean(err**2)
        mse.append(m)
        rmse.append(np.sqrt(m))
    return {"accuracy": float(np.mean(acc)), "mae": float(np.mean(mae)), "mse": float(np.mean(mse)), "rmse": float(np.mean(rmse))}


def token_accuracy_reference(pred_ids: list[np.ndarray], labels: list[np.ndarray]) -> float:
    """Prediction at t against label at t+1, on labelled positions; per-sample mean, then mean."""
    scores = []
    for pred, label in zip(pred_ids, labels):
        pred, label = np.asarray(pred)[:-1], np.asarray(label)[1:]
        keep = label != IGNORE
        if keep.any():
            scores.append(np.mean(pred[keep] == label[keep]))
    return float(np.mean(scores))


def tool_f1_micro(preds: list[list[dict[str, Any]]], labels: list[list[dict[str, Any]]]) -> dict[str, float]:
    tp = fp = fn = 0
    for pred, label in zip(preds, labels):
        p = Counter(c["toolName"] for c in pred or [])
        g = Counter(c["toolName"] for c in label or [])
        for name in set(p) | set(g):
            hits = min(p[name], g[name])
            tp += hits
            fp += p[name] - hits
            fn += g[name] - hits
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
