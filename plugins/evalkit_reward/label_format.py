"""``data.label_format=preference``: preference rows of any supported shape -> canonical rows.

The core reads the file and calls :meth:`PreferenceFormat.convert` on each row, then takes the
canonical row's ``label`` (``data.label_key``, default ``label``) and checks it with
:meth:`PreferenceFormat.check`. With ``data.format=auto`` the format is detected from the
first row and every later row must be in the same format (a file mixing shapes is an error
naming the line), so a typo in one row never silently switches readers.
"""

from __future__ import annotations

from typing import Any, Literal

from evalkit.errors import ConfigError, DataError

from evalkit_reward import formats

FormatName = Literal["auto", "seed003", "trl", "llamafactory", "rewardbench", "rewardbench2", "ranked", "scored"]


class PreferenceFormat:
    """Preference data (pairs, best-of-N, ranked, scored) in the seeds', TRL's, LLaMA-Factory's
    and RewardBench's formats.

    Args:
        format: ``auto`` (detect from the first row) or one of the formats in
            :mod:`evalkit_reward.formats`.
        subset_key: row field naming the subset (``by_subset`` figures); RewardBench's is ``subset``.
    """

    def __init__(self, format: FormatName = "auto", subset_key: str = "subset") -> None:
        if format not in formats.FORMATS:
            raise ConfigError(f"unknown preference format {format!r}; available: {', '.join(formats.FORMATS)}", where="data.format")
        self.format = format
        self.subset_key = subset_key
        self.detected: str | None = None if format == "auto" else format
        self._first_where = ""

    def check(self, label: Any) -> str | None:
        return formats.check_label(label)

    def convert(self, row: dict[str, Any], where: str) -> dict[str, Any]:
        if not isinstance(row, dict):
            raise DataError(f"each row must be a JSON object, got {type(row).__name__}", where=where)
        if self.subset_key != "subset" and self.subset_key in row:
            row = {**row, "subset": row[self.subset_key]}
        if self.detected is None:
            try:
                self.detected = formats.detect(row)
            except ValueError as exc:
                raise DataError(str(exc), where=where, fix="set data.format to the file's format") from None
            self._first_where = where
        elif self.format == "auto":
            try:
                found = formats.detect(row)
            except ValueError:
                found = None
            if found != self.detected and not (found == "trl" and self.detected == "rewardbench"):
                raise DataError(
                    f"row looks like format {found or 'unknown'!r}, but the file's first row ({self._first_where}) is {self.detected!r}",
                    where=where,
                    fix="keep one format per file, or set data.format explicitly",
                )
        canonical = formats.READERS[self.detected](row, where)
        if "id" in row:
            canonical["id"] = row["id"]
        return canonical
