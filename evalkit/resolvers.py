"""OmegaConf resolvers used by evalkit's shipped configs.

``${demo:toolcall/data.jsonl}`` is the path of a demo file shipped inside the installed
package, so the offline demo works from any working directory and from a wheel.
"""

from __future__ import annotations

from importlib import resources

from omegaconf import OmegaConf


def demo_path(relative: str) -> str:
    base = resources.files("evalkit.demo")
    return str(base.joinpath(*relative.split("/")))


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("demo"):
        OmegaConf.register_new_resolver("demo", demo_path)


def install_hydra_integration() -> None:
    """Register evalkit's resolvers and its config-search-path plugin with Hydra.

    Hydra finds the plugin by scanning the ``hydra_plugins`` namespace package, which does
    not see packages served by an editable install's import hook; registering the class
    explicitly works for every install mode (Hydra de-duplicates it).
    """
    register_resolvers()
    from evalkit.schema import register_schemas

    register_schemas()
    from hydra.core.plugins import Plugins

    from hydra_plugins.evalkit_searchpath.searchpath import EvalKitSearchPathPlugin

    Plugins.instance().register(EvalKitSearchPathPlugin)
