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
            "evalkit_register_label_formats",
            "evalkit_register_reports",
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


def test_every_hook_and_its_signature_is_in_the_plugin_guide():
    """As datasette's test_plugin_hooks_are_documented: docs/plugins.md has a heading with each
    hook's exact signature, and no heading for a hook that does not exist."""
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^### `(evalkit_\w+)(\(.*\) -> .*)`$", guide, flags=re.M))
    assert sorted(documented) == sorted(HOOKS)
    for name in HOOKS:
        sig = str(inspect.signature(getattr(hookspecs, name))).replace("'", "")
        assert documented[name] == sig, f"{name}: docs say {documented[name]}, code says {sig}"
