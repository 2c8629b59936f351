"""Hook implementations of the reward domain plugin (factories imported lazily, so listing
plugins never imports torch)."""

from __future__ import annotations

from evalkit import hookimpl

LABEL_FORMATS = {"preference": "evalkit_reward.label_format:PreferenceFormat"}
METRICS = {
    "pairwise": "evalkit_reward.metrics:PairwiseAccuracy",
    "pairwise_calibration": "evalkit_reward.metrics:PairwiseCalibration",
    "rewardbench": "evalkit_reward.metrics:RewardBenchScore",
    "best_of_n": "evalkit_reward.metrics:BestOfN",
    "ranking": "evalkit_reward.metrics:RankingAccuracy",
    "score_regression": "evalkit_reward.metrics:ScoreRegression",
}
HEADS = {
    "reward": "evalkit_reward.heads:RewardHead",
    "dpo": "evalkit_reward.heads:DPOHead",
    "judge": "evalkit_reward.judge:JudgeHead",
}
REPORTS = {"reward": "evalkit_reward.report:RewardReport"}
CALLBACKS = {"reward_dpo": "evalkit_reward.training:ImplicitRewardCallback"}


def _register_all(table: dict[str, str], register) -> None:
    for name, target in table.items():
        register(name, target)


@hookimpl
def evalkit_register_label_formats(register):
    _register_all(LABEL_FORMATS, register)


@hookimpl
def evalkit_register_metrics(register):
    _register_all(METRICS, register)


@hookimpl
def evalkit_register_heads(register):
    _register_all(HEADS, register)


@hookimpl
def evalkit_register_reports(register):
    _register_all(REPORTS, register)


@hookimpl
def evalkit_register_callbacks(register):
    _register_all(CALLBACKS, register)
