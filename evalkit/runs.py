"""Reading finished run directories back: config, run info, metrics and predictions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.states import read_run_info
from evalkit.store import PREDICTIONS_FILE, read_predictions


@dataclass
class FinishedRun:
    run_dir: Path
    config: dict[str, Any]
    info: dict[str, Any]
    metrics: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def overrides(self) -> list[str]:
        return list(self.info.get("overrides") or [])

    @property
    def dataset(self) -> dict[str, Any]:
        return dict(self.info.get("dataset") or {})

    @property
    def name(self) -> str:
        return str(self.run_dir)


def load_config(run_dir: Path) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from evalkit.resolvers import register_resolvers

    path = run_dir / ".hydra" / "config.yaml"
    if not path.exists():
        return {}
    register_resolvers()
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def load_run(run_dir: str | Path, *, need_metrics: bool = True, with_records: bool = True) -> FinishedRun:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError("run directory not found", where=str(run_dir), fix="pass the directory that holds metrics.json")
    metrics_path = run_dir / "metrics.json"
    if need_metrics and not metrics_path.exists():
        raise DataError("no metrics.json in run directory (did the run finish?)", where=str(run_dir))
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.exists() else {}
    records = list(read_predictions(run_dir / PREDICTIONS_FILE)) if with_records else []
    return FinishedRun(run_dir=run_dir, config=load_config(run_dir), info=read_run_info(run_dir), metrics=metrics, records=records)
