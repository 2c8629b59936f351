"""Launcher configs compose: joblib for local parallel jobs, submitit for Slurm clusters."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

from evalkit.resolvers import install_hydra_integration


@pytest.mark.parametrize("launcher, target", [
    ("joblib", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
    ("submitit_slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
    ("submitit_local", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"),
])
def test_launcher_composes(launcher, target):
    install_hydra_integration()
    with initialize_config_module(config_module="evalkit.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["+experiment=toolcall", f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == target
    assert cfg.hydra.callbacks.sweep_summary._target_ == "evalkit.sweep.SweepSummary"
