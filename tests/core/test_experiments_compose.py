"""Every shipped experiment composes (lightning-hydra-template style config tests)."""

from __future__ import annotations

from importlib import resources

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from evalkit.resolvers import install_hydra_integration

EXPERIMENTS = sorted(p.name[: -len(".yaml")] for p in resources.files("evalkit.conf").joinpath("experiment").iterdir() if p.name.endswith(".yaml"))


def compose_with(overrides):
    install_hydra_integration()
    with initialize_config_module(config_module="evalkit.conf", version_base="1.3"):
        return compose(config_name="config", overrides=overrides, return_hydra_config=False)


def test_there_are_experiments():
    assert "toolcall" in EXPERIMENTS


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_resolves(name):
    cfg = compose_with([f"+experiment={name}"])
    data = OmegaConf.to_container(cfg, resolve=True)
    assert data["backend"]["name"]
    assert isinstance(data["metrics"], dict) and data["metrics"], f"{name} defines no metrics"
    for key, node in data["metrics"].items():
        assert node.get("name"), f"metrics.{key} has no name"


def test_toolcall_metric_keys_and_demo_paths():
    cfg = OmegaConf.to_container(compose_with(["+experiment=toolcall"]), resolve=True)
    assert set(cfg["metrics"]) == {"tool_f1", "tool_param_f1", "tool_exact_match", "tool_call_errors"}
    assert cfg["metrics"]["tool_param_f1"]["composite_keys"]["truckCheck"] == {"fields": ["truckType", "value"], "values": ["车长", "车型"]}
    assert cfg["data"]["path"].endswith("toolcall/data.jsonl")
    assert resources.files("evalkit.demo").joinpath("toolcall", "data.jsonl").is_file()


def test_backend_swap_keeps_experiment_differences():
    cfg = OmegaConf.to_container(compose_with(["+experiment=toolcall", "backend=replay", "backend.path=x.jsonl"]), resolve=True)
    assert cfg["backend"] == {"name": "replay", "path": "x.jsonl", "id_key": "id", "match": "auto"}
    assert set(cfg["metrics"]) == {"tool_f1", "tool_param_f1", "tool_exact_match", "tool_call_errors"}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_plugin_an_experiment_selects_builds_through_the_registry(name):
    """Not only composes: each selected plugin's factory accepts its options (the backend and the
    label format are validated without loading a model or reading data)."""
    from evalkit.factory import build_plugin, check_plugin_options
    from evalkit.records import make_parser
    from evalkit.registry import default_registry
    from evalkit.schema import check_top_level, split_section

    cfg = compose_with([f"+experiment={name}"])
    data = OmegaConf.to_container(cfg, resolve=True)
    registry = default_registry()
    check_top_level(cfg)
    check_plugin_options(registry, "backend", data["backend"], path="backend")
    head = build_plugin(registry, "head", data["head"], path="head")
    assert getattr(head, "mode", None) in ("generate", "score")
    make_parser(registry, data.get("parser"))
    for key, node in data["metrics"].items():
        metric = build_plugin(registry, "metric", node, path=f"metrics.{key}")
        assert callable(metric.update) and callable(metric.compute)
    core, extra = split_section("data", data["data"])
    if core.get("label_format", "any") != "any":
        check_plugin_options(registry, "label_format", {"name": core["label_format"], **extra}, path="data")


def test_core_sections_are_structured_configs_in_the_config_store():
    from hydra.core.config_store import ConfigStore

    install_hydra_integration()
    repo = ConfigStore.instance().repo
    assert {"run.yaml", "data.yaml", "cache.yaml", "prompt.yaml", "report.yaml"} <= set(repo["schema"])
