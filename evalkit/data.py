"""Loading evaluation rows from JSON arrays or JSONL files, with errors that name the place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable

from evalkit.errors import DataError
from evalkit.types import LabelFormat, Sample

LabelCheck = Callable[[Any], "str | None"]


class Records(list):
    """``(where, record)`` pairs of one file, plus the file's identity (read with the rows,
    so fingerprinting a dataset costs no second read)."""

    fingerprint: dict[str, Any] = {}


class SampleList(list):
    """The samples of one run (possibly one shard); ``total_rows`` counts the whole file and
    ``fingerprint`` identifies it (path, SHA-256, size)."""

    total_rows: int = 0
    fingerprint: dict[str, Any] = {}


def _fingerprint(path: Path, raw: bytes) -> dict[str, Any]:
    import hashlib

    return {"path": str(path.resolve()), "sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}


def _rows_fingerprint(path: Any, records: list[tuple[str, Any]]) -> dict[str, Any]:
    """Identity of rows that did not come from one file (a label format's own reader)."""
    import hashlib

    blob = json.dumps([row for _, row in records], sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return {"path": str(path) if path else "(label format reader)", "sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)}


def dataset_fingerprint(path: str | Path) -> dict[str, Any]:
    """Identity of a data file, so merged shards and compared runs provably saw the same data."""
    path = Path(path).expanduser()
    return _fingerprint(path, path.read_bytes())


def resolve_label_format(label_format: Any, options: dict[str, Any] | None = None) -> Any:
    """``"any"``/``None`` -> no checks; a registered name -> the plugin's :class:`LabelFormat`
    (built with ``options``, the ``data.*`` keys the core does not own); an object passes."""
    if label_format in (None, "any"):
        if options:
            key = sorted(options)[0]
            raise DataError(f"unknown option '{key}' for data (no label format takes it)", where=f"data.{key}", fix="remove it, or set data.label_format to the format that takes it")
        return None
    if not isinstance(label_format, str):
        return label_format
    from evalkit.factory import build_plugin
    from evalkit.registry import default_registry

    fmt = build_plugin(default_registry(), "label_format", {"name": label_format, **(options or {})}, path="data")
    if not isinstance(fmt, LabelFormat):
        raise DataError(f"label format '{label_format}' built a {type(fmt).__name__}, which has no check(label)", where="data.label_format", fix="the plugin must return an object following evalkit.types.LabelFormat")
    return fmt


def _parse_jsonl(path: Path, text: str) -> Iterable[tuple[str, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{lineno}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"malformed JSON ({exc.msg} at column {exc.colno})",
                where=f"{path}:{lineno}",
                fix="fix or remove that line; each JSONL line must be one JSON object",
            ) from None


def read_records(path: str | Path, *, key: str = "data.path") -> Records:
    """Read a JSON array or JSONL file into ``(where, record)`` pairs; ``key`` is the config
    key that named the file, for error messages."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError("file not found", where=f"{key}={path}", fix=f"check {key} (relative paths are resolved from the directory you ran evalkit in)")
    if path.is_dir():
        raise DataError("is a directory, expected a .json or .jsonl file", where=f"{key}={path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not valid UTF-8 (byte {exc.start})", where=str(path), fix="re-save the file as UTF-8") from None
    stripped = text.lstrip()
    if not stripped:
        raise DataError("data file is empty", where=str(path), fix="point data.path at a file with at least one row")
    if stripped.startswith("{") and "\n" in stripped.rstrip() and not stripped.splitlines()[0].rstrip().endswith("}"):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            raise DataError(
                f"expected a JSON array or JSONL (one object per line), got one JSON object with keys {sorted(whole)[:5]}",
                where=str(path),
                fix="point at the list of rows (e.g. extract the array under its key into a .json file)",
            )
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"malformed JSON ({exc.msg})", where=f"{path}:{exc.lineno}", fix="fix the JSON array") from None
        records = Records((f"{path}[{i}]", row) for i, row in enumerate(rows))
    else:
        records = Records(_parse_jsonl(path, text))
    records.fingerprint = _fingerprint(path, raw)
    return records


def load_samples(
    path: str | Path,
    *,
    id_key: str = "id",
    label_key: str | None = "label",
    label_format: Any = "any",
    format_options: dict[str, Any] | None = None,
    require_label: bool = True,
    limit: int | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
) -> SampleList:
    """Load rows as :class:`Sample`s.

    ``index`` is the row's position in the whole file (shards keep it), ``id`` comes from
    ``id_key`` or falls back to ``index``. With ``num_shards > 1`` only rows with
    ``index % num_shards == shard_index`` are kept: deterministic, balanced, and a union of
    all shards is the whole dataset.
    """
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise DataError(
            f"shard_index must be in [0, {num_shards}) and num_shards >= 1, got {shard_index}/{num_shards}",
            where="data.shard_index",
        )
    fmt = resolve_label_format(label_format, format_options)
    check = getattr(fmt, "check", None)
    convert = getattr(fmt, "convert", None)
    reader = getattr(fmt, "read", None)
    if callable(reader):
        records = Records(reader(Path(path).expanduser() if path else None))
        records.fingerprint = getattr(records, "fingerprint", None) or _rows_fingerprint(path, records)
    else:
        if not path:
            raise DataError("no dataset given", where="data.path", fix="add data.path=/path/to/file.jsonl")
        records = read_records(path)
    fingerprint = records.fingerprint
    total_rows = len(records)
    if limit is not None:
        records = records[:limit]
    samples = SampleList()
    samples.total_rows = total_rows
    samples.fingerprint = fingerprint
    seen_ids: dict[Any, str] = {}
    for index, (where, row) in enumerate(records):
        if not isinstance(row, dict):
            raise DataError(f"each row must be a JSON object, got {type(row).__name__}", where=where)
        if callable(convert):
            row = convert(row, where)
        sample_id = row.get(id_key, index) if id_key else index
        if isinstance(sample_id, (dict, list)):
            raise DataError(f"'{id_key}' must be a string or number", where=where)
        if sample_id in seen_ids:
            raise DataError(
                f"duplicate id {sample_id!r} (first seen at {seen_ids[sample_id]})",
                where=where,
                fix=f"make '{id_key}' unique or set data.id_key=null to use row positions",
            )
        seen_ids[sample_id] = where
        label = None
        if label_key:
            if label_key not in row:
                if require_label:
                    raise DataError(f"missing label field '{label_key}'", where=where, fix="add it, or set data.label_key to the field holding the label")
            else:
                label = row[label_key]
                if callable(check):
                    problem = check(label)
                    if problem:
                        raise DataError(problem, where=where)
        if index % num_shards != shard_index:
            continue
        samples.append(Sample(index=index, id=sample_id, row=row, label=label, where=where))
    if not samples and not records:
        raise DataError("dataset has no rows", where=str(path))
    return samples
