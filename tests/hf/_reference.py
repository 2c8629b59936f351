"""Independent numpy references for the HF tests (written from the definitions, not from evalkit).

* AcceptHead: hidden states from the plain transformers base model, one sample at a time (no
  batching, no padding), the linear head and the sigmoid in numpy float64.
* Seed 000's ``ComputeAcceptHeadAccuracy`` metric definitions, per sample then averaged.
* LLaMA-Factory's ``ComputeAccuracy``: argmax of the logits, shifted by one, on labelled positions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IGNORE = -100


def accept_head_scores(model_dir: Path, rows: list[list[int]], weight: np.ndarray | None = None, bias: np.ndarray | None = None) -> list[np.ndarray]:
    """Scores with the checkpoint's own ``lm_head`` unless ``weight`` [1, H] / ``bias`` [1] are given."""
    import torch
    from safetensors import safe_open
    from transformers import AutoModel

    if weight is None:
        with safe_open(str(Path(model_dir) / "model.safetensors"), framework="np") as fh:
            weight = fh.get_tensor("lm_head.weight")  # [1, H]
            bias = fh.get_tensor("lm_head.bias")  # [1]
    weight = np.asarray(weight, dtype=np.float64)
    bias = np.zeros(1) if bias is None else np.asarray(bias, dtype=np.float64)
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    scores = []
    for ids in rows:
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy().astype(np.float64)  # [T, H]
        logits = hidden @ weight.T + bias  # [T, 1]
        scores.append(1.0 / (1.0 + np.exp(-logits[:, 0])))
    return scores


def tolerance_metrics(preds: list[np.ndarray], labels: list[list], tolerance: float = 0.1, average: str = "sample") -> dict[str, float]:
    """Seed 000's tolerance metrics (the one reference, :func:`tests.metrics.reference.ref_tolerance`);
    ``None`` labels are positions that are not scored."""
    from tests.metrics.reference import ref_tolerance

    clean = [np.array([np.nan if v is None else v for v in label], dtype=np.float64) for label in labels]
    return ref_tolerance([np.asarray(p, dtype=np.float64) for p in preds], clean, tolerance=tolerance, ignore=IGNORE, average=average)


def lm_argmax(model_dir: Path, rows: list[list[int]]) -> list[np.ndarray]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    for ids in rows:
        with torch.no_grad():
            out.append(model(input_ids=torch.tensor([ids])).logits[0].argmax(-1).numpy())
    return out


def token_accuracy(preds: list[np.ndarray], labels: list[list[int]]) -> float:
    """Prediction at t vs label at t+1 on labelled positions; per-sample mean, then mean."""
    per_sample = []
    for pred, label in zip(preds, labels):
        label = np.asarray(label)
        p, t = np.asarray(pred)[:-1], label[1:]
        mask = t != IGNORE
        if mask.any():
            per_sample.append(np.mean(p[mask] == t[mask]))
    return float(np.mean(per_sample))
