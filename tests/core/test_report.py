"""Report helpers shared by report.xlsx and the comparison workbook."""

from evalkit.report import excel_cell
from evalkit_tools.report import same_calls


def test_excel_cell_drops_control_characters_and_serialises_structures():
    assert excel_cell("a\x00b\x1bc\n") == "abc\n"
    assert excel_cell([{"toolName": "价格"}]) == '[{"toolName": "价格"}]'
    assert len(excel_cell("x" * 40000)) == 32001


def test_same_calls_matches_the_exact_match_metric_semantics():
    assert same_calls([{"toolName": "a", "paramList": {"n": 1}}, {"toolName": "b"}], [{"toolName": "b", "paramList": {}}, {"toolName": "a", "paramList": {"n": 1.0}}])
    assert not same_calls([{"toolName": "a"}, {"toolName": "a"}], [{"toolName": "a"}])
    assert not same_calls([{"toolName": "a", "paramList": {"n": 2}}], [{"toolName": "a", "paramList": {"n": 1}}])
