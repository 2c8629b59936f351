"""The house's dependency rules, read from the modules' own imports (every import, lazy ones
inside functions included): plugins import the core, never another plugin and never the
orchestrator; the core imports no plugin and names no domain."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = sorted(p for p in (REPO / "plugins").iterdir() if (p / "__init__.py").exists())
CORE = sorted((REPO / "evalkit").rglob("*.py"))
PLUGIN_NAMES = {p.name for p in PLUGINS}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def test_there_are_plugins_and_core_modules_to_check():
    assert {"evalkit_tools", "evalkit_hf", "evalkit_api", "evalkit_replay", "evalkit_lightning"} <= PLUGIN_NAMES
    assert len(CORE) > 20


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_a_plugin_imports_no_other_plugin_and_not_the_pipeline(plugin):
    problems = []
    for path in sorted(plugin.rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in PLUGIN_NAMES and top != plugin.name:
                problems.append(f"{path.relative_to(REPO)} imports {module}")
            if module == "evalkit.pipeline" or module.startswith("evalkit.pipeline."):
                problems.append(f"{path.relative_to(REPO)} imports the orchestrator {module}")
    assert not problems, "\n".join(problems)


def test_the_core_imports_no_plugin():
    problems = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in CORE
        for module in imported_modules(path)
        if module.split(".")[0] in PLUGIN_NAMES
    ]
    assert not problems, "\n".join(problems)


def test_the_core_names_no_domain():
    """The seed's tool-call dialect and the tool-call report's sheets live in evalkit_tools."""
    words = ("toolName", "paramList", "badcases", "same_calls")
    problems = [
        f"{path.relative_to(REPO)} mentions {word}"
        for path in CORE
        for word in words
        if word in path.read_text(encoding="utf-8")
    ]
    assert not problems, "\n".join(problems)


def test_core_modules_import_without_cycles():
    """The plugin manager (plugins.py) knows nothing of the registry built on it."""
    assert not any(m.startswith("evalkit.registry") for m in imported_modules(REPO / "evalkit" / "plugins.py"))
