"""One config composition per plain ``evalkit`` run, not two.

Hydra 1.3 composes the whole config twice for ``app key=value``: once, as for a sweep, only
to read ``hydra.mode`` (``Hydra.get_mode``), then again to run. Each composition of
evalkit's config tree costs about 0.3 s on a small machine. For a run without ``-m`` the
first composition is done as the run would do it and kept; the run then takes it instead of
composing again. Hydra's own path is taken wherever the answer could differ: ``-m`` /
``--multirun``, an override naming ``hydra.mode``, a composition that fails (its error is
then raised by Hydra as before) and a config that sets ``hydra.mode`` itself.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

_MODE_OVERRIDE = "hydra.mode=RUN"  # what Hydra's _run_app appends when no mode is configured


def _multirun_requested(argv: list[str]) -> bool:
    # argparse accepts abbreviations (--multi): any -m.../--m... flag counts
    return any(a == "-m" or a.startswith("--m") for a in argv)


def install() -> None:
    """Patch ``hydra._internal.hydra.Hydra`` (idempotent)."""
    from hydra._internal import hydra as hydra_internal
    from hydra.types import RunMode

    cls = hydra_internal.Hydra
    if getattr(cls, "_evalkit_single_compose", False):
        return
    original_get_mode = cls.get_mode
    original_compose = cls.compose_config

    def get_mode(self: Any, config_name: str | None, overrides: list[str]) -> Any:
        if _multirun_requested(sys.argv[1:]) or any("hydra.mode" in o for o in overrides):
            return original_get_mode(self, config_name, overrides)
        try:
            cfg = original_compose(self, config_name=config_name, overrides=list(overrides), run_mode=RunMode.RUN)
        except Exception:  # noqa: BLE001 - Hydra's own path reports it
            return original_get_mode(self, config_name, overrides)
        if cfg.hydra.mode is not None:  # the config chose a mode itself
            return cfg.hydra.mode
        self._evalkit_composed = (config_name, list(overrides) + [_MODE_OVERRIDE], cfg)
        return None

    def compose_config(self: Any, config_name: str | None, overrides: list[str], run_mode: Any, with_log_configuration: bool = False, from_shell: bool = True, validate_sweep_overrides: bool = True) -> Any:
        kept = getattr(self, "_evalkit_composed", None)
        self._evalkit_composed = None
        if kept is None or run_mode != RunMode.RUN or kept[0] != config_name or kept[1] != list(overrides):
            return original_compose(self, config_name, overrides, run_mode, with_log_configuration, from_shell, validate_sweep_overrides)
        cfg = kept[2]
        cfg.hydra.mode = RunMode.RUN  # what the appended override would have set
        cfg.hydra.overrides.hydra.append(_MODE_OVERRIDE)
        if with_log_configuration:
            hydra_internal.configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
            hydra_internal.log = logging.getLogger(hydra_internal.__name__)
            self._print_debug_info(config_name, overrides, run_mode)
        return cfg

    cls.get_mode = get_mode
    cls.compose_config = compose_config
    cls._evalkit_single_compose = True
