"""Plugin options are validated against the factory's signature, with the key's path."""

from __future__ import annotations

from typing import Literal

import pytest

from evalkit.config import split_plugin_node, validate_options
from evalkit.errors import ConfigError
from evalkit.pipeline import generation_from_config


class Factory:
    def __init__(self, base_url: str, timeout: float = 30.0, retries: int = 3, mode: Literal["a", "b"] = "a",
                 headers: dict[str, str] | None = None, stop: list[str] | None = None, model: dict | None = None) -> None:
        pass


def test_valid_options_pass_and_ints_are_floats():
    opts = validate_options(Factory, {"base_url": "x", "timeout": 5, "headers": {"a": "b"}}, path="backend", plugin="backend 'x'")
    assert opts == {"base_url": "x", "timeout": 5, "headers": {"a": "b"}}


@pytest.mark.parametrize(
    "options, key, needle",
    [
        ({"base_url": "x", "timeot": 1}, "backend.timeot", "unknown option 'timeot'"),
        ({"base_url": "x", "retries": "three"}, "backend.retries", "expects int"),
        ({"base_url": "x", "retries": True}, "backend.retries", "expects int"),
        ({"base_url": "x", "mode": "c"}, "backend.mode", "expects"),
        ({"base_url": "x", "stop": "oops"}, "backend.stop", "expects"),
        ({}, "backend.base_url", "needs option"),
    ],
)
def test_bad_options_name_the_key(options, key, needle):
    with pytest.raises(ConfigError) as info:
        validate_options(Factory, options, path="backend", plugin="backend 'x'")
    assert str(info.value).startswith(key) and needle in str(info.value)


def test_injected_parameters_are_not_user_options():
    with pytest.raises(ConfigError):
        validate_options(Factory, {"base_url": "x", "model": {}}, path="backend", plugin="b", injected=("model",))


def test_split_plugin_node_requires_name():
    assert split_plugin_node({"name": "a", "k": 1}, path="parser") == ("a", {"k": 1})
    with pytest.raises(ConfigError) as info:
        split_plugin_node({"k": 1}, path="parser")
    assert str(info.value).startswith("parser.name")


def test_generation_settings_are_validated():
    gen = generation_from_config({"max_new_tokens": 8, "temperature": 0, "stop": ["</s>"]})
    assert gen.stop == ("</s>",) and gen.greedy and gen.deterministic
    with pytest.raises(ConfigError) as info:
        generation_from_config({"max_tokens": 8})
    assert str(info.value).startswith("generation.max_tokens")
    with pytest.raises(ConfigError):
        generation_from_config({"n": 0})


def test_injection_respects_parameter_types_and_node_options():
    import types

    from evalkit import hookimpl
    from evalkit.pipeline import build_plugin
    from evalkit.plugins import build_plugin_set
    from evalkit.registry import Registry

    class Served:  # an API backend: ``model`` is the served name
        def __init__(self, model: str | None = None) -> None:
            self.model = model

    class Local:  # a weights backend: ``model`` is the model node
        def __init__(self, model: dict | None = None) -> None:
            self.model = model

    plugin = types.ModuleType("inject_plugin")
    plugin.evalkit_register_backends = hookimpl(lambda register: (register("served", Served), register("local", Local)))
    registry = Registry(build_plugin_set([plugin]))
    node = {"path": "/ckpt"}
    assert build_plugin(registry, "backend", {"name": "local"}, path="backend", inject={"model": node}).model == node
    assert build_plugin(registry, "backend", {"name": "served"}, path="backend", inject={"model": node}).model is None
    assert build_plugin(registry, "backend", {"name": "served", "model": "qwen"}, path="backend", inject={"model": node}).model == "qwen"
