"""``evalkit-merge``: combine shard runs into the files an unsharded run would have written.

Each shard (``data.num_shards=N data.shard_index=K``) saves its metrics' *states*; merging
rebuilds each metric from its config node, merges the shard states with torchmetrics'
``merge_state`` (the same reduction DDP uses), and recomputes. ``predictions.jsonl`` is
the union in dataset order and ``report.xlsx`` is rebuilt from it. A missing, duplicated or
foreign shard (other dataset, other shard count, other metric config) is an error naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from evalkit.errors import DataError, EvalKitError
from evalkit.runs import FinishedRun, load_run
from evalkit.states import RUN_INFO_FILE, load_metric_states
from evalkit.store import PREDICTIONS_FILE
from evalkit.summary import metric_results, record_counts, run_status, scored_records


def check_shards(runs: Sequence[FinishedRun]) -> int:
    """Validate that ``runs`` are exactly the shards 0..N-1 of one dataset; return N."""
    if not runs:
        raise DataError("no shard directories given", fix="pass the shard run directories")
    first = runs[0]
    num = int(first.info.get("shard", {}).get("num_shards", 1))
    seen: dict[int, Path] = {}
    for run in runs:
        shard = run.info.get("shard")
        if not shard:
            raise DataError(f"no shard information ({RUN_INFO_FILE} missing)", where=str(run.run_dir))
        if int(shard["num_shards"]) != num:
            raise DataError(
                f"shard count {shard['num_shards']} differs from {num} in {first.run_dir}",
                where=str(run.run_dir),
                fix="merge only the runs of one sharded evaluation (same data.num_shards)",
            )
        if run.dataset.get("sha256") != first.dataset.get("sha256") or run.dataset.get("limit") != first.dataset.get("limit"):
            raise DataError(f"shard evaluated a different dataset than {first.run_dir}", where=str(run.run_dir))
        if (run.config.get("metrics") or {}) != (first.config.get("metrics") or {}):
            raise DataError(f"shard used different metric settings than {first.run_dir}", where=str(run.run_dir))
        index = int(shard["shard_index"])
        if index in seen:
            raise DataError(f"shard {index} of {num} given twice: {seen[index]} and {run.run_dir}", where=str(run.run_dir), fix="pass each shard directory once")
        seen[index] = run.run_dir
    missing = sorted(set(range(num)) - set(seen))
    if missing:
        raise DataError(
            f"missing shard(s) {', '.join(map(str, missing))} of {num}",
            fix=f"run the missing shard(s) with data.num_shards={num} data.shard_index=K and pass their run dirs",
        )
    return num


def merge_runs(run_dirs: Sequence[str | Path], out_dir: str | Path) -> dict[str, Any]:
    from types import SimpleNamespace

    from evalkit.data import read_records
    from evalkit.factory import build_plugin
    from evalkit.registry import default_registry
    from evalkit.reporting import write_reports

    runs = [load_run(d) for d in run_dirs]
    num = check_shards(runs)
    runs.sort(key=lambda r: int(r.info["shard"]["shard_index"]))
    records: list[dict[str, Any]] = []
    seen: dict[int, Path] = {}
    for run in runs:
        for record in run.records:
            if record["index"] in seen:
                raise DataError(f"sample index {record['index']} appears in two shards ({seen[record['index']]})", where=str(run.run_dir))
            seen[record["index"]] = run.run_dir
            records.append(record)
    records.sort(key=lambda r: r["index"])
    registry = default_registry()
    merged: dict[str, Any] = {}
    for run in runs:
        states = load_metric_states(run.run_dir)
        for key, payload in states.items():
            metric = build_plugin(registry, "metric", payload["node"], path=f"metrics.{key}")
            if hasattr(metric, "persistent"):
                metric.persistent(True)
            metric.load_state_dict(payload["state"])
            if key not in merged:
                merged[key] = metric
            else:
                merged[key].merge_state(metric)
    scored = scored_records(records, failed=(runs[0].config.get("run") or {}).get("failed", "exclude"))
    summary = metric_results(merged, any_scored=bool(scored))
    summary.update(record_counts(records, num_scored=len(scored)))
    summary.update(run_status(summary, max_failed=float((runs[0].config.get("run") or {}).get("max_failed", 0.0))))
    summary["merged_from"] = [str(r.run_dir) for r in runs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / PREDICTIONS_FILE).open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    (out / "metrics.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    info = dict(runs[0].info)
    info["shard"] = {"num_shards": 1, "shard_index": 0, "num_samples": len(records), "merged_from": num}
    (out / RUN_INFO_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    data_path = runs[0].dataset.get("path")
    rows = {i: r for i, (_, r) in enumerate(read_records(data_path))} if data_path and Path(data_path).exists() else {}
    write_reports(runs[0].config, SimpleNamespace(run_dir=out, metrics=summary, records=records, rows=rows), registry, console=False)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evalkit-merge", description="Merge shard runs (data.num_shards / data.shard_index) into one result.")
    parser.add_argument("run_dirs", nargs="+", help="the shard run directories")
    parser.add_argument("--out", default="merged", help="output directory (default: ./merged)")
    args = parser.parse_args(argv)
    try:
        summary = merge_runs(args.run_dirs, args.out)
    except EvalKitError as exc:
        sys.stderr.write(f"evalkit-merge: error: {exc}\n")
        return exc.exit_code
    from evalkit.report import print_summary

    print_summary(summary, Path(args.out))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
