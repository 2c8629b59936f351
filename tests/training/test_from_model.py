"""``HFBackend.from_model``: a training run's model generates with the code of ``backend=hf``
and is handed back as it was (modes, padding side, KV-cache setting, random streams)."""

from __future__ import annotations

import torch

from evalkit.types import GenerationConfig, Request

QUERIES = ["你好", "运费多少钱？", "hello there friend", "a", "The quick brown fox jumps over the lazy dog."]


def _requests() -> list[Request]:
    return [Request(index=i, id=i, messages=[{"role": "user", "content": q}]) for i, q in enumerate(QUERIES)]


def _generate(backend) -> list[list[str]]:
    out: dict[int, list[str]] = {}
    backend.generate(_requests(), lambda r: out.__setitem__(r.index, r.outputs))
    return [out[i] for i in range(len(QUERIES))]


def test_from_model_generates_what_backend_hf_generates(tiny_lm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evalkit_hf.backend import HFBackend
    from evalkit_hf.tiny import quiet_transformers

    gen = GenerationConfig(max_new_tokens=6)
    loaded = HFBackend(model={"path": str(tiny_lm_dir)}, device="cpu", batch_size=3, generation=gen)
    reference = _generate(loaded)
    loaded.close()

    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(str(tiny_lm_dir), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_lm_dir))
    model.train()
    frozen = model.model.layers[0].mlp
    frozen.eval()
    model.generation_config.use_cache = False  # as gradient checkpointing leaves it
    assert tokenizer.padding_side == "right"
    seen: list[tuple[bool, bool, str]] = []
    model.register_forward_pre_hook(lambda mod, args: seen.append((mod.training, torch.is_grad_enabled(), tokenizer.padding_side)))

    backend = HFBackend.from_model(model, tokenizer, generation=gen, batch_size=3)
    assert isinstance(backend, HFBackend) and backend.cache is None
    assert _generate(backend) == reference
    assert seen and all(s == (False, False, "left") for s in seen)
    assert model.training and not frozen.training and tokenizer.padding_side == "right"
    assert model.generation_config.use_cache is False and torch.is_grad_enabled()

    rng = torch.get_rng_state()
    sampled = HFBackend.from_model(model, tokenizer, generation=GenerationConfig(max_new_tokens=4, temperature=0.8, seed=3), batch_size=5)
    assert len(_generate(sampled)) == len(QUERIES)
    assert torch.equal(torch.get_rng_state(), rng)  # sampling did not advance the training run's stream
    backend.close()
    assert model.training  # closing drops the reference only; the model stays the caller's
