"""Every per-sample verdict and error type equals BFCL's own checker (bfcl-eval, --no-deps).

BFCL's real rows of every supported single-turn category, with many generated model outputs
per row (right, wrong value, wrong type, int-for-float, missing required, unexpected and
optional params, string variants, wrong name, wrong count, swapped parallel order, no call),
scored as function-calling (dots as underscores) and as prompt-mode output.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from evalkit_tools.bfcl.data import CATEGORIES, convert_row, read_category
from evalkit_tools.bfcl.metric import BfclAccuracy, verdict
from evalkit_tools.calls import to_openai
from evalkit_tools.pythonic import PythonCallError, parse_python_calls

from .bfcl_cases import load_rows, outputs_for, reference_verdict


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("mode", ["fc", "prompt"])
def test_every_verdict_equals_bfcl(bfcl_reference, category, mode):
    fc = mode == "fc"
    rows = load_rows(bfcl_reference.data_dir, category)
    assert rows, category
    compared = Counter()
    mismatches = []
    for row in rows:
        label = convert_row(row, row["id"], category)["label"]
        for kind, decoded in outputs_for(row, fc=fc):
            expected = reference_verdict(bfcl_reference, category, row["function"], row.get("ground_truth"), decoded, fc=fc)
            got = verdict(decoded, label, mode=mode)
            compared[expected[1] or "valid"] += 1
            if (got["valid"], got["error_type"]) != expected:
                mismatches.append((row["id"], kind, decoded, expected, got))
    assert not mismatches, f"{len(mismatches)} verdicts differ from BFCL's, first: {mismatches[:3]}"
    assert sum(compared.values()) >= 4 * len(rows)
    if "relevance" not in category:
        # the generated outputs exercise right answers and several kinds of wrong ones
        assert compared["valid"] > 0 and len(compared) >= 4, compared
    else:
        assert compared["valid"] > 0 and len(compared) == 2, compared


@pytest.mark.parametrize("category", ["simple_python", "parallel_multiple", "live_multiple"])
def test_native_openai_calls_score_as_bfcl_scores_fc_models(bfcl_reference, category):
    """OpenAI tool_calls (arguments as JSON text) give BFCL's verdict on the JSON-decoded calls."""
    for row in load_rows(bfcl_reference.data_dir, category):
        label = convert_row(row, row["id"], category)["label"]
        for kind, decoded in outputs_for(row, fc=True):
            if decoded is None:
                continue
            native = to_openai([{"name": n, "arguments": a} for call in decoded for n, a in call.items()])
            decoded_by_bfcl = [{c["function"]["name"]: json.loads(c["function"]["arguments"])} for c in native]
            expected = reference_verdict(bfcl_reference, category, row["function"], row.get("ground_truth"), decoded_by_bfcl, fc=True)
            got = verdict(native, label, mode="fc")
            assert (got["valid"], got["error_type"]) == expected, (row["id"], kind)


def _python_source(decoded: list) -> str:
    def value(v):
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k!r}: {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    return "[" + ", ".join(f"{name}(" + ", ".join(f"{k}={value(v)}" for k, v in args.items()) + ")" for call in decoded for name, args in call.items()) + "]"


@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", "live_simple"])
def test_pythonic_parser_decodes_as_bfcl_prompt_mode(bfcl_reference, category):
    """Prompt-mode text decoded by the pythonic parser equals BFCL's decoder, and so do verdicts."""
    for row in load_rows(bfcl_reference.data_dir, category):
        label = convert_row(row, row["id"], category)["label"]
        for kind, decoded in outputs_for(row, fc=False):
            if not decoded:
                continue
            for text in (_python_source(decoded), "```\n" + _python_source(decoded)[1:-1] + "\n```"):
                try:
                    theirs = bfcl_reference.decode_prompting(text)
                except Exception:  # e.g. a keyword in a dotted name: BFCL cannot decode it either
                    with pytest.raises(PythonCallError):
                        parse_python_calls(text)
                    continue
                ours = parse_python_calls(text)
                assert ours == theirs, (row["id"], kind, text)
                expected = reference_verdict(bfcl_reference, category, row["function"], row.get("ground_truth"), theirs, fc=False)
                got = verdict(ours, label, mode="prompt")
                assert (got["valid"], got["error_type"]) == expected, (row["id"], kind)


def test_metric_counts_match_bfcl_verdicts(bfcl_reference):
    """Accuracy and error-type counts of the metric add up BFCL's verdicts."""
    rows = load_rows(bfcl_reference.data_dir, "parallel")
    preds, labels, expected = [], [], Counter()
    for row in rows:
        label = convert_row(row, row["id"], "parallel")["label"]
        for _, decoded in outputs_for(row, fc=True):
            preds.append(decoded)
            labels.append(label)
            valid, error = reference_verdict(bfcl_reference, "parallel", row["function"], row["ground_truth"], decoded, fc=True)
            expected[error or "valid"] += 1
    metric = BfclAccuracy(mode="fc")
    for start in range(0, len(preds), 500):
        metric.update(preds[start : start + 500], labels[start : start + 500])
    result = metric.compute()
    assert result["total"] == len(preds)
    assert result["correct"] == expected.pop("valid")
    assert result["error_types"] == dict(expected)
    assert result["accuracy"] == pytest.approx(result["correct"] / result["total"])
    assert result["per_category"] == {"parallel": {"accuracy": result["accuracy"], "correct": result["correct"], "total": result["total"]}}


def test_reader_finds_the_installed_package_data(bfcl_reference):
    """Without data.bfcl_dir the rows come from the installed bfcl-eval (located, not imported)."""
    import sys

    rows = list(read_category("live_simple"))
    assert "bfcl_eval.eval_checker.eval_runner" not in sys.modules
    assert len(rows) == len(load_rows(bfcl_reference.data_dir, "live_simple"))
    assert all(r.get("ground_truth") for _, r in rows)
    where, first = rows[0]
    assert where.endswith("BFCL_v4_live_simple.json:1")
    converted = convert_row(first, where, "live_simple")
    assert converted["label"]["category"] == "live_simple"
    assert converted["function"][0]["description"].endswith("Note that the provided function is in Python 3 syntax.")
