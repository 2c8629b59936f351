"""Plugin discovery and registration: duplicates, unknown names, broken plugins, allow-list."""

from __future__ import annotations

import sys
import textwrap
import types

import pytest

from evalkit import hookimpl
from evalkit.errors import PluginError
from evalkit.plugins import build_plugin_set
from evalkit.registry import Registry


def _plugin(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


def test_builtins_register_through_entry_points():
    registry = Registry(build_plugin_set())
    assert "replay" in registry.names("backend")
    assert {"json_label", "text"} <= set(registry.names("parser"))
    providers = {info.name: info for info in registry.plugin_set.infos}
    assert providers["replay"].distribution == "evalkit" and providers["replay"].builtin


def test_duplicate_name_names_both_providers():
    a = _plugin("plugin_a", evalkit_register_parsers=lambda register: register("dup", lambda: None))
    b = _plugin("plugin_b", evalkit_register_parsers=lambda register: register("dup", lambda: None))
    with pytest.raises(PluginError) as info:
        Registry(build_plugin_set([a, b]))
    message = str(info.value)
    assert "plugin_a" in message and "plugin_b" in message and "'dup'" in message


def test_unknown_name_lists_available():
    registry = Registry(build_plugin_set())
    with pytest.raises(PluginError) as info:
        registry.get("parser", "nope")
    assert "unknown parser 'nope'" in str(info.value)
    assert "json_label" in str(info.value) and "parser.name" in str(info.value)


def test_lazy_string_factories_import_on_use():
    module_name = "evalkit_test_lazy_target"
    target = types.ModuleType(module_name)
    target.Factory = lambda: "built"  # type: ignore[attr-defined]
    sys.modules[module_name] = target
    try:
        plugin = _plugin("lazy_plugin", evalkit_register_parsers=lambda register: register("lazy", f"{module_name}:Factory"))
        registry = Registry(build_plugin_set([plugin]))
        assert registry.get("parser", "lazy").factory() == "built"
    finally:
        del sys.modules[module_name]


def test_lazy_factory_with_missing_module_is_a_clear_error():
    plugin = _plugin("broken_lazy", evalkit_register_metrics=lambda register: register("ghost", "no_such_module_xyz:Thing"))
    registry = Registry(build_plugin_set([plugin]))
    with pytest.raises(PluginError) as info:
        registry.get("metric", "ghost").factory
    assert "no_such_module_xyz" in str(info.value) and "broken_lazy" in str(info.value)


def _fake_distribution(tmp_path, monkeypatch, dist: str, entry_name: str, module_name: str, body: str):
    """A real installed-looking distribution (dist-info + module) on sys.path."""
    site = tmp_path / f"site_{dist}"
    site.mkdir()
    (site / f"{module_name}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[evalkit]\n{entry_name} = {module_name}\n")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_broken_plugin_is_reported_not_fatal(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, monkeypatch, "evalkit-broken", "broken", "evalkit_broken_mod", "raise ImportError('needs libfoo')\n")
    plugin_set = build_plugin_set()
    failed = {i.name: i for i in plugin_set.failures}
    assert "broken" in failed and "needs libfoo" in failed["broken"].error
    registry = Registry(plugin_set)
    assert "replay" in registry.names("backend")  # the others still load
    with pytest.raises(PluginError) as info:
        registry.get("backend", "libfoo_backend")
    assert "failed to load" in str(info.value) and "broken" in str(info.value)


def test_allow_list_filters_third_party_plugins(tmp_path, monkeypatch):
    body = """
    from evalkit import hookimpl

    @hookimpl
    def evalkit_register_parsers(register):
        register("{name}", lambda: (lambda text: text))
    """
    _fake_distribution(tmp_path, monkeypatch, "evalkit-one", "one", "evalkit_one_mod", body.format(name="p_one"))
    _fake_distribution(tmp_path, monkeypatch, "evalkit-two", "two", "evalkit_two_mod", body.format(name="p_two"))
    assert {"p_one", "p_two"} <= set(Registry(build_plugin_set()).names("parser"))
    monkeypatch.setenv("EVALKIT_LOAD_PLUGINS", "one")
    names = set(Registry(build_plugin_set()).names("parser"))
    assert "p_one" in names and "p_two" not in names
    assert "json_label" in names  # built-ins always load
    monkeypatch.setenv("EVALKIT_LOAD_PLUGINS", "evalkit-two")  # distribution names work too
    names = set(Registry(build_plugin_set()).names("parser"))
    assert "p_two" in names and "p_one" not in names
