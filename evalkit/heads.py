"""The default head: the ordinary language-model head (a core default, so replay and API runs
need no model plugin). Score-mode details are in :class:`evalkit.types.ScoreHead`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from evalkit.errors import ConfigError
from evalkit.labels import LabelCheck, token_label_check

if TYPE_CHECKING:  # pragma: no cover
    import torch


class LMHead:
    """The ordinary language-model head.

    ``mode="generate"`` (default): generation produces text, which a parser reads.
    ``mode="score"``: a teacher-forced pass over ``input_ids`` returns the argmax token id at
    every position — the prediction for the *next* token. Rows carry ``labels`` in
    LLaMA-Factory's SFT format (the token ids, -100 outside the response); the metric
    (``token_accuracy``) applies the causal shift, comparing prediction ``t`` with label ``t+1``.
    """

    wants = "logits"

    def __init__(
        self,
        mode: Literal["generate", "score"] = "generate",
        input_key: str = "input_ids",
        labels_key: str = "labels",
        ignore_index: int = -100,
    ) -> None:
        if mode not in ("generate", "score"):
            raise ConfigError(f"mode must be 'generate' or 'score', got {mode!r}", where="head.mode")
        self.mode = mode
        self.input_key = input_key
        self.labels_key = labels_key
        self.ignore_index = ignore_index

    def label_check(self, vocab_size: int | None) -> LabelCheck:
        return token_label_check(vocab_size, self.ignore_index)

    def bind(self, checkpoint: Any, *, hidden_size: int, device: Any) -> None:
        """Nothing to load: the causal LM's own head produces the logits."""

    def __call__(self, logits: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
        return logits.argmax(dim=-1)

    def to_prediction(self, values: "torch.Tensor") -> list[int]:
        return [int(v) for v in values.tolist()]
