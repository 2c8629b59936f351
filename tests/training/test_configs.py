"""The callback from configs: lightning-hydra-template style (``_target_`` nodes composed from
``pkg://evalkit.conf``) and evalkit style (``{name: lightning}`` through the registry)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import pytest

from evalkit.errors import ConfigError
from evalkit.registry import default_registry
from evalkit_lightning import EvalKitCallback, instantiate_callbacks


def _template_app(tmp_path):
    """The shape of a lightning-hydra-template project: train.yaml + a callbacks group."""
    (tmp_path / "callbacks").mkdir(parents=True)
    (tmp_path / "callbacks" / "default.yaml").write_text(
        "defaults:\n  - early_stopping\n  - _self_\n", encoding="utf-8"
    )
    (tmp_path / "callbacks" / "early_stopping.yaml").write_text(
        "early_stopping:\n  _target_: lightning.pytorch.callbacks.EarlyStopping\n  monitor: val/accept_head/accuracy\n  mode: max\n",
        encoding="utf-8",
    )
    (tmp_path / "train.yaml").write_text(
        "defaults:\n  - callbacks: default\n  - _self_\nhydra:\n  searchpath:\n    - pkg://evalkit.conf\n", encoding="utf-8"
    )
    return tmp_path


def _compose_train(tmp_path, overrides):
    """Compose the template app's train.yaml with evalkit's config package on the search path."""
    from hydra import compose, initialize_config_dir

    app = _template_app(tmp_path / "configs")
    with initialize_config_dir(config_dir=str(app), version_base="1.3"):
        return compose("train", overrides=overrides)


def test_template_users_compose_the_shipped_callback_configs(tmp_path):
    from hydra.utils import instantiate

    data = tmp_path / "val.jsonl"
    data.write_text(json.dumps({"id": 1, "query": "运费？", "label": [{"toolName": "priceCheck"}]}, ensure_ascii=False) + "\n", encoding="utf-8")
    prompt = resources.files("evalkit.demo").joinpath("toolcall", "prompt.yaml")
    cfg = _compose_train(
        tmp_path,
        [
            "callbacks=[default,evalkit_accept_head,evalkit_toolcall]",
            f"callbacks.evalkit_toolcall.generation_eval.data={data}",
            f"callbacks.evalkit_toolcall.generation_eval.prompt.file={prompt}",
            "callbacks.evalkit_accept_head.metrics.accept_head.tolerance=0.05",
        ],
    )
    callbacks = {key: instantiate(node) for key, node in cfg.callbacks.items()}
    accept, toolcall = callbacks["evalkit_accept_head"], callbacks["evalkit_toolcall"]
    assert isinstance(accept, EvalKitCallback) and isinstance(toolcall, EvalKitCallback)
    assert type(callbacks["early_stopping"]).__name__ == "EarlyStopping"
    assert accept.routes["accept_head"].metric.tolerance == 0.05 and accept.routes["accept_head"].transform == "sigmoid"
    assert sorted(toolcall.generation.metrics) == ["tool_call_errors", "tool_exact_match", "tool_f1", "tool_param_f1"]
    assert toolcall.every_n_train_steps == 500 and not toolcall.generate_at_validation_end
    assert toolcall.generation.samples[0].label == [{"toolName": "priceCheck"}]
    assert accept.state_key != toolcall.state_key


def test_registry_style_nodes_and_key_paths_in_errors():
    assert "lightning" in default_registry().names("callback")
    node = {
        "checkpoint": {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint", "monitor": "val/accept_head/accuracy", "mode": "max"},
        "evalkit": {"name": "lightning", "metrics": {"accept_head": {"name": "tolerance_accuracy"}}, "transform": "sigmoid"},
    }
    checkpoint, evalkit = instantiate_callbacks(node)
    assert type(checkpoint).__name__ == "ModelCheckpoint" and isinstance(evalkit, EvalKitCallback)
    with pytest.raises(ConfigError) as err:
        instantiate_callbacks({"evalkit": {"name": "lightning", "metrics": {"a": {"name": "tolerance_accuracy"}}, "every_n_step": 5}})
    assert "callbacks.evalkit.every_n_step" in str(err.value) and "every_n_train_steps" in str(err.value)
    with pytest.raises(ConfigError, match=r"callbacks.evalkit.generation_eval.batch_sizes"):
        instantiate_callbacks({"evalkit": {"name": "lightning", "generation_eval": {"data": [{"label": 1}], "batch_sizes": 2}}}, path="callbacks")


def test_listing_plugins_does_not_import_lightning_or_torch():
    code = (
        "import sys, evalkit_lightning.plugin, evalkit_lightning;"
        "from evalkit.registry import default_registry;"
        "assert 'lightning' in default_registry().names('callback');"
        "bad = [m for m in ('torch', 'lightning', 'transformers') if m in sys.modules];"
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _compose_evalkit(overrides):
    from hydra import compose, initialize_config_module

    from evalkit.resolvers import install_hydra_integration

    install_hydra_integration()
    with initialize_config_module(config_module="evalkit.conf", version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def test_callback_configs_compose_the_experiments_metric_nodes(tmp_path):
    """The callbacks' metrics come from conf/metrics/, so training logs the numbers the
    offline experiments compute (value-filtered composite keys included)."""
    from omegaconf import OmegaConf

    cfg = _compose_train(tmp_path, ["callbacks=[default,evalkit_accept_head,evalkit_toolcall]"])
    callbacks = OmegaConf.to_container(cfg.callbacks, resolve=False)
    toolcall = OmegaConf.to_container(_compose_evalkit(["+experiment=toolcall"]), resolve=True)
    accept = OmegaConf.to_container(_compose_evalkit(["+experiment=accepthead"]), resolve=True)
    gen = callbacks["evalkit_toolcall"]["generation_eval"]
    # resolved against the training config (which has no `tools` node): the same nodes
    gen["metrics"] = OmegaConf.to_container(cfg.callbacks.evalkit_toolcall.generation_eval.metrics, resolve=True)
    assert gen["metrics"] == toolcall["metrics"]
    assert gen["metrics"]["tool_param_f1"]["composite_keys"]["truckCheck"] == {"fields": ["truckType", "value"], "values": ["车长", "车型"]}
    assert gen["parser"] == toolcall["parser"]
    assert gen["generation"]["max_new_tokens"] == 256 and gen["generation"]["temperature"] == 0.0
    assert callbacks["evalkit_accept_head"]["metrics"] == accept["metrics"]
    assert "_target_" not in gen["metrics"] and callbacks["evalkit_toolcall"]["_target_"] == "evalkit_lightning.EvalKitCallback"


def test_toolcall_callback_builds_the_experiments_metrics_and_prompt_options(tmp_path):
    from hydra.utils import instantiate

    data = tmp_path / "val.jsonl"
    data.write_text(json.dumps({"id": 1, "当前query": "运费？", "label": [{"toolName": "priceCheck"}]}, ensure_ascii=False) + "\n", encoding="utf-8")
    prompt = tmp_path / "prompt.yaml"
    prompt.write_text("system_prompt: '问题: {{ query }}'\n", encoding="utf-8")  # the seed's layout: the user text under system_prompt
    cfg = _compose_train(
        tmp_path,
        [
            "callbacks=[default,evalkit_toolcall]",
            f"callbacks.evalkit_toolcall.generation_eval.data={data}",
            f"callbacks.evalkit_toolcall.generation_eval.prompt.file={prompt}",
            "+callbacks.evalkit_toolcall.generation_eval.prompt.vars.query='当前query'",
            "+callbacks.evalkit_toolcall.generation_eval.prompt.from_file={system: null, user: system_prompt}",
        ],
    )
    evaluator = instantiate(cfg.callbacks.evalkit_toolcall).generation
    assert evaluator.messages(evaluator.samples[0]) == [{"role": "user", "content": "问题: 运费？"}]
    composite = evaluator.metrics["tool_param_f1"].composite_keys
    assert composite["priceCheck"] == (("priceType", "value", ("到车价", "总价")),)


def test_a_prompt_node_from_conf_prompt_renders_as_the_pipeline_renders_it(tmp_path):
    """conf/prompt/toolcall.yaml keeps `system: ???` / `user: ???` ("take the file's"): reused in
    a callback it gives the messages an `evalkit +experiment=toolcall` run sends, not '???'."""
    from omegaconf import OmegaConf

    from evalkit.pipeline import Pipeline

    cfg = _compose_evalkit(["+experiment=toolcall"])
    node = OmegaConf.create({"evalkit": {"name": "lightning", "generation_eval": {"data": cfg.data.path, "label_format": "tool_calls", "limit": 3}}})
    node.evalkit.generation_eval.prompt = cfg.prompt  # file: ${demo:...}, system: ???, user: ???
    node.evalkit.generation_eval.metrics = cfg.metrics
    (callback,) = instantiate_callbacks(node)
    expected = Pipeline(cfg, tmp_path).make_prompts()
    samples = callback.generation.samples
    assert samples and all(callback.generation.messages(s) == expected.render(s) for s in samples)
    assert all("???" not in m["content"] for s in samples for m in callback.generation.messages(s))
