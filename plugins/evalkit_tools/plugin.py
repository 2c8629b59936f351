"""Hook implementations of the tool-call domain plugin (factories imported lazily)."""

from __future__ import annotations

from evalkit import hookimpl

LABEL_FORMATS: dict[str, str] = {
    "tool_calls": "evalkit_tools.labels:ToolCallLabels",
    "bfcl": "evalkit_tools.bfcl.format:BfclLabels",
}
REPORTS: dict[str, str] = {
    "toolcall": "evalkit_tools.report:ToolCallReport",
    "bfcl": "evalkit_tools.bfcl.report:BfclReport",
}
PARSERS: dict[str, str] = {
    "tool_calls": "evalkit_tools.parsers:ToolCallsParser",
    "hermes": "evalkit_tools.parsers:HermesParser",
    "pythonic": "evalkit_tools.parsers:PythonicParser",
}
METRICS: dict[str, str] = {
    "bfcl": "evalkit_tools.bfcl.metric:BfclAccuracy",
    "tool_call_errors": "evalkit_tools.call_errors:ToolCallErrors",
}


@hookimpl
def evalkit_register_label_formats(register):
    for name, target in LABEL_FORMATS.items():
        register(name, target)


@hookimpl
def evalkit_register_reports(register):
    for name, target in REPORTS.items():
        register(name, target)


@hookimpl
def evalkit_register_parsers(register):
    for name, target in PARSERS.items():
        register(name, target)


@hookimpl
def evalkit_register_metrics(register):
    for name, target in METRICS.items():
        register(name, target)
