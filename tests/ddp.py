"""The 2-process gloo harness the metric DDP tests share: each rank updates a fresh metric with
the chunks it owns (uneven shares; a rank outside a case's ``ranks`` owns none), and writes its
results to ``rank<N>.json``. A cases module exposes ``CASES`` (names) and ``run_case(name, rank)``."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from tests.conftest import rendezvous


def owned_chunks(metric: Any, preds: Sequence[Any], target: Sequence[Any], ranks: Sequence[int], rank: int | None, chunk: int) -> Any:
    """Update ``metric`` with the chunks ``rank`` owns (all of them when ``rank`` is None) and
    compute: rank ``ranks[i % len(ranks)]`` owns chunk ``i``."""
    starts = list(range(0, len(preds), chunk))
    if rank is not None:
        owners = [ranks[i % len(ranks)] for i in range(len(starts))]
        starts = [s for s, owner in zip(starts, owners) if owner == rank]
    for s in starts:
        metric.update(preds[s : s + chunk], target[s : s + chunk])
    return metric.compute()


def worker(rank: int, world_size: int, init_method: str, out_dir: str, cases_module: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size)
    cases = importlib.import_module(cases_module)
    try:
        results = {case: cases.run_case(case, rank) for case in cases.CASES}
    finally:
        torch.distributed.destroy_process_group()
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results, ensure_ascii=False))


def spawn(cases_module: str, out_dir: Path, world_size: int = 2) -> list[dict[str, Any]]:
    """Run every case of ``cases_module`` on ``world_size`` gloo processes; each rank's results."""
    import torch.multiprocessing as mp

    mp.spawn(worker, args=(world_size, rendezvous(out_dir), str(out_dir), cases_module), nprocs=world_size, join=True)
    return [json.loads(Path(out_dir, f"rank{r}.json").read_text()) for r in range(world_size)]
