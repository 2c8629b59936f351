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
    assert set(cfg["metrics"]) == {"tool_f1", "tool_param_f1", "tool_exact_match"}
    assert cfg["metrics"]["tool_param_f1"]["composite_keys"]["truckCheck"] == ["truckType", "value"]
    assert cfg["data"]["path"].endswith("toolcall/data.jsonl")
    assert resources.files("evalkit.demo").joinpath("toolcall", "data.jsonl").is_file()


def test_backend_swap_keeps_experiment_differences():
    cfg = OmegaConf.to_container(compose_with(["+experiment=toolcall", "backend=replay", "backend.path=x.jsonl"]), resolve=True)
    assert cfg["backend"] == {"name": "replay", "path": "x.jsonl", "id_key": "id", "match": "auto"}
    assert set(cfg["metrics"]) == {"tool_f1", "tool_param_f1", "tool_exact_match"}
