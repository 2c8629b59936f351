"""A local checkpoint directory: what the ``model`` config node names, checked before loading.

Why a module of its own: every failure here is a user mistake with a one-line fix (a wrong
``model.path``, a checkpoint saved without its tokenizer, an AcceptHead checkpoint used for
generation), and finding it by reading file names and safetensors headers takes milliseconds,
while letting ``from_pretrained`` find it costs seconds and prints a traceback. Nothing here
imports torch or transformers at module import time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from evalkit.errors import BackendError, ConfigError
from evalkit.paths import resolve_path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
MODEL_KEYS = {"path": "the checkpoint directory", "tokenizer": "a tokenizer directory (default: the checkpoint's)", "trust_remote_code": "allow custom modelling code shipped with the checkpoint"}


@dataclass(frozen=True)
class Checkpoint:
    """A validated local checkpoint (``model`` config node)."""

    path: Path
    tokenizer_path: Path
    trust_remote_code: bool = False

    @classmethod
    def from_config(cls, model: Mapping[str, Any] | None) -> "Checkpoint":
        """Validate the ``model`` node: known keys, an existing directory, weights, tokenizer."""
        model = dict(model or {})
        unknown = sorted(set(model) - set(MODEL_KEYS))
        if unknown:
            valid = ", ".join(sorted(MODEL_KEYS))
            raise ConfigError(f"unknown option '{unknown[0]}' for model; valid options: {valid}", where=f"model.{unknown[0]}", fix=f"remove it or use one of: {valid}")
        raw = model.get("path")
        if not raw:
            raise ConfigError("backend 'hf' needs a local checkpoint directory", where="model.path", fix="add model.path=/path/to/checkpoint")
        path = Path(resolve_path(raw))
        if not path.exists():
            raise BackendError("model directory not found", where=f"model.path={path}", fix="check the path; evalkit never downloads from a hub, so give a local directory")
        if not path.is_dir():
            raise BackendError("model.path is a file, expected a checkpoint directory (config.json + weights + tokenizer)", where=f"model.path={path}")
        if not (path / "config.json").is_file():
            raise BackendError("no config.json in the checkpoint directory", where=f"model.path={path}", fix="point model.path at the directory save_pretrained wrote")
        if not any((path / name).is_file() for name in WEIGHT_FILES):
            raise BackendError(f"no weights in the checkpoint directory (looked for {', '.join(WEIGHT_FILES)})", where=f"model.path={path}")
        tok_raw = model.get("tokenizer")
        tokenizer_path = Path(resolve_path(tok_raw)) if tok_raw else path
        if not tokenizer_path.is_dir() or not any((tokenizer_path / name).is_file() for name in TOKENIZER_FILES):
            where = "model.tokenizer" if tok_raw else "model.path"
            raise BackendError(
                f"no tokenizer in {tokenizer_path} (looked for {', '.join(TOKENIZER_FILES)})",
                where=f"{where}={tokenizer_path}",
                fix="save the tokenizer next to the weights (tokenizer.save_pretrained) or set model.tokenizer=/path/to/tokenizer",
            )
        trust = model.get("trust_remote_code", False)
        if not isinstance(trust, bool):
            raise ConfigError(f"expected true or false, got {trust!r}", where="model.trust_remote_code")
        return cls(path=path, tokenizer_path=tokenizer_path, trust_remote_code=trust)

    # -- reading tensors without loading the model -------------------------------------
    def weight_files(self) -> dict[str, Path]:
        """Tensor name -> file holding it (sharded or single-file checkpoints)."""
        for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
            index = self.path / index_name
            if index.is_file():
                weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
                return {name: self.path / file for name, file in weight_map.items()}
        for name in ("model.safetensors", "pytorch_model.bin"):
            file = self.path / name
            if file.is_file():
                return {tensor: file for tensor in _tensor_names(file)}
        return {}

    def tensor_shape(self, name: str) -> tuple[int, ...] | None:
        """Shape of one stored tensor, read from the file header (None when absent)."""
        files = self.weight_files()
        file = files.get(name)
        if file is None:
            return None
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as fh:
                return tuple(fh.get_slice(name).get_shape())
        return tuple(_load_bin(file)[name].shape)

    def load_tensors(self, names: list[str]) -> dict[str, Any]:
        """Load the named tensors (those present) as CPU torch tensors."""
        files = self.weight_files()
        found: dict[str, Any] = {}
        for name in names:
            file = files.get(name)
            if file is None:
                continue
            if file.suffix == ".safetensors":
                from safetensors import safe_open

                with safe_open(str(file), framework="pt") as fh:
                    found[name] = fh.get_tensor(name)
            else:
                found[name] = _load_bin(file)[name]
        return found

    def fingerprint(self) -> str:
        """Sizes and modification times of config and weight files (cheap, no hashing)."""
        parts = []
        for file in sorted(self.path.iterdir()):
            if file.is_file() and (file.name == "config.json" or file.suffix in (".safetensors", ".bin")):
                stat = file.stat()
                parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
        return ";".join(parts)

    def config(self) -> dict[str, Any]:
        return json.loads((self.path / "config.json").read_text(encoding="utf-8"))


def _tensor_names(file: Path) -> list[str]:
    if file.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(file), framework="pt") as fh:
            return list(fh.keys())
    return list(_load_bin(file))


def _load_bin(file: Path) -> dict[str, Any]:
    import torch

    return torch.load(str(file), map_location="cpu", weights_only=True)
