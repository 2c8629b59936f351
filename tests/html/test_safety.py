"""Model output is data, never markup: hostile text cannot break out of the embedded JSON or
inject elements; a broken chart spec renders as a notice instead of breaking the page."""

from __future__ import annotations

from evalkit.html import write_run_html
from evalkit.html.svg import render
from tests.html.synthetic import toolcall_records, write_run

HOSTILE = '</script><script>window.__owned = 1</script><img src=x onerror="window.__owned = 2">\u2028'


def test_hostile_output_stays_text(tmp_path, open_page):
    records = toolcall_records(20)
    records[0]["output"] = HOSTILE
    records[0]["id"] = "<b>id</b>"
    opened = open_page(write_run_html(write_run(tmp_path / "run", records)))
    page = opened.page
    assert page.evaluate("window.__owned") is None
    assert page.locator("#sample-detail img").count() == 0
    assert HOSTILE.strip("\u2028") in page.locator("#sample-detail").inner_text()
    assert opened.count_text("sample-count") == "20 of 20 shown"
    assert opened.errors == []


def test_broken_and_unknown_chart_specs_render_notices():
    assert "unknown chart type" in render({"type": "pie"})
    assert "could not be drawn" in render({"type": "bar", "title": "t"})
    svg = render({"type": "bar", "categories": ["a", "b"], "series": [{"name": "f1", "values": [0.5, float("nan")]}]})
    assert svg.startswith("<svg") and svg.count('class="bar"') == 1
