"""The tool-call domain: call dialects, label format, function-calling parsers, BFCL data and
scoring, and the tool-call report (``report.xlsx``)."""
