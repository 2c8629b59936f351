"""The ``bfcl`` label format: BFCL v4 rows read from a data dir or the installed bfcl-eval."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from evalkit.errors import ConfigError
from evalkit_tools.bfcl.data import CATEGORIES, convert_row, read_category


class BfclLabels:
    """``data.label_format: bfcl`` with ``data.category`` (one of :data:`CATEGORIES`) and
    ``data.bfcl_dir`` (default: the installed bfcl-eval's data). ``data.path``, when set, is a
    BFCL question file (its answers in ``possible_answer/`` beside it) or a data dir."""

    def __init__(self, category: str = "simple_python", bfcl_dir: str | None = None) -> None:
        if category not in CATEGORIES:
            raise ConfigError(
                f"unknown BFCL category '{category}'; available: {', '.join(CATEGORIES)}",
                where="data.category",
                fix="Java/JavaScript and multi-turn categories are not supported",
            )
        self.category = category
        self.bfcl_dir = bfcl_dir

    def read(self, path: Path | None) -> Iterator[tuple[str, dict[str, Any]]]:
        return read_category(self.category, self.bfcl_dir, path)

    def convert(self, row: dict[str, Any], where: str) -> dict[str, Any]:
        return convert_row(row, where, self.category)

    def check(self, label: Any) -> str | None:
        if not isinstance(label, dict) or not isinstance(label.get("functions"), list) or not isinstance(label.get("category"), str):
            return "a BFCL label is an object with 'category', 'functions' and 'ground_truth'"
        truth = label.get("ground_truth")
        if truth is not None and not (isinstance(truth, list) and all(isinstance(c, dict) and len(c) == 1 for c in truth)):
            return "BFCL ground_truth must be a list of {function name: {param: [possible values]}}"
        return None
