"""Every metric evalkit_metrics registers builds from its name, through the real registry."""

from __future__ import annotations

import subprocess
import sys

import pytest
from torchmetrics import Metric

from evalkit.pipeline import build_plugin
from evalkit.registry import default_registry
from evalkit_metrics.plugin import METRICS

EXAMPLE_OPTIONS = {
    "tool_f1": {"level": "param", "include_negative": True, "composite_keys": {"truckCheck": ["truckType", "value"]}},
    "tool_exact_match": {},
    "tolerance_accuracy": {"tolerance": 0.05, "average": "token", "ignore_index": -100},
    "token_accuracy": {"shift": False, "average": "token"},
}


def test_every_registered_metric_has_an_example():
    assert set(METRICS) == set(EXAMPLE_OPTIONS)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_builds_from_its_name(name):
    registry = default_registry()
    entry = registry.get("metric", name)
    assert entry.provider.endswith("metrics") or "evalkit_metrics" in entry.provider
    metric = entry.factory()
    assert isinstance(metric, Metric)
    assert metric.higher_is_better is True and metric.is_differentiable is False and metric.full_state_update is False
    # the way the pipeline builds it from a config node, options validated
    configured = build_plugin(registry, "metric", {"name": name, **EXAMPLE_OPTIONS[name]}, path=f"metrics.{name}")
    assert type(configured) is type(metric)


def test_listing_the_plugin_imports_no_torch():
    code = "import sys, evalkit_metrics, evalkit_metrics.plugin; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names():
    import evalkit_metrics
    from evalkit_metrics import TokenAccuracy, ToleranceAccuracy, ToolCallExactMatch, ToolCallF1
    from evalkit_metrics.functional import token_accuracy, tolerance_accuracy, tool_call_exact_match, tool_call_f1

    assert all(issubclass(c, Metric) for c in (TokenAccuracy, ToleranceAccuracy, ToolCallExactMatch, ToolCallF1))
    assert all(callable(f) for f in (token_accuracy, tolerance_accuracy, tool_call_exact_match, tool_call_f1))
    assert set(evalkit_metrics.__all__) >= {"ToolCallF1", "ToolCallExactMatch", "ToleranceAccuracy", "TokenAccuracy"}
    with pytest.raises(AttributeError):
        evalkit_metrics.NoSuchMetric  # noqa: B018


@pytest.mark.parametrize(
    "node,where",
    [
        ({"name": "tool_f1", "levl": "param"}, "metrics.m.levl"),
        ({"name": "tool_f1", "level": "tool"}, "metrics.m.level"),
        ({"name": "tool_f1", "level": "param", "composite_keys": {"truckCheck": ["truckType"]}}, "metrics.m"),
        ({"name": "tolerance_accuracy", "tolerance": "ten percent"}, "metrics.m.tolerance"),
        ({"name": "token_accuracy", "average": "macro"}, "metrics.m.average"),
    ],
)
def test_bad_options_are_config_errors_naming_the_key(node, where):
    from evalkit.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        build_plugin(default_registry(), "metric", node, path="metrics.m")
    assert info.value.where == where
