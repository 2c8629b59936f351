"""Fixed costs out of the way: heavy imports done while other work runs, or avoided.

* :func:`warm_requests` imports what a light backend's requests need, in the console
  script's pre-forked child while the parent composes the config.
* :func:`preload` imports what the reports need (``REPORT_MODULES``) while a forked child
  still sends a run's requests; a failure there is silent: the real import later raises it
  where it belongs.
* :func:`import_openpyxl` imports openpyxl without Pillow, which it binds at import time
  only to embed pictures (about 0.1 s where Pillow is installed, as it is beside vLLM and
  transformers).
* :func:`import_torchmetrics` imports torchmetrics without importing transformers or
  ``scipy.signal``. torchmetrics binds ``from transformers import AutoModel, ...`` at import
  time for BERTScore, InfoLM and CLIPScore (about 2-4 s on a small machine), and its audio
  package imports ``scipy.signal`` (with ``scipy.stats``: about 1 s of CPU) only to give it a
  ``hamming`` alias for SRMR. Here the transformers names are bound to proxies that import the
  real class the first time one is used, and ``scipy.signal`` stands in as a placeholder while
  torchmetrics loads; the next ``import scipy.signal`` loads the real module (with the alias),
  so those metrics still work.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import threading
import types
from contextlib import contextmanager
from typing import Any, Iterable, Iterator


# What writing a run's reports imports and compiles (report.xlsx, report.html, the console
# table): done while a forked child still sends requests, it costs the run's tail nothing.
REPORT_MODULES = (
    "evalkit.warmup:import_openpyxl", "openpyxl.styles", "openpyxl.utils", "evalkit.excel", "evalkit.console", "rich.console", "rich.table",
    "evalkit.html", "evalkit.html.page:page_template",
)


# What a light backend's generation phase imports beyond the start-up's own modules: done by
# the console script's pre-forked child while the parent composes the config.
REQUEST_MODULES = ("evalkit.pipeline", "evalkit.progress", "rich.console", "rich.progress", "ctypes", "evalkit.registry:default_registry")


def warm_requests(backend: str | None = None) -> None:
    """Import what sending a run's requests needs (:data:`REQUEST_MODULES`), and, when the
    command line names a light ``backend``, what its class's optional ``warm_up()`` loads
    (``backend=api``: aiohttp). Run by :class:`evalkit.forked.Prefork` before the config exists."""
    preload(REQUEST_MODULES)
    if not backend:
        return
    from evalkit.registry import default_registry

    try:
        factory = default_registry().get("backend", backend).factory
    except Exception:  # noqa: BLE001 - an unknown name is the run's error to report, not this
        return
    warm_up = getattr(factory, "warm_up", None)
    if getattr(factory, "light", False) and callable(warm_up):
        warm_up()


def preload(modules: Iterable[str]) -> None:
    """Import each of ``modules`` now (``module:function`` also calls the function), skipping
    any that fail: the real import or call raises it later, where it belongs."""
    for name in modules:
        module_name, _, function = name.partition(":")
        try:
            module = importlib.import_module(module_name)
            if function:
                getattr(module, function)()
        except Exception:  # noqa: BLE001 - re-raised by the real import, where it is used
            pass


class _Deferred:
    """Stands for ``transformers.<name>`` until first use, then delegates to the real object."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _real(self) -> Any:
        module = sys.modules.get("transformers")
        if module is not None and getattr(module, "_evalkit_placeholder", False):
            raise AttributeError(f"transformers.{self._name} is not importable while torchmetrics loads")
        return getattr(importlib.import_module("transformers"), self._name)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return getattr(self._real(), attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._real()(*args, **kwargs)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self._real())

    def __subclasscheck__(self, cls: type) -> bool:
        return issubclass(cls, self._real())

    def __repr__(self) -> str:
        return f"<deferred transformers.{self._name}>"


@contextmanager
def _deferred_transformers() -> Iterator[None]:
    """While active, ``from transformers import X`` binds a :class:`_Deferred` proxy."""
    placeholder = types.ModuleType("transformers")
    placeholder._evalkit_placeholder = True  # type: ignore[attr-defined]

    def deferred(name: str) -> _Deferred:  # PEP 562 module __getattr__
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Deferred(name)

    placeholder.__getattr__ = deferred  # type: ignore[method-assign]
    with _standing_in(placeholder):
        yield


@contextmanager
def _standing_in(placeholder: types.ModuleType) -> Iterator[None]:
    """``placeholder`` is ``sys.modules[placeholder.__name__]`` while active (then removed)."""
    sys.modules[placeholder.__name__] = placeholder
    try:
        yield
    finally:
        if sys.modules.get(placeholder.__name__) is placeholder:
            del sys.modules[placeholder.__name__]


class _HammingAlias(importlib.abc.Loader):
    """Loads ``scipy.signal`` as its own loader does, then adds the ``hamming`` alias
    torchmetrics' audio package would have added (SRMR's gammatone filters use it)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        if not hasattr(module, "hamming"):
            module.hamming = module.windows.hamming  # type: ignore[attr-defined]


@contextmanager
def _deferred_scipy_signal() -> Iterator[None]:
    """While active, ``import scipy.signal`` gives a placeholder that has ``hamming`` (all
    torchmetrics looks at); afterwards ``scipy.signal`` is a lazy module: the first use of
    one of its names loads the real one, alias included."""
    spec = importlib.util.find_spec("scipy.signal") if importlib.util.find_spec("scipy") is not None and "scipy.signal" not in sys.modules else None
    if spec is None or spec.loader is None:
        yield
        return
    scipy = importlib.import_module("scipy")
    placeholder = types.ModuleType("scipy.signal")
    placeholder.hamming = None  # type: ignore[attr-defined]
    sys.modules["scipy.signal"] = placeholder
    scipy.signal = placeholder  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if sys.modules.get("scipy.signal") is placeholder:
            spec.loader = importlib.util.LazyLoader(_HammingAlias(spec.loader))
            lazy = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(lazy)  # lazy: nothing runs until a name is looked up
            sys.modules["scipy.signal"] = scipy.signal = lazy  # type: ignore[attr-defined]


class _DeferredModule:
    """Stands for module ``name`` until first use, then delegates to the real module."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self) -> str:
        return f"<deferred module {self._name}>"


@contextmanager
def _deferred_pil_image() -> Iterator[None]:
    """While active, ``from PIL import Image`` binds a :class:`_DeferredModule` (only where
    Pillow is installed and not imported yet: elsewhere openpyxl sees what it always saw)."""
    if "PIL" in sys.modules or importlib.util.find_spec("PIL") is None:
        yield
        return
    placeholder = types.ModuleType("PIL")
    placeholder.Image = _DeferredModule("PIL.Image")  # type: ignore[attr-defined]
    with _standing_in(placeholder):
        yield


_lock = threading.Lock()


def import_openpyxl() -> types.ModuleType:
    """``import openpyxl`` without importing Pillow (about 0.1 s): openpyxl binds
    ``PIL.Image`` at import time only to embed pictures, which evalkit's workbooks never do;
    a proxy stands in and imports the real module the first time a picture is handled."""
    with _lock:
        if "openpyxl" in sys.modules:
            return sys.modules["openpyxl"]
        with _deferred_pil_image():
            return importlib.import_module("openpyxl")


def _torch_logging_default() -> None:
    """torch's own default level for its loggers (WARNING; ``TORCH_LOGS`` still wins, torch
    applies it at the end of its import), set before the import: an import cut short by a run
    that failed meanwhile must not print the INFO lines of the exit handlers it registered."""
    import logging

    logger = logging.getLogger("torch")
    if "torch" not in sys.modules and logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def import_torchmetrics() -> types.ModuleType:
    """``import torchmetrics``, without paying for transformers until a metric needs it."""
    with _lock:
        if "torchmetrics" in sys.modules or "transformers" in sys.modules:
            return importlib.import_module("torchmetrics")
        _torch_logging_default()
        with _deferred_transformers(), _deferred_scipy_signal():
            return importlib.import_module("torchmetrics")
