"""evalkit's reward domain: preference data, reward-model and DPO/KTO scorers, pairwise
metrics and reports (see docs/reward.md).

Public names are imported on first use, so ``import evalkit_reward`` stays cheap::

    from evalkit_reward import PairwiseAccuracy, pairwise_accuracy, reward_compute_metrics
"""

from __future__ import annotations

from evalkit.lazy import lazy_exports

_EXPORTS = {
    "PairwiseAccuracy": "evalkit_reward.metrics",
    "PairwiseCalibration": "evalkit_reward.metrics",
    "RewardBenchScore": "evalkit_reward.metrics",
    "BestOfN": "evalkit_reward.metrics",
    "RankingAccuracy": "evalkit_reward.metrics",
    "ScoreRegression": "evalkit_reward.metrics",
    "pairwise_accuracy": "evalkit_reward.functional",
    "pairwise_from_scores": "evalkit_reward.functional",
    "pairwise_calibration": "evalkit_reward.functional",
    "rewardbench_sections": "evalkit_reward.functional",
    "best_of_n": "evalkit_reward.functional",
    "ranking": "evalkit_reward.functional",
    "score_regression": "evalkit_reward.functional",
    "PreferenceFormat": "evalkit_reward.label_format",
    "RewardHead": "evalkit_reward.heads",
    "DPOHead": "evalkit_reward.heads",
    "JudgeHead": "evalkit_reward.judge",
    "reward_compute_metrics": "evalkit_reward.training",
    "ImplicitRewardCallback": "evalkit_reward.training",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
