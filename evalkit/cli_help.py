"""Config groups and their options for ``evalkit --help``, found without importing Hydra.

Why: importing Hydra (with OmegaConf and its override grammar) and starting its config loader
takes most of the 0.5 s ``--help`` may cost, while listing groups needs only the files on the
search path Hydra composes from: evalkit's ``conf`` package and the locations plugins add with
``evalkit_config_searchpath`` (``pkg://module`` or ``file://dir``; each directory is a group,
each YAML file in it an option), the section schemas evalkit stores in Hydra's ConfigStore
(group ``schema``), and the launchers that Hydra and its plugins store there — read from their
source (``ConfigStore.instance().store(group="hydra/launcher", name=...)``), not imported.
"""

from __future__ import annotations

import ast
import importlib.util
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

CORE_SEARCH_PATH = "pkg://evalkit.conf"
CONFIG_SUFFIXES = (".yaml", ".yml")
LAUNCHER_GROUP = "hydra/launcher"


def search_path() -> list[str]:
    """evalkit's config location, then those plugins add (as the Hydra bridge appends them)."""
    entries = [CORE_SEARCH_PATH]
    try:
        from evalkit.plugins import default_plugin_set

        impls = default_plugin_set().manager.hook.evalkit_config_searchpath.get_hookimpls()
    except Exception:  # a broken plugin set must not break --help
        impls = []
    for impl in impls:
        try:
            paths = impl.function()
        except Exception:
            continue
        entries += [paths] if isinstance(paths, str) else [str(p) for p in paths or []]
    return list(dict.fromkeys(entries))


def _root(entry: str) -> Any:
    """The directory (or package resource tree) behind one search-path entry; None if absent."""
    try:
        if entry.startswith("pkg://"):
            return resources.files(entry[len("pkg://") :].strip("/").replace("/", "."))
        if entry.startswith("file://"):
            return Path(entry[len("file://") :])
    except (ImportError, TypeError, ValueError):
        return None
    return None


def _visible(name: str) -> bool:
    return not name.startswith(("_", "."))


def _yaml_groups(entries: Iterable[str]) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for entry in entries:
        root = _root(entry)
        if root is None or not root.is_dir():
            continue
        for group in root.iterdir():
            if not group.is_dir() or not _visible(group.name) or group.name == "hydra":
                continue
            options = groups.setdefault(group.name, set())
            options.update(f.name.rsplit(".", 1)[0] for f in group.iterdir() if f.is_file() and f.name.endswith(CONFIG_SUFFIXES) and _visible(f.name))
    return groups


def _stored_names(source: str, group: str) -> list[str]:
    """``name=`` of every ``....store(group=<group>, name=...)`` call with literal arguments."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "store":
            kwargs = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
            if kwargs.get("group") == group and isinstance(kwargs.get("name"), str):
                names.append(kwargs["name"])
    return names


def _launcher_sources() -> list[Path]:
    """Hydra's core plugins and every ``hydra_plugins`` package: where launchers are stored."""
    files: list[Path] = []
    hydra = importlib.util.find_spec("hydra")
    if hydra is not None and hydra.origin:
        files += sorted((Path(hydra.origin).parent / "_internal" / "core_plugins").glob("*.py"))
    plugins = importlib.util.find_spec("hydra_plugins")
    for location in (plugins.submodule_search_locations or []) if plugins is not None else []:
        files += sorted(Path(location).glob("*/**/*.py"))
    return files


def launchers() -> list[str]:
    names: set[str] = set()
    for path in _launcher_sources():
        try:
            source = path.read_text(encoding="utf-8")
            if LAUNCHER_GROUP in source:
                names.update(_stored_names(source, LAUNCHER_GROUP))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
    return sorted(names)


def group_options() -> dict[str, list[str]]:
    """Group -> sorted option names, as Hydra would list them for evalkit's app."""
    from evalkit.schema import SECTIONS

    groups = {name: sorted(options) for name, options in sorted(_yaml_groups(search_path()).items())}
    groups[LAUNCHER_GROUP] = launchers()
    groups["schema"] = sorted(SECTIONS)
    return groups
