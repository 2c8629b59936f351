"""Bridges the ``evalkit_config_searchpath`` hook into Hydra's config search path.

Hydra discovers this SearchPathPlugin through the ``hydra_plugins`` namespace package; it
asks every evalkit plugin for its config locations (``pkg://my_plugin.conf``) and appends
them, so ``backend=mybackend`` composes for a third-party backend. Only evalkit apps are
touched (the search path must already contain ``pkg://evalkit.conf``).
"""

from __future__ import annotations

import logging

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

log = logging.getLogger(__name__)


class EvalKitSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from evalkit.resolvers import register_resolvers

        register_resolvers()
        if not any(str(e.path).startswith("pkg://evalkit.conf") for e in search_path.get_path()):
            return
        from evalkit.plugins import default_plugin_set

        plugin_set = default_plugin_set()
        for impl in plugin_set.manager.hook.evalkit_config_searchpath.get_hookimpls():
            try:
                paths = impl.function()
            except Exception as exc:  # a broken plugin must not break composition
                log.warning("plugin %s: evalkit_config_searchpath failed: %s", impl.plugin_name, exc)
                continue
            if isinstance(paths, str):
                paths = [paths]
            existing = {str(e.path) for e in search_path.get_path()}
            for path in paths or []:
                if path in existing:
                    continue
                search_path.append(provider=f"evalkit-plugin-{impl.plugin_name}", path=path)
