"""Hook implementations of the tool-call domain plugin (factories imported lazily)."""

from __future__ import annotations

from evalkit import hookimpl

LABEL_FORMATS: dict[str, str] = {}
REPORTS: dict[str, str] = {}
PARSERS: dict[str, str] = {}
METRICS: dict[str, str] = {}


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
