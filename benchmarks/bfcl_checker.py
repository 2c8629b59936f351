"""BFCL AST checking throughput: evalkit's checker vs BFCL's own, same verdicts, side by side.

    python benchmarks/bfcl_checker.py [--mode fc|prompt] [--repeat 3]

Installs ``bfcl-eval`` with ``--no-deps`` into a temp dir cached by version (as the tests do),
takes every row of every supported single-turn category (simple_python, multiple, parallel,
parallel_multiple, irrelevance, live_*) with the many generated model outputs per row of
``tests/tools/bfcl_cases.py`` (right answers and each kind of wrong one), and scores them all:

(a) evalkit: ``evalkit_tools.bfcl.metric.BfclAccuracy.update`` (what a run does: decode the
    predictions, check, count error types);
(b) BFCL: its runner's decode/relevance steps around ``bfcl_eval``'s ``ast_checker``.

Every verdict and error type must be equal (the script exits 1 otherwise). The ratio printed is
evalkit time / BFCL time (below 1.0: evalkit is faster); best of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evalkit_tools.bfcl.data import CATEGORIES, convert_row  # noqa: E402
from evalkit_tools.bfcl.metric import BfclAccuracy, bfcl_sample_scores  # noqa: E402
from tests.tools.bfcl_cases import load_rows, outputs_for, reference, reference_verdict  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("fc", "prompt"), default="fc")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    fc = args.mode == "fc"
    ref = reference()
    cases = []  # (category, raw row, label, decoded output)
    for category in CATEGORIES:
        for row in load_rows(ref.data_dir, category):
            label = convert_row(row, row["id"], category)["label"]
            cases.extend((category, row, label, decoded) for _, decoded in outputs_for(row, fc=fc))
    preds = [c[3] for c in cases]
    labels = [c[2] for c in cases]

    def run_evalkit() -> None:
        metric = BfclAccuracy(mode=args.mode)
        for start in range(0, len(preds), 2048):
            metric.update(preds[start : start + 2048], labels[start : start + 2048])
        metric.compute()

    def run_bfcl() -> list:
        return [reference_verdict(ref, category, row["function"], row.get("ground_truth"), decoded, fc=fc) for category, row, _, decoded in cases]

    def best(fn) -> float:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    theirs = run_bfcl()
    ours = [(s["valid"], s["error_type"]) for s in bfcl_sample_scores(preds, labels, args.mode)]
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    t_ours, t_theirs = best(run_evalkit), best(run_bfcl)
    kinds = Counter(error or "valid" for _, error in theirs)
    print(f"BFCL single-turn rows: {len({c[1]['id'] for c in cases})} in {len(CATEGORIES)} categories; model outputs scored: {len(cases)} ({args.mode} mode)")
    print(f"verdicts: {len(cases) - len(differ)} equal, {len(differ)} different; {len(kinds)} kinds ({kinds['valid']} valid)")
    print(f"{'':24}{'seconds':>10}{'outputs/s':>14}")
    print(f"{'evalkit (bfcl metric)':24}{t_ours:>10.3f}{len(cases) / t_ours:>14,.0f}")
    print(f"{'bfcl-eval ast_checker':24}{t_theirs:>10.3f}{len(cases) / t_theirs:>14,.0f}")
    print(f"ratio evalkit/bfcl: {t_ours / t_theirs:.2f}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
