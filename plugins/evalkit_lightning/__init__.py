"""evalkit inside Lightning: ``from evalkit_lightning import EvalKitCallback``.

Names resolve lazily (PEP 562), so importing ``evalkit_lightning.plugin`` — which
``evalkit-plugins`` does — never imports torch or Lightning.
"""

from __future__ import annotations

from evalkit.lazy import lazy_exports

_EXPORTS = {
    "EvalKitCallback": "evalkit_lightning.callback",
    "instantiate_callbacks": "evalkit_lightning.instantiate",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
