"""BFCL v4 single-turn data: questions, function docs and possible answers as evalkit rows.

``data=bfcl data.category=simple_python`` reads ``BFCL_v4_<category>.json`` and
``possible_answer/BFCL_v4_<category>.json`` from ``data.bfcl_dir``, or by default from an
installed ``bfcl-eval`` package (``pip install --no-deps bfcl-eval`` ships the data; the package
is located, never imported). Each row becomes::

    {"id": ..., "messages": <the single turn>, "function": <function docs, BFCL's language
     hint appended to descriptions>, "label": {"category", "ground_truth", "functions"}}

``label.functions`` keeps only what the checker reads (names, parameter types, required), so
``predictions.jsonl`` stays small; ``ground_truth`` is ``None`` for (ir)relevance categories,
which have no possible-answer file. Java and JavaScript categories are not offered: their
answers need BFCL's Java/JS value converters.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Iterator

from evalkit.errors import ConfigError, DataError

VERSION_PREFIX = "BFCL_v4"
NON_LIVE = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
LIVE = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance")
CATEGORIES: tuple[str, ...] = NON_LIVE + LIVE
PYTHON_HINT = " Note that the provided function is in Python 3 syntax."
_ID_CATEGORY = re.compile(r"^(?P<category>[a-z_]+?)_\d+(?:-\d+)*$")


def category_of(sample_id: Any, default: str) -> str:
    """The category a BFCL id names (``live_simple_3-2-1`` -> ``live_simple``)."""
    match = _ID_CATEGORY.match(str(sample_id))
    return match.group("category") if match and match.group("category") in CATEGORIES else default


def installed_data_dir() -> Path | None:
    """``bfcl_eval/data`` of an installed bfcl-eval, found without importing it (its import
    pulls every provider SDK)."""
    try:
        spec = importlib.util.find_spec("bfcl_eval")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        data = Path(location) / "data"
        if data.is_dir():
            return data
    return None


def data_dir(bfcl_dir: str | None) -> Path:
    if bfcl_dir:
        from evalkit.paths import resolve_path

        path = Path(resolve_path(bfcl_dir))
        if not path.is_dir():
            raise ConfigError("BFCL data directory not found", where=f"data.bfcl_dir={path}", fix="point it at bfcl_eval/data (holding BFCL_v4_*.json and possible_answer/)")
        return path
    found = installed_data_dir()
    if found is None:
        raise ConfigError(
            "no BFCL data: bfcl-eval is not installed and data.bfcl_dir is not set",
            where="data.bfcl_dir",
            fix="pip install --no-deps bfcl-eval (ships the data), or set data.bfcl_dir to a copy of bfcl_eval/data",
        )
    return found


def _jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"malformed JSON ({exc.msg})", where=f"{path}:{lineno}") from None
            if not isinstance(row, dict):
                raise DataError("each line must be a JSON object", where=f"{path}:{lineno}")
            yield f"{path}:{lineno}", row


def slim_function(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a function doc the AST checker reads (name, parameter types, required)."""
    params = doc.get("parameters") or {}
    properties = {}
    for name, schema in (params.get("properties") or {}).items():
        entry: dict[str, Any] = {"type": schema.get("type", "string")}
        if isinstance(schema.get("items"), Mapping):
            entry["items"] = {"type": schema["items"].get("type", "string")}
        properties[name] = entry
    return {"name": doc["name"], "parameters": {"properties": properties, "required": list(params.get("required") or [])}}


def convert_row(row: Mapping[str, Any], where: str, category: str) -> dict[str, Any]:
    """A raw BFCL row (``question``, ``function``, optional ``ground_truth``) -> evalkit row.
    Rows already converted pass through."""
    if "messages" in row and isinstance(row.get("label"), Mapping) and "functions" in row["label"]:
        return dict(row)
    question, functions = row.get("question"), row.get("function")
    if not isinstance(question, list) or not question or not isinstance(question[0], list):
        raise DataError("BFCL row needs 'question': a list of turns (lists of messages)", where=where)
    if len(question) != 1:
        raise DataError(f"multi-turn BFCL rows are not supported ({len(question)} turns)", where=where, fix="use a single-turn category")
    if not isinstance(functions, list) or not all(isinstance(f, Mapping) and isinstance(f.get("name"), str) for f in functions):
        raise DataError("BFCL row needs 'function': a list of function docs with names", where=where)
    row_category = category_of(row.get("id"), category)
    docs = [{**f, "description": str(f.get("description", "")) + PYTHON_HINT} for f in functions]
    label = {"category": row_category, "ground_truth": row.get("ground_truth"), "functions": [slim_function(f) for f in functions]}
    if label["ground_truth"] is None and "relevance" not in row_category:
        raise DataError(f"no possible answer for this {row_category} row", where=where, fix="check that possible_answer/ holds the category's file")
    return {"id": row.get("id"), "messages": [dict(m) for m in question[0]], "function": docs, "label": label}


def read_category(category: str, bfcl_dir: str | Path | None = None, path: Path | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """Raw rows of one category joined with their possible answers by id, as ``(where, row)``."""
    if path is not None and path.is_file():
        questions = path
        answers = path.parent / "possible_answer" / path.name
    else:
        base = path if path is not None and path.is_dir() else data_dir(str(bfcl_dir) if bfcl_dir else None)
        questions = base / f"{VERSION_PREFIX}_{category}.json"
        answers = base / "possible_answer" / questions.name
    if not questions.is_file():
        raise DataError(f"BFCL category file not found for '{category}'", where=str(questions), fix=f"categories: {', '.join(CATEGORIES)}")
    truth: dict[Any, Any] = {}
    if answers.is_file():
        truth = {row.get("id"): row.get("ground_truth") for _, row in _jsonl(answers)}
    for where, row in _jsonl(questions):
        if row.get("id") in truth:
            row["ground_truth"] = truth[row["id"]]
        yield where, row
