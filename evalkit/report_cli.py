"""``evalkit-report RUN_DIR``: rebuild ``report.html`` — and every applicable report plugin's
files (``report.xlsx`` for tool-call runs) — from a finished run directory alone, without
re-running anything (after an evalkit upgrade, or for a run copied from another machine)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evalkit.errors import EvalKitError


def rebuild(run_dir: str | Path, *, html: bool = True, workbooks: bool = True) -> list[Path]:
    from evalkit.html.context import context_from_run, reports
    from evalkit.html.run_page import write_run_html

    ctx = context_from_run(run_dir)
    written: list[Path] = []
    if workbooks:
        for _name, report in reports(ctx):
            written.extend(Path(p) for p in (report.write(ctx) or []))
    if html:
        written.append(write_run_html(run_dir, ctx=ctx))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evalkit-report", description="Rebuild report.html (and the report plugins' files, e.g. report.xlsx) from a finished run directory.")
    parser.add_argument("run_dir", help="a run directory (holds metrics.json and predictions.jsonl)")
    parser.add_argument("--no-html", action="store_true", help="skip report.html")
    parser.add_argument("--no-workbook", action="store_true", help="skip the report plugins' files (report.xlsx, ...)")
    args = parser.parse_args(argv)
    try:
        written = rebuild(args.run_dir, html=not args.no_html, workbooks=not args.no_workbook)
    except EvalKitError as exc:
        sys.stderr.write(f"evalkit-report: error: {exc}\n")
        return exc.exit_code
    for path in written:
        print(f"written: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
