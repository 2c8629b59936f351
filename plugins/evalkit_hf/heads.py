"""Heads: what the model's last layer produces, and how it becomes a per-sample prediction.

A head is a small object with a ``mode``:

* ``"generate"`` — text comes out of ``generate`` and a parser reads it (:class:`LMHead`,
  the default; the replay and API backends use it too, so this module imports no torch at
  import time);
* ``"score"`` — the backend runs one teacher-forced forward pass and hands the head what it
  ``wants`` (``"logits"`` of the causal LM, or the base model's final ``"hidden_states"``,
  i.e. after the final norm, where the LM head sits). The head turns that into one value per
  token; the backend slices each sample's own positions out of the padded batch.

Score heads also say what a valid label is (:meth:`label_check`), so bad rows are rejected
before any forward pass, and load their own weights in :meth:`bind`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from evalkit.errors import BackendError
from evalkit.heads import LMHead  # noqa: F401 - re-exported (the core owns the lm head)

from evalkit.labels import LabelCheck, score_label_check

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from evalkit_hf.checkpoint import Checkpoint


class AcceptHead:
    """LLaMA-Factory's AcceptHead: ``Linear(H -> 1)`` on the final hidden states -> ``[B, T]``
    logits -> sigmoid -> a score in 0..1 per token.

    Weights come from ``path`` (a safetensors file with ``weight`` [1, H] and optionally
    ``bias`` [1]) when given, else from the checkpoint's ``{weight_key}.weight`` /
    ``{weight_key}.bias`` — the LM head replaced by the regression head, as LLaMA-Factory saves
    it. ``sigmoid=false`` returns the raw logits (pair it with the metric's ``from_logits``).
    Labels are floats in ``[0, 1]``, or ``ignore_index`` / null where a position is not scored.
    """

    mode = "score"
    wants = "hidden_states"

    def __init__(
        self,
        path: str | None = None,
        weight_key: str = "lm_head",
        sigmoid: bool = True,
        input_key: str = "input_ids",
        labels_key: str = "labels",
        ignore_index: int = -100,
    ) -> None:
        self.path = path
        self.weight_key = weight_key
        self.sigmoid = sigmoid
        self.input_key = input_key
        self.labels_key = labels_key
        self.ignore_index = ignore_index
        self.weight: "torch.Tensor | None" = None  # [H], float32
        self.bias: "torch.Tensor | None" = None  # [] , float32
        self.source = ""

    def label_check(self, vocab_size: int | None) -> LabelCheck:
        return score_label_check(self.ignore_index)

    # -- weights -------------------------------------------------------------------------
    def bind(self, checkpoint: "Checkpoint", *, hidden_size: int, device: Any) -> None:
        """Load and check the head's weights; a wrong shape names the file and both shapes."""
        import torch

        if self.path:
            weight, bias, source = self._from_file(hidden_size)
        else:
            weight, bias, source = self._from_checkpoint(checkpoint, hidden_size)
        self.weight = weight.reshape(-1).to(device=device, dtype=torch.float32)
        self.bias = (bias.reshape(()) if bias is not None else torch.zeros(())).to(device=device, dtype=torch.float32)
        self.source = source

    def _from_file(self, hidden_size: int) -> tuple["torch.Tensor", "torch.Tensor | None", str]:
        from evalkit.paths import resolve_path

        file = Path(resolve_path(self.path or ""))
        if not file.is_file():
            raise BackendError("AcceptHead weights file not found", where=f"head.path={file}", fix="give a safetensors file with 'weight' [1, H] and optional 'bias' [1]")
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(file), framework="pt") as fh:
                names = set(fh.keys())
                if "weight" not in names:
                    raise BackendError(
                        f"no 'weight' tensor in {file.name} (found: {', '.join(sorted(names)) or 'nothing'})",
                        where=f"head.path={file}",
                        fix="save the head as safetensors with keys 'weight' [1, H] and 'bias' [1]",
                    )
                weight = fh.get_tensor("weight")
                bias = fh.get_tensor("bias") if "bias" in names else None
        except SafetensorError as exc:
            raise BackendError(f"not a readable safetensors file ({exc})", where=f"head.path={file}") from None
        self._check_shapes(weight, bias, hidden_size, where=f"head.path={file}", names=("weight", "bias"))
        return weight, bias, str(file)

    def _from_checkpoint(self, checkpoint: "Checkpoint", hidden_size: int) -> tuple["torch.Tensor", "torch.Tensor | None", str]:
        w_name, b_name = f"{self.weight_key}.weight", f"{self.weight_key}.bias"
        tensors = checkpoint.load_tensors([w_name, b_name])
        if w_name not in tensors:
            tied = checkpoint.config().get("tie_word_embeddings")
            hint = " (the checkpoint ties its LM head to the embeddings, so it has no head of its own)" if tied else ""
            raise BackendError(
                f"no AcceptHead weights: the checkpoint has no '{w_name}'{hint} and head.path is not set",
                where=f"model.path={checkpoint.path}",
                fix=f"use a checkpoint whose {w_name} is the [1, {hidden_size}] regression head, or set head.path=/path/to/head.safetensors",
            )
        weight, bias = tensors[w_name], tensors.get(b_name)
        self._check_shapes(weight, bias, hidden_size, where=f"model.path={checkpoint.path}", names=(w_name, b_name))
        return weight, bias, f"{checkpoint.path}:{w_name}"

    @staticmethod
    def _check_shapes(weight: "torch.Tensor", bias: "torch.Tensor | None", hidden_size: int, *, where: str, names: tuple[str, str]) -> None:
        shape = list(weight.shape)
        if shape not in ([1, hidden_size], [hidden_size]):
            looks_like_lm = len(shape) == 2 and shape[0] > 1 and shape[1] == hidden_size
            hint = " — this is a language-model head over the vocabulary, not an AcceptHead" if looks_like_lm else ""
            raise BackendError(
                f"{names[0]} has shape {shape}, expected [1, {hidden_size}] (Linear(hidden_size={hidden_size} -> 1)){hint}",
                where=where,
                fix="use the AcceptHead checkpoint (or head.path) trained for this base model, or head=lm for a language model",
            )
        if bias is not None and bias.numel() != 1:
            raise BackendError(f"{names[1]} has shape {list(bias.shape)}, expected [1]", where=where)

    # -- forward -------------------------------------------------------------------------
    def __call__(self, hidden: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
        """``[B, T, H]`` final hidden states -> ``[B, T]`` scores (float32)."""
        if self.weight is None or self.bias is None:
            raise RuntimeError("AcceptHead.bind() must be called before scoring")
        logits = hidden.float() @ self.weight + self.bias
        return logits.sigmoid() if self.sigmoid else logits

    def to_prediction(self, values: "torch.Tensor") -> list[float]:
        return [float(v) for v in values.tolist()]
