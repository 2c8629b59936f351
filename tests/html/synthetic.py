"""Synthetic run directories for the HTML tests: every file a finished run leaves, with
per-sample ``scores`` of the shapes the domain metrics write, at any size."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

TOOLS = ("priceCheck", "truckCheck", "loadTimeCheck", "orderManagementCheck", "settlementMethod")
SYSTEM = "You are the dispatch assistant of a freight platform. Decide which tools to call. " * 3


def _calls(rng: random.Random) -> list[dict[str, Any]]:
    return [{"toolName": rng.choice(TOOLS), "paramList": {"value": str(rng.randint(1, 9))}} for _ in range(rng.randint(0, 2))]


def toolcall_records(n: int, seed: int = 0, skill: float = 0.7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        label = _calls(random.Random(i))
        correct = rng.random() < skill
        prediction = label if correct else _calls(rng)
        error_type = "parse" if rng.random() < 0.03 else ("request" if rng.random() < 0.01 else None)
        output = None if error_type == "request" else json.dumps({"label": prediction}, ensure_ascii=False)
        tp = sum(1 for c in prediction if c in label)
        record = {
            "index": i, "id": f"s-{i:06d}", "subset": ("single", "multi", "empty")[min(len(label), 2) if label else 2],
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"query {i}: 运费多少钱？ truck {rng.randint(1, 20)} m"}],
            "output": output, "prediction": [] if error_type else prediction, "label": label,
            "error": {"parse": "parse: no JSON object", "request": "HTTP 500 after 3 attempts"}.get(error_type or ""), "error_type": error_type,
        }
        if error_type != "request":
            same = sorted(map(json.dumps, record["prediction"])) == sorted(map(json.dumps, label))
            record["scores"] = {"tool_exact_match": same, "tool_f1": {"tp": tp, "fp": len(record["prediction"]) - tp, "fn": len(label) - tp}}
        records.append(record)
    return records


def write_run(run_dir: Path, records: list[dict[str, Any]], *, metrics: dict[str, Any] | None = None, model: str = "qwen-a",
              overrides: list[str] | None = None, data_sha: str = "ab" * 32, temperature: float = 0.0) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    scored = [r for r in records if r.get("error_type") != "request"]
    em = sum(1 for r in scored if (r.get("scores") or {}).get("tool_exact_match") is True)
    base = {"tool_exact_match": {"all": {"correct": em, "total": len(scored), "accuracy": em / max(len(scored), 1)}},
            "num_samples": len(records), "num_scored": len(scored), "num_failed": len(records) - len(scored),
            "num_parse_errors": sum(1 for r in records if r.get("error_type") == "parse"), "num_cached": 0,
            "complete": len(scored) == len(records), "wall_time_s": 1.25}
    (run_dir / "metrics.json").write_text(json.dumps({**base, **(metrics or {})}), encoding="utf-8")
    info = {"evalkit_version": "0.1.0", "dataset": {"path": "/data/synthetic.jsonl", "sha256": data_sha, "size": 1, "total_rows": len(records), "limit": None},
            "overrides": overrides or [f"backend.model={model}"], "fingerprint": "f" * 64}
    (run_dir / "run_info.json").write_text(json.dumps(info), encoding="utf-8")
    (run_dir / ".hydra").mkdir(exist_ok=True)
    (run_dir / ".hydra" / "config.yaml").write_text(
        f"backend:\n  name: api\n  model: {model}\n  base_url: http://127.0.0.1:8000/v1\nmodel:\n  path: null\nhead:\n  name: lm\nparser:\n  name: json_label\n"
        f"data:\n  path: /data/synthetic.jsonl\n  label_format: tool_calls\nprompt:\n  file: null\ngeneration:\n  max_new_tokens: 512\n  temperature: {temperature}\n"
        "report:\n  console: true\n", encoding="utf-8")
    return run_dir
