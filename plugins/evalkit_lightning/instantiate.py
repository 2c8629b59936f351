"""Instantiate a ``callbacks:`` config group holding evalkit nodes of either style.

lightning-hydra-template instantiates every node of its ``callbacks`` group that has a
``_target_``; evalkit's own configs select plugins by registered name
(``{name: lightning, ...}``). :func:`instantiate_callbacks` accepts both, so one group can mix
``ModelCheckpoint`` (``_target_``) with ``{name: lightning}`` nodes, and a wrong option is an
error naming its key path (``callbacks.evalkit.every_n_train_steps``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalkit.config import to_container
from evalkit.errors import ConfigError, EvalKitError, PluginError


def instantiate_callbacks(node: Any, *, path: str = "callbacks") -> list[Any]:
    """``{key: {_target_: ...} | {name: ...}}`` -> callback objects, in key order."""
    data = to_container(node) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping of callback key -> node, got {type(data).__name__}", where=path)
    callbacks: list[Any] = []
    for key, sub in data.items():
        if sub is None:
            continue
        where = f"{path}.{key}"
        if not isinstance(sub, Mapping):
            raise ConfigError(f"expected a mapping with '_target_' or 'name', got {type(sub).__name__}", where=where)
        if "_target_" in sub:
            from hydra.utils import instantiate

            callbacks.append(instantiate(dict(sub), _convert_="all"))
        elif "name" in sub:
            callbacks.append(_build_registered(sub, where))
        else:
            raise ConfigError("a callback node needs '_target_' (a class path) or 'name' (a registered callback)", where=where)
    return callbacks


def _build_registered(node: Mapping[str, Any], where: str) -> Any:
    """Build a ``{name: ...}`` node; errors about its nested options (``metrics.x.name``,
    ``generation_eval.batch_size``) get the node's own path in front, so they name the full key."""
    import inspect

    from evalkit.factory import build_plugin
    from evalkit.registry import default_registry

    registry = default_registry()
    try:
        return build_plugin(registry, "callback", node, path=where)
    except (ConfigError, PluginError) as exc:
        try:
            factory = registry.get("callback", str(node["name"])).factory
            target = factory.__init__ if inspect.isclass(factory) else factory
            options = set(inspect.signature(target).parameters)
        except (EvalKitError, TypeError, ValueError):
            raise exc from None
        head = (exc.where or "").split(".")[0]
        if head in options and not (exc.where or "").startswith(where):
            raise type(exc)(exc.what, where=f"{where}.{exc.where}", fix=exc.fix) from None
        raise
