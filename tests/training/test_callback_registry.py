"""Both training callbacks are registered through evalkit_register_callbacks and resolve."""

from __future__ import annotations

from evalkit.registry import Registry
from evalkit.plugins import build_plugin_set


def test_training_callbacks_resolve_by_name():
    registry = Registry(build_plugin_set())
    assert {"lightning", "hf_trainer"} <= set(registry.names("callback"))
    from evalkit_hf.trainer import EvalKitGenerationCallback
    from evalkit_lightning import EvalKitCallback

    assert registry.get("callback", "lightning").factory is EvalKitCallback
    assert registry.get("callback", "hf_trainer").factory is EvalKitGenerationCallback
    import transformers

    assert issubclass(EvalKitGenerationCallback, transformers.TrainerCallback)
