"""The hook surface is small, prefixed and documented (the llm/datasette convention)."""

import inspect

from evalkit import hookspecs

HOOKS = [n for n, f in vars(hookspecs).items() if n.startswith("evalkit_") and inspect.isfunction(f)]


def test_expected_hooks_exist():
    assert sorted(HOOKS) == sorted(
        [
            "evalkit_register_backends",
            "evalkit_register_heads",
            "evalkit_register_parsers",
            "evalkit_register_metrics",
            "evalkit_register_callbacks",
            "evalkit_config_searchpath",
        ]
    )


def test_every_hook_is_documented_and_typed():
    for name in HOOKS:
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and len(fn.__doc__.strip()) > 40, f"{name} needs a docstring"
        sig = inspect.signature(fn)
        assert sig.return_annotation is not inspect.Signature.empty, f"{name} needs a return annotation"
        for param in sig.parameters.values():
            assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name}) needs a type"
