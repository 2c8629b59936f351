"""Turning a config node into validated keyword arguments for a plugin factory.

A plugin node is ``{name: <registered name>, **options}``. Options are checked against the
factory's signature (a class's ``__init__`` or a function): an unknown key or a value of the
wrong type is a :class:`ConfigError` naming the full key path (``backend.timeout``) and the
accepted keys. Factories that take ``**kwargs`` accept any extra key.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any, Callable, Literal, Union

from evalkit.errors import ConfigError

_NO_DEFAULT = inspect.Parameter.empty


def to_container(node: Any) -> Any:
    """OmegaConf node -> plain Python (resolved); plain values pass through."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a core dependency
        return node
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_type(value: Any, tp: Any) -> bool:
    """Loose runtime check for the annotation shapes plugin configs use."""
    if tp is Any or tp is _NO_DEFAULT or tp is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return any(check_type(value, a) for a in args)
    if origin is Literal:
        return value in args
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple, typing.Sequence, set, frozenset) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if args and origin in (list, typing.Sequence, set, frozenset):
            return all(check_type(v, args[0]) for v in value)
        if args and origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return all(check_type(v, args[0]) for v in value)
            return len(args) == len(value) and all(check_type(v, a) for v, a in zip(value, args))
        return True
    if origin in (dict, Mapping, typing.Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            return False
        if args:
            return all(check_type(k, args[0]) and check_type(v, args[1]) for k, v in value.items())
        return True
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # unknown annotation shapes are not second-guessed


def _signature_target(factory: Callable[..., Any]) -> Callable[..., Any]:
    return factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]


@functools.lru_cache(maxsize=512)
def _inspect(factory: Callable[..., Any]) -> tuple[inspect.Signature, dict[str, Any]] | None:
    """A factory's signature and type hints, inspected once per factory."""
    target = _signature_target(factory)
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    return sig, hints


def validate_options(
    factory: Callable[..., Any],
    options: Mapping[str, Any],
    *,
    path: str,
    plugin: str,
    injected: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Check ``options`` against ``factory``'s signature; return them as a plain dict.

    ``injected`` names parameters the pipeline passes itself (``model``, ``generation``);
    they are not user options and are skipped here.
    """
    options = dict(to_container(options) or {})
    try:
        inspected = _inspect(factory)
    except TypeError:  # an unhashable callable: inspect it uncached
        inspected = _inspect.__wrapped__(factory)
    if inspected is None:
        return options
    sig, hints = inspected
    params = {n: p for n, p in sig.parameters.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL,)}
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    base_options = _torchmetrics_base_options(factory) if accepts_any else None
    if base_options is not None:
        # A torchmetrics Metric forwards **kwargs to Metric.__init__: those are the only extras.
        accepts_any = False
        params.update({n: inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None) for n in base_options})
    known = {n: p for n, p in params.items() if p.kind is not p.VAR_KEYWORD and n not in injected}
    for key, value in options.items():
        key_path = f"{path}.{key}"
        if key not in known:
            if accepts_any:
                continue
            valid = ", ".join(sorted(known)) or "(none)"
            raise ConfigError(
                f"unknown option '{key}' for {plugin}; valid options: {valid}",
                where=key_path,
                fix=f"remove it or use one of: {valid}",
            )
        tp = hints.get(key, known[key].annotation)
        if value is not None and isinstance(tp, str):
            continue
        if not check_type(value, tp):
            raise ConfigError(
                f"{plugin} expects {_type_name(tp)}, got {type(value).__name__} {value!r}",
                where=key_path,
                fix=f"set {key_path} to {_type_name(tp)}",
            )
    missing = [
        n for n, p in known.items() if p.default is _NO_DEFAULT and p.kind is not p.VAR_KEYWORD and n not in options
    ]
    if missing:
        raise ConfigError(
            f"{plugin} needs option(s) {', '.join(missing)}",
            where=f"{path}.{missing[0]}",
            fix=f"add {path}.{missing[0]}=... to the command line or config",
        )
    return options


TORCHMETRICS_BASE_OPTIONS = (
    "compute_on_cpu", "dist_sync_on_step", "process_group", "dist_sync_fn",
    "distributed_available_fn", "sync_on_compute", "compute_with_cache",
)


def _torchmetrics_base_options(factory: Callable[..., Any]) -> tuple[str, ...] | None:
    """The keyword arguments ``torchmetrics.Metric.__init__`` takes, if ``factory`` is a
    Metric class (detected without importing torchmetrics)."""
    if not inspect.isclass(factory):
        return None
    if any(cls.__module__ == "torchmetrics.metric" and cls.__name__ == "Metric" for cls in factory.__mro__):
        return TORCHMETRICS_BASE_OPTIONS
    return None


def split_plugin_node(node: Any, *, path: str) -> tuple[str, dict[str, Any]]:
    """``{name: x, **opts}`` -> ``("x", opts)`` with a clear error when ``name`` is missing."""
    data = to_container(node)
    if isinstance(data, str):
        return data, {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping with a 'name' key, got {type(data).__name__}", where=path)
    data = dict(data)
    name = data.pop("name", None)
    if not name or not isinstance(name, str):
        raise ConfigError("missing 'name' (which plugin to use)", where=f"{path}.name", fix=f"set {path}.name=...")
    return name, data
