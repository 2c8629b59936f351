"""The run config's own sections as structured configs (dataclasses in Hydra's ConfigStore).

Plugin nodes (``backend``, ``model``, ``head``, ``parser``, ``metrics.*``) are validated against
their factories; these are the sections the core owns. A typo or a wrong type is one line
naming the key and the valid options. ``data.*`` keys beyond :class:`DataConfig` go to the
label format, ``report.*`` keys beyond :class:`ReportConfig` to the report plugins.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from evalkit.config import to_container, validate_options
from evalkit.errors import ConfigError

TOP_LEVEL_KEYS = ("backend", "model", "head", "parser", "metrics", "data", "prompt", "tools", "generation", "cache", "run", "report", "verbose")


@dataclass
class RunConfig:
    """``run.*``: how the run behaves."""

    resume: bool = True  # keep finished samples of an existing predictions.jsonl
    progress: bool = True  # progress bar (terminal) or progress lines (logs)
    failed: str = "exclude"  # failed requests: left out of metrics (exclude), or scored as empty
    max_failed: float = 0.0  # share of failed samples (0..1) a run may have and still exit 0
    fork: Any = "auto"  # light backends generate in a forked child while the metrics load (auto, false)


@dataclass
class DataConfig:
    """``data.*``: which rows to evaluate (extra keys are the label format's options)."""

    path: Any = None
    id_key: Any = "id"
    label_key: Any = "label"
    label_format: str = "any"
    limit: Any = None
    num_shards: int = 1
    shard_index: int = 0
    require_label: bool = True
    display_fields: list = field(default_factory=list)


@dataclass
class CacheConfig:
    """``cache.*``: the response cache."""

    enabled: bool = True
    dir: Any = None


@dataclass
class PromptConfig:
    """``prompt.*``: templates (``???`` = take the file's), variables and the file's role map."""

    file: Any = None
    system: Any = "???"
    user: Any = "???"
    vars: Any = None
    from_file: Any = None


@dataclass
class ReportConfig:
    """``report.*``: end-of-run outputs (extra keys are report plugins' options)."""

    console: bool = True
    excel: Any = "auto"
    html: bool = True
    writers: Any = None


SECTIONS: dict[str, type] = {"run": RunConfig, "data": DataConfig, "cache": CacheConfig, "prompt": PromptConfig, "report": ReportConfig}
OPEN_SECTIONS = ("data", "report")  # extra keys are handed on to plugins


def register_schemas() -> None:
    """Put the section schemas in Hydra's ConfigStore (group ``schema``), for users and tools."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, node in SECTIONS.items():
        store.store(group="schema", name=name, node=node)


def split_section(name: str, value: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate the core keys of section ``name``; return ``(core options, extra options)``."""
    schema = SECTIONS[name]
    data = dict(to_container(value) or {})
    known = {f.name for f in fields(schema)}
    extra = {k: v for k, v in data.items() if k not in known}
    core = {k: v for k, v in data.items() if k in known}
    if extra and name not in OPEN_SECTIONS:
        key = sorted(extra)[0]
        raise ConfigError(f"unknown option '{key}' for {name}; valid options: {', '.join(sorted(known))}", where=f"{name}.{key}", fix=f"remove {name}.{key} or fix its spelling")
    validate_options(schema, core, path=name, plugin=f"{name} settings")
    return core, extra


def check_whole_numbers(data: Mapping[str, Any]) -> None:
    for key, low in (("limit", 0), ("num_shards", 1), ("shard_index", 0)):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise ConfigError(f"must be a whole number >= {low}, got {value!r}", where=f"data.{key}")


def check_top_level(cfg: Any) -> None:
    """Unknown top-level keys and bad core sections are errors (a typo must not be ignored)."""
    data = to_container(cfg) or {}
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"unknown config key '{key}'; valid: {', '.join(sorted(TOP_LEVEL_KEYS))}", where=key, fix=f"remove +{key}=... or fix its spelling")
    for name in SECTIONS:
        if data.get(name) is not None:
            split_section(name, data[name])
    check_whole_numbers(data.get("data") or {})
    excel = (data.get("report") or {}).get("excel", "auto")
    if excel not in ("auto", True, False):
        raise ConfigError(f"must be auto, true or false, got {excel!r}", where="report.excel")
    failed = (data.get("run") or {}).get("failed", "exclude")
    if failed not in ("exclude", "empty"):
        raise ConfigError(f"must be exclude or empty, got {failed!r}", where="run.failed", fix="run.failed=exclude leaves failed requests out of the metrics; empty scores them as empty predictions")
    max_failed = (data.get("run") or {}).get("max_failed", 0)
    if not 0 <= max_failed <= 1:
        raise ConfigError(f"must be a share between 0 and 1, got {max_failed!r}", where="run.max_failed", fix="e.g. run.max_failed=0.01 allows 1% failed samples")
