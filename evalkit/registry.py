"""Name -> factory tables, one per plugin kind, filled through the ``evalkit_register_*`` hooks.

Each hook implementation is called separately with a ``register`` bound to its plugin, so a
duplicate name is reported with *both* providers, and an unknown name lists what exists.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from evalkit.errors import PluginError
from evalkit.plugins import PluginSet, default_plugin_set

KINDS: dict[str, str] = {
    "backend": "evalkit_register_backends",
    "head": "evalkit_register_heads",
    "parser": "evalkit_register_parsers",
    "metric": "evalkit_register_metrics",
    "callback": "evalkit_register_callbacks",
    "label_format": "evalkit_register_label_formats",
    "report": "evalkit_register_reports",
}

# Where each kind is selected in the config, for error messages.
CONFIG_KEYS: dict[str, str] = {
    "backend": "backend.name",
    "head": "head.name",
    "parser": "parser.name",
    "metric": "metrics.<key>.name",
    "callback": "callbacks.<key>.name",
    "label_format": "data.label_format",
    "report": "report.writers",
}


@dataclass
class Entry:
    """One registration. ``target`` is the factory, or a ``"module:attr"`` string that is
    imported only when the plugin is used (keeps torch & co. out of start-up)."""

    name: str
    target: Callable[..., Any] | str
    provider: str

    @property
    def factory(self) -> Callable[..., Any]:
        if isinstance(self.target, str):
            module_name, _, attr = self.target.partition(":")
            try:
                module = importlib.import_module(module_name)
                obj = module
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except ImportError as exc:
                missing = getattr(exc, "name", None) or str(exc)
                raise PluginError(
                    f"plugin '{self.provider}' cannot load '{self.name}' from {self.target}: missing module {missing}",
                    where=self.target,
                    fix="install the plugin's dependencies (e.g. pip install \"evalkit[all]\")",
                ) from None
            except AttributeError:
                raise PluginError(f"plugin '{self.provider}' registered '{self.name}' as {self.target}, which does not exist", where=self.target) from None
            self.target = obj
        return self.target  # type: ignore[return-value]


class Registry:
    """All registered factories, by kind and name."""

    def __init__(self, plugin_set: PluginSet) -> None:
        self.plugin_set = plugin_set
        self._tables: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        for kind, hook_name in KINDS.items():
            hook = getattr(plugin_set.manager.hook, hook_name)
            for impl in hook.get_hookimpls():
                provider = impl.plugin_name
                impl.function(register=self._registrar(kind, provider))

    def _registrar(self, kind: str, provider: str) -> Callable[[str, Callable[..., Any]], None]:
        table = self._tables[kind]

        def register(name: str, factory: Callable[..., Any]) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin '{provider}' registered a {kind} with an invalid name {name!r}", where=provider)
            if not callable(factory) and not (isinstance(factory, str) and ":" in factory):
                raise PluginError(
                    f"plugin '{provider}' registered {kind} '{name}' with {factory!r}; expected a callable or a 'module:attr' string",
                    where=provider,
                )
            if name in table:
                other = table[name].provider
                raise PluginError(
                    f"{kind} name '{name}' is registered twice: by plugin '{other}' and by plugin '{provider}'",
                    where=CONFIG_KEYS[kind],
                    fix="uninstall one of them or restrict plugins with EVALKIT_LOAD_PLUGINS",
                )
            table[name] = Entry(name=name, target=factory, provider=provider)

        return register

    def names(self, kind: str) -> list[str]:
        return sorted(self._tables[kind])

    def entries(self, kind: str) -> list[Entry]:
        return [self._tables[kind][n] for n in self.names(kind)]

    def get(self, kind: str, name: str, *, where: str | None = None) -> Entry:
        table = self._tables[kind]
        if name not in table:
            available = ", ".join(self.names(kind)) or "(none)"
            broken = [f"{i.name} ({i.error})" for i in self.plugin_set.failures]
            hint = f"; plugins that failed to load: {'; '.join(broken)}" if broken else ""
            raise PluginError(
                f"unknown {kind} '{name}'; available: {available}{hint}",
                where=where or CONFIG_KEYS[kind],
                fix="pick one of the available names, or install the plugin that provides it (evalkit-plugins lists them)",
            )
        return table[name]

    def provided_by(self, provider: str) -> dict[str, list[str]]:
        """What one plugin registered, by kind (for ``evalkit-plugins``)."""
        out: dict[str, list[str]] = {}
        for kind, table in self._tables.items():
            names = sorted(n for n, e in table.items() if e.provider == provider)
            if names:
                out[kind] = names
        return out


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, rebuilt when the plugin set was reset."""
    global _default
    plugin_set = default_plugin_set()
    if _default is None or _default.plugin_set is not plugin_set:
        _default = Registry(plugin_set)
    return _default


def _clear() -> None:
    global _default
    _default = None


default_registry.cache_clear = _clear  # type: ignore[attr-defined]  # the lru_cache API callers used
