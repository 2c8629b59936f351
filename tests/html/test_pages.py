"""report.html and compare.html opened in a real headless Chromium: no console errors and no
network, charts drawn, the explorers filter, large runs stay bounded; screenshots saved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit import hookimpl
from evalkit.html import write_run_html
from evalkit.plugins import build_plugin_set
from evalkit.registry import Registry
from tests.conftest import read_jsonl, run_cli
from tests.html.synthetic import toolcall_records, write_run

MB = 1024 * 1024


def _drawn_charts(opened) -> dict[str, int]:
    """Chart kind -> number of charts with at least one drawn mark."""
    return opened.page.evaluate(
        """() => { const out = {}; document.querySelectorAll('svg.chart').forEach(s => {
             if (s.querySelectorAll('rect, circle, polyline').length) out[s.dataset.kind] = (out[s.dataset.kind] || 0) + 1; });
             return out; }""")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The shipped tool-call demo, run by the real CLI."""
    root = tmp_path_factory.mktemp("demo")
    run_dir = root / "run"
    proc = run_cli(["+experiment=toolcall", f"hydra.run.dir={run_dir}"], cwd=root)
    assert proc.returncode in (0, 3, 4), proc.stderr  # the demo has one failed sample on purpose
    assert (run_dir / "metrics.json").exists(), proc.stderr
    return run_dir


def test_demo_report_opens_and_filters(demo_run, open_page, artifacts):
    proc = run_cli([str(demo_run)], prog="evalkit-report")
    assert proc.returncode == 0, proc.stderr
    report = demo_run / "report.html"
    assert f"written: {report}" in proc.stdout
    records = read_jsonl(demo_run / "predictions.jsonl")
    info = json.loads((demo_run / "run_info.json").read_text())
    opened = open_page(report)
    page = opened.page
    header = page.locator("header").inner_text()
    assert info["dataset"]["sha256"][:16] in header and "toolcall/prompt.yaml" in header and "replay" in header
    metrics = json.loads((demo_run / "metrics.json").read_text())
    assert ("Incomplete run" in header) == bool(metrics.get("num_failed"))
    assert f"parse errors {metrics['num_parse_errors']}" in header
    charts = _drawn_charts(opened)
    assert charts.get("bar", 0) >= 2 and charts.get("heatmap") == 1, charts  # per-tool P/R/F1, param F1, confusion
    assert opened.count_text("sample-count") == f"{len(records)} of {len(records)} shown"
    parse_errors = [r["id"] for r in records if r.get("error_type") == "parse"]
    page.select_option("#f-error", "parse")
    assert opened.count_text("sample-count") == f"{len(parse_errors)} of {len(records)} shown"
    assert opened.row_ids("sample-list") == parse_errors
    page.select_option("#f-error", "")
    page.fill("#f-search", records[7]["id"])
    page.wait_for_function(f"document.getElementById('sample-count').textContent.startsWith('1 of')")
    assert opened.row_ids("sample-list") == [records[7]["id"]]
    assert records[7]["id"] in page.locator("#sample-detail").inner_text()
    page.fill("#f-search", "")
    page.wait_for_function(f"document.getElementById('sample-count').textContent.startsWith('{len(records)} of')")
    opened.screenshot(artifacts, "report.png")
    assert opened.errors == []


def test_report_xlsx_rebuilt_with_native_chart(demo_run):
    from openpyxl import load_workbook

    (demo_run / "report.xlsx").unlink(missing_ok=True)
    proc = run_cli([str(demo_run), "--no-html"], prog="evalkit-report")
    assert proc.returncode == 0, proc.stderr
    workbook = load_workbook(demo_run / "report.xlsx")
    assert len(workbook["tools"]._charts) == 1


def test_10k_samples_all_embedded_under_5_mb(tmp_path, open_page):
    run_dir = write_run(tmp_path / "run10k", toolcall_records(10_000))
    report = write_run_html(run_dir)
    assert report.stat().st_size < 5 * MB
    opened = open_page(report)
    assert opened.count_text("sample-count") == "10000 of 10000 shown"
    assert opened.page.locator("[data-banner=truncated]").count() == 0
    assert opened.errors == []


def test_100k_samples_bounded_page_virtual_list(tmp_path, open_page):
    records = toolcall_records(100_000, seed=3)
    report = write_run_html(write_run(tmp_path / "run100k", records))
    assert report.stat().st_size < 5.5 * MB
    opened = open_page(report)
    page = opened.page
    banner = page.locator("[data-banner=truncated]").inner_text()
    embedded = int(banner.split(" embeds ")[1].split(" of ")[0])
    assert 0 < embedded < 100_000 and "100000" in banner
    # every failed/wrong/parse-error sample is embedded before right ones
    bad = sum(1 for r in records if r.get("error_type") or (r.get("scores") or {}).get("tool_exact_match") is False)
    assert embedded >= min(bad, embedded) and page.evaluate("JSON.parse(document.getElementById('evalkit-data').textContent).samples.filter(s => s.ok === false || s.et).length") == min(bad, embedded)
    assert page.locator("#sample-list .row").count() < 120  # virtualised: only the rows in view exist
    page.evaluate("document.getElementById('sample-list').scrollTop = 1e9")
    page.wait_for_timeout(100)
    assert page.locator("#sample-list .row").count() < 120
    before = opened.count_text("sample-count")
    page.select_option("#f-correct", "correct")
    after = opened.count_text("sample-count")
    assert after != before and int(after.split(" of ")[0]) < int(before.split(" of ")[0])
    assert opened.errors == []


class DomainSections:
    """A report that shows the AcceptHead and reward sections (their reports are other plugins'
    work; the section functions are what this tests)."""

    def applies(self, ctx):
        return True

    def write(self, ctx):
        return []

    def html_sections(self, ctx):
        import evalkit_metrics.html as acceptance
        import evalkit_reward.html as reward

        return acceptance.sections(ctx) + reward.sections(ctx)


class _Plugin:
    @hookimpl
    def evalkit_register_reports(self, register):
        register("html-test-domains", DomainSections)


def _domain_registry() -> Registry:
    return Registry(build_plugin_set(extra_plugins=[_Plugin()]))


def test_accepthead_and_reward_sections_render(tmp_path, open_page, artifacts):
    import random

    rng = random.Random(0)
    accept = []
    for i in range(3000):  # > the scatter's dot limit: drawn as a binned density
        label = [rng.random() for _ in range(6)] + [-100, -100]
        pred = [min(1.0, max(0.0, x + rng.gauss(0, 0.08))) for x in label[:6]] + [0.3, 0.3]
        accept.append({"index": i, "id": i, "prediction": pred, "label": label, "error": None, "error_type": None,
                       "scores": {"accept_acc": {"accuracy": rng.random(), "mae": rng.random() / 10, "n": 6}}})
    run_dir = write_run(tmp_path / "accept", accept)
    (run_dir / ".hydra" / "config.yaml").write_text("metrics:\n  accept_acc:\n    name: tolerance_accuracy\n", encoding="utf-8")
    opened = open_page(write_run_html(run_dir, registry=_domain_registry()))
    assert {"scatter", "line", "histogram"} <= set(_drawn_charts(opened)), _drawn_charts(opened)
    assert opened.page.locator("svg.chart[data-kind=scatter] rect.bin").count() > 10
    assert opened.errors == []

    pairs = []
    for i in range(1500):
        chosen, rejected = rng.gauss(1, 1), rng.gauss(0, 1)
        pairs.append({"index": i, "id": f"p{i}", "subset": rng.choice(["chat", "safety", "reasoning"]), "prediction": None, "label": None,
                      "error": None, "error_type": None, "scores": {"pairwise": {"chosen": chosen, "rejected": rejected, "margin": chosen - rejected, "correct": chosen > rejected}}})
    opened = open_page(write_run_html(write_run(tmp_path / "reward", pairs), registry=_domain_registry()))
    page = opened.page
    charts = _drawn_charts(opened)
    assert charts.get("histogram") == 2 and charts.get("line") == 1 and charts.get("bar") == 1, charts
    page.select_option("#f-subset", "safety")
    safety = sum(1 for p in pairs if p["subset"] == "safety")
    assert opened.count_text("sample-count") == f"{safety} of {len(pairs)} shown"
    page.select_option("#f-correct", "incorrect")
    wrong = sum(1 for p in pairs if p["subset"] == "safety" and not p["scores"]["pairwise"]["correct"])
    assert opened.count_text("sample-count") == f"{wrong} of {len(pairs)} shown"
    opened.screenshot(artifacts, "report-reward.png")
    assert opened.errors == []


def test_compare_page_significance_banner_and_flips(tmp_path, open_page, artifacts):
    a = write_run(tmp_path / "a", toolcall_records(600, seed=1, skill=0.6), model="qwen-a")
    b = write_run(tmp_path / "b", toolcall_records(600, seed=2, skill=0.75), model="qwen-b", temperature=0.7)
    out = tmp_path / "cmp"
    proc = run_cli([str(a), str(b), "--out", str(out)], prog="evalkit-compare")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["comparability"]["comparable"] is False
    assert [r["what"] for r in summary["comparability"]["reasons"]] == ["generation"]
    pair = summary["significance"][0]
    em = next(f for f in pair["figures"] if f["figure"] == "tool_exact_match")
    assert em["ci_low"] < em["delta"] < em["ci_high"] and em["mcnemar_p"] == pair["mcnemar"]["tool_exact_match"]["p_value"]
    opened = open_page(out / "compare.html")
    page = opened.page
    assert "generation settings" in page.locator("[data-banner=not-comparable]").inner_text()
    assert _drawn_charts(opened).get("interval") == 1 and _drawn_charts(opened).get("bar") == 1
    assert f"{em['delta']:+.4f}" in page.locator("main").inner_text()
    m = pair["mcnemar"]["tool_exact_match"]
    total = m["right_to_wrong"] + m["wrong_to_right"]
    assert opened.count_text("flip-count") == f"{total} of {total} flips shown"
    page.select_option("#f-direction", "r2w")
    assert opened.count_text("flip-count") == f"{m['right_to_wrong']} of {total} flips shown"
    assert "qwen-b" in page.locator("#flip-detail").inner_text()
    opened.screenshot(artifacts, "compare.png")
    assert opened.errors == []
    from openpyxl import load_workbook

    workbook = load_workbook(out / "summary.xlsx")
    assert "significance" in workbook.sheetnames and len(workbook["runs"]._charts) == 1


def test_identical_runs_compare_to_zero(tmp_path, open_page):
    a = write_run(tmp_path / "a", toolcall_records(300, seed=5))
    b = tmp_path / "b"
    shutil.copytree(a, b)
    out = tmp_path / "cmp"
    proc = run_cli([str(a), str(b), "--out", str(out)], prog="evalkit-compare")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["comparability"] == {"comparable": True, "reasons": []}
    figures = summary["significance"][0]["figures"]
    assert figures and all(f["delta"] == 0 and f["ci_low"] == 0 and f["ci_high"] == 0 for f in figures)
    assert summary["significance"][0]["mcnemar"]["tool_exact_match"]["p_value"] == 1.0
    opened = open_page(out / "compare.html")
    assert opened.page.locator("[data-banner=not-comparable]").count() == 0
    assert opened.count_text("flip-count") == "0 of 0 flips shown"
    assert opened.errors == []


def test_sweep_writes_compare_html(tmp_path, open_page):
    """The end of ``evalkit -m`` on the shipped demo: compare.html beside summary.json, with the
    banner (the jobs differ in generation settings) and zero deltas (replay: same outputs)."""
    sweep = tmp_path / "sweep"
    proc = run_cli(["-m", "+experiment=toolcall", "generation.max_new_tokens=256,512", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert (sweep / "compare.html").exists(), proc.stderr
    summary = json.loads((sweep / "summary.json").read_text())
    assert [r["what"] for r in summary["comparability"]["reasons"]] == ["generation"]
    figures = summary["significance"][0]["figures"]
    assert figures and all(f["delta"] == 0 for f in figures)
    opened = open_page(sweep / "compare.html")
    assert "max_new_tokens=512" in opened.page.locator("[data-banner=not-comparable]").inner_text()
    assert opened.errors == []
