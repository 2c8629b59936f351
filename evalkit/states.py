"""What a run leaves behind so it can be merged (shards) or compared (runs) later.

* ``run_info.json`` — the dataset's fingerprint (path, SHA-256, size, total rows), the shard
  this run evaluated, the Hydra overrides and the evalkit version.
* ``metric_states.pt`` — every metric's *state* (not just its result), with the config node
  that built it. ``evalkit-merge`` rebuilds the metrics from the nodes, loads each shard's
  state and merges them with torchmetrics' ``merge_state``, which is exactly what a
  distributed sync does — so merged shards equal an unsharded run figure for figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from evalkit import __version__
from evalkit.config import to_container

RUN_INFO_FILE = "run_info.json"
METRIC_STATES_FILE = "metric_states.pt"


def _overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        from omegaconf import OmegaConf

        # resolve=False: an override like ${oc.env:KEY} must not be written out resolved.
        return [str(o) for o in OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)]
    except Exception:
        return []


def write_run_info(run_dir: Path, cfg: Any, samples: Any, data_path: str, *, fingerprint: str | None = None) -> dict[str, Any]:
    from evalkit.data import dataset_fingerprint
    from evalkit.secrets import redact_text

    data = to_container(cfg.get("data")) or {}
    info = {
        "evalkit_version": __version__,
        "dataset": {**(getattr(samples, "fingerprint", None) or dataset_fingerprint(data_path)), "total_rows": getattr(samples, "total_rows", len(samples)), "limit": data.get("limit")},
        "shard": {"num_shards": int(data.get("num_shards") or 1), "shard_index": int(data.get("shard_index") or 0), "num_samples": len(samples)},
        "overrides": [redact_text(o) for o in _overrides()],
        "fingerprint": fingerprint,
    }
    path = Path(run_dir) / RUN_INFO_FILE
    path.write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    return info


def read_run_info(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_INFO_FILE
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def save_metric_states(run_dir: Path, metrics: Mapping[str, Any], nodes: Mapping[str, Any]) -> Path | None:
    if not metrics:
        return None
    import torch

    payload: dict[str, Any] = {}
    for key, metric in metrics.items():
        if hasattr(metric, "persistent"):
            metric.persistent(True)
        state = metric.state_dict() if hasattr(metric, "state_dict") else {}
        payload[key] = {"node": to_container(nodes.get(key)), "state": state}
    path = Path(run_dir) / METRIC_STATES_FILE
    tmp = path.with_suffix(".pt.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_metric_states(run_dir: Path) -> dict[str, Any]:
    import torch

    path = Path(run_dir) / METRIC_STATES_FILE
    # weights_only: states are tensors, lists and plain config values — never unpickle code
    return torch.load(path, map_location="cpu", weights_only=True)
