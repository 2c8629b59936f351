"""evalkit: evaluate fine-tuned LLMs the way their trainers work.

The core holds contracts and composition only; backends, heads, parsers, metrics and
callbacks are plugins (see :mod:`evalkit.hookspecs`). Third-party plugins write::

    from evalkit import hookimpl

    @hookimpl
    def evalkit_register_parsers(register):
        register("my_parser", make_my_parser)
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("evalkit")

__all__ = ["hookimpl", "__version__"]
