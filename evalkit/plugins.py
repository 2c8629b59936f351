"""One plugin manager for built-in and third-party plugins.

Built-in plugins are declared in evalkit's own ``[project.entry-points.evalkit]`` table, so
they load through exactly the path a third-party package uses. ``EVALKIT_LOAD_PLUGINS``
(comma-separated entry-point or distribution names) restricts which *third-party* plugins
load; built-ins always load. A plugin that fails to import is recorded in
:data:`PluginInfo.error` and reported by ``evalkit-plugins`` and in the run log, without
stopping the other plugins.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Any

import pluggy

from evalkit import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "evalkit"
ALLOW_LIST_ENV = "EVALKIT_LOAD_PLUGINS"
BUILTIN_DISTRIBUTION = "evalkit"
SLOW_LOAD_S = 1.0  # a third-party plugin slower to import than this is reported


@dataclass
class PluginInfo:
    """What ``evalkit-plugins`` shows for one plugin."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    load_s: float = 0.0  # seconds its module took to import (heavy imports belong in factories)


@dataclass
class PluginSet:
    """The loaded plugin manager plus what was found (and what failed) while loading."""

    manager: pluggy.PluginManager
    infos: list[PluginInfo]

    @property
    def failures(self) -> list[PluginInfo]:
        return [info for info in self.infos if info.error]


def _allow_list() -> set[str] | None:
    raw = os.environ.get(ALLOW_LIST_ENV)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    # Deduplicate (a package can be visible twice, e.g. editable + site-packages).
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in eps:
        seen.setdefault(ep.name, ep)
    builtin = [ep for ep in seen.values() if _dist_name(ep) == BUILTIN_DISTRIBUTION]
    others = sorted((ep for ep in seen.values() if _dist_name(ep) != BUILTIN_DISTRIBUTION), key=lambda e: e.name)
    return sorted(builtin, key=lambda e: e.name) + others


_DIST_INFO: dict[int, tuple[Any, str, str]] = {}  # id(dist) -> (dist, name, version)


def _dist_info(ep: metadata.EntryPoint) -> tuple[str, str]:
    """The entry point's distribution name and version. Each ``dist.metadata`` lookup parses
    the whole METADATA file again (email parser): read it once per distribution."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?", "?"
    known = _DIST_INFO.get(id(dist))
    if known is None or known[0] is not dist:
        meta = dist.metadata
        known = _DIST_INFO[id(dist)] = (dist, meta["Name"], meta["Version"])
    return known[1], known[2]


def _dist_name(ep: metadata.EntryPoint) -> str:
    return _dist_info(ep)[0]


def _dist_version(ep: metadata.EntryPoint) -> str:
    return _dist_info(ep)[1]


def _hook_names(module: Any) -> list[str]:
    return sorted(n for n in dir(module) if n.startswith("evalkit_") and callable(getattr(module, n)))


def build_plugin_set(extra_plugins: list[Any] | None = None) -> PluginSet:
    """Create a fresh plugin manager; ``extra_plugins`` are registered after entry points (tests)."""
    pm = pluggy.PluginManager("evalkit")
    pm.add_hookspecs(hookspecs)
    allow = _allow_list()
    infos: list[PluginInfo] = []
    entry_points = _entry_points()
    if allow:
        known = {ep.name for ep in entry_points} | {_dist_name(ep) for ep in entry_points}
        for name in sorted(allow - known):
            log.warning(
                "%s names %r, which is no installed evalkit plugin (installed: %s); it is ignored",
                ALLOW_LIST_ENV, name, ", ".join(sorted(ep.name for ep in entry_points if _dist_name(ep) != BUILTIN_DISTRIBUTION)) or "none besides the built-ins",
            )
    for ep in entry_points:
        dist = _dist_name(ep)
        builtin = dist == BUILTIN_DISTRIBUTION
        info = PluginInfo(name=ep.name, module=ep.value, distribution=dist, version=_dist_version(ep), builtin=builtin)
        if not builtin and allow is not None and ep.name not in allow and dist not in allow:
            continue
        infos.append(info)
        started = time.perf_counter()
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"{type(exc).__name__}: {exc}"
            log.warning("evalkit plugin %r (%s) failed to load: %s", ep.name, dist, info.error)
            continue
        finally:
            info.load_s = time.perf_counter() - started
        if not builtin and info.load_s >= SLOW_LOAD_S:
            log.warning(
                "evalkit plugin %r (%s) took %.1f s to import, which every evalkit command pays "
                "(fix: import heavy libraries such as torch inside the plugin's factories)", ep.name, dist, info.load_s,
            )
        if pm.is_registered(module):
            continue
        pm.register(module, name=ep.name)
        info.hooks = _hook_names(module)
    for plugin in extra_plugins or []:
        module = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
        name = getattr(module, "__name__", repr(module))
        pm.register(module, name=name)
        infos.append(PluginInfo(name=name, module=name, distribution="(registered in code)", version="?", builtin=False, hooks=_hook_names(module)))
    pm.check_pending()
    return PluginSet(manager=pm, infos=infos)


@lru_cache(maxsize=1)
def default_plugin_set() -> PluginSet:
    """The process-wide plugin set (entry points read once)."""
    return build_plugin_set()


def reset_default_plugin_set() -> None:
    """Forget the cached plugin set (tests that install plugins at run time); the registry
    built from it is rebuilt too, since :func:`evalkit.registry.default_registry` checks
    which plugin set it was made from."""
    default_plugin_set.cache_clear()
