"""Building plugins from their config nodes, with the run settings a factory may receive.

A factory receives its node's options (validated against its signature) and, where it has a
parameter of the same name *and type*, the run settings of :class:`RunSettings` — so an API
backend's ``model: str`` (the served model name) is never confused with the ``model`` node.
Signatures and type hints are inspected once per factory.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Callable, Mapping

from evalkit.config import check_type, split_plugin_node, to_container, validate_options
from evalkit.errors import ConfigError, EvalKitError
from evalkit.registry import Registry
from evalkit.types import GenerationConfig


@dataclass
class RunSettings:
    """What the run offers every factory besides its own options (all optional).

    * ``model`` — the ``model`` config node as a dict (checkpoint path, dtype, …);
    * ``generation`` — :class:`evalkit.types.GenerationConfig`;
    * ``cache`` — the run's :class:`evalkit.cache.ResponseCache`;
    * ``progress`` — the run's :class:`evalkit.progress.RunProgress`;
    * ``run_dir`` — the run directory (``pathlib.Path``).
    """

    model: Any = None
    generation: Any = None
    cache: Any = None
    progress: Any = None
    run_dir: Any = None

    def offered(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


RUN_SETTINGS: tuple[str, ...] = tuple(f.name for f in fields(RunSettings))


@lru_cache(maxsize=256)
def _parameters(factory: Callable[..., Any]) -> tuple[Mapping[str, inspect.Parameter], Mapping[str, Any]]:
    target = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    try:
        params = dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        params = {}
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    return params, hints


def injectable(factory: Callable[..., Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The run settings ``factory`` takes: a parameter of that name whose type the value fits."""
    params, hints = _parameters(factory)
    return {
        key: value
        for key, value in settings.items()
        if key in params and check_type(value, hints.get(key, params[key].annotation))
    }


def build_plugin(registry: Registry, kind: str, node: Any, *, path: str, inject: Mapping[str, Any] | RunSettings | None = None) -> Any:
    """Instantiate the plugin a config node selects, validating its options first."""
    name, options = split_plugin_node(node, path=path)
    entry = registry.get(kind, name, where=f"{path}.name")
    offered = inject.offered() if isinstance(inject, RunSettings) else dict(inject or {})
    # An option the node sets itself wins over a run setting of the same name
    # (``backend.model`` is the served model name for API backends, not the model node).
    offered = {k: v for k, v in offered.items() if k not in options}
    options = validate_options(entry.factory, options, path=path, plugin=f"{kind} '{name}'", injected=tuple(offered))
    options.update(injectable(entry.factory, offered))
    try:
        return entry.factory(**options)
    except EvalKitError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{kind} '{name}' rejected its options: {exc}", where=path) from None


def check_plugin_options(registry: Registry, kind: str, node: Any, *, path: str) -> Any:
    """Validate a node's name and options without building it; returns the factory."""
    name, options = split_plugin_node(node, path=path)
    entry = registry.get(kind, name, where=f"{path}.name")
    injected = tuple(k for k in RUN_SETTINGS if k not in options)
    validate_options(entry.factory, options, path=path, plugin=f"{kind} '{name}'", injected=injected)
    return entry.factory


def generation_from_config(node: Any) -> GenerationConfig:
    """``generation`` node -> :class:`GenerationConfig`, every sampling setting range-checked."""
    data = dict(to_container(node) or {})
    stop = data.pop("stop", None)
    options = validate_options(GenerationConfig, data, path="generation", plugin="generation settings")
    stop = () if stop is None else (stop,) if isinstance(stop, str) else stop
    if not isinstance(stop, (list, tuple)):
        raise ConfigError(f"must be a string or a list of strings, got {stop!r}", where="generation.stop", fix="e.g. generation.stop='[\"</s>\"]'")
    for i, item in enumerate(stop):
        if not isinstance(item, str) or not item:
            raise ConfigError(f"stop entries must be non-empty strings, got {item!r}", where=f"generation.stop[{i}]", fix="quote it: generation.stop='[\"</s>\"]'")
    options["stop"] = tuple(stop)
    gen = GenerationConfig(**options)
    checks = (
        ("temperature", gen.temperature >= 0, "must be >= 0 (0 = greedy)"),
        ("top_p", 0 < gen.top_p <= 1, "must be in (0, 1]"),
        ("top_k", gen.top_k >= -1, "must be >= -1 (-1 = off)"),
        ("n", gen.n >= 1, "must be >= 1"),
        ("max_new_tokens", gen.max_new_tokens >= 1, "must be >= 1"),
    )
    for key, ok, rule in checks:
        if not ok:
            raise ConfigError(f"{rule}, got {getattr(gen, key)!r}", where=f"generation.{key}", fix=f"set generation.{key} to a value that is {rule.removeprefix('must be ')}")
    return gen
