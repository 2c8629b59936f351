"""Batched generation through backend=hf against per-sample `model.generate` on tiny real models."""

from __future__ import annotations

import functools
import json

import pytest

from evalkit.cache import ResponseCache
from evalkit.types import GenerationConfig, Request, Result
from tests.conftest import read_jsonl
from tests.hf._cli import BackgroundRuns

PROMPTS = [
    "hi",
    "请帮我查询从上海到北京的货车运价，车型是9.6米厢式货车。",
    "The quick brown fox jumps over the lazy dog near the river bank, then it runs.",
    '{"toolName": "priceCheck"}',
    "a b c",
    "评估指标包括精确率、召回率",
    "Greedy decoding picks the most likely token at every step.",
]


def _requests(prompts=PROMPTS):
    return [Request(index=i, id=f"p{i}", messages=[{"role": "user", "content": p}]) for i, p in enumerate(prompts)]


def _run(backend, requests):
    results: dict[int, Result] = {}

    def on_result(result: Result) -> None:
        assert result.index not in results, "one result per request"
        results[result.index] = result

    backend.generate(requests, on_result)
    assert set(results) == {r.index for r in requests}
    return results


def _backend(model_dir, **kwargs):
    from evalkit_hf.backend import HFBackend

    generation = kwargs.pop("generation", GenerationConfig(max_new_tokens=16))
    return HFBackend(device="cpu", model={"path": str(model_dir)}, generation=generation, **kwargs)


def reference_outputs(model_dir, prompts, max_new_tokens=16, **template_kwargs):
    """Plain transformers, one prompt at a time, no padding: the definition of greedy output."""
    return list(_reference(str(model_dir), tuple(prompts), max_new_tokens, tuple(sorted(template_kwargs.items()))))


@functools.lru_cache(maxsize=None)
def _reference(model_dir, prompts, max_new_tokens, template_items):
    template_kwargs = dict(template_items)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    outputs = []
    for prompt in prompts:
        text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True, **template_kwargs)
        enc = tok(text, add_special_tokens=False, return_tensors="pt")
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
        outputs.append(tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True))
    return outputs


@pytest.fixture(scope="module")
def cli_generate(tiny_lm_dir, tmp_path_factory):
    """A generate-mode run through the CLI, started now and checked by the last test."""
    tmp = tmp_path_factory.mktemp("gen_cli")
    runs = BackgroundRuns(tmp / "logs")
    runs.start(
        "toolcall",
        [
            "+experiment=toolcall",
            "backend=hf",
            f"model.path={tiny_lm_dir}",
            "backend.device=cpu",
            "backend.batch_size=2",
            "backend.chat_template_kwargs.enable_thinking=false",
            "generation.max_new_tokens=8",
            "data.limit=3",
            "cache.enabled=false",
            f"hydra.run.dir={tmp / 'run'}",
        ],
        cwd=tmp,
    )
    yield runs, tmp / "run"
    runs.close()


@pytest.mark.parametrize("model_fixture", ["tiny_lm_dir", "tiny_llama_dir"])
def test_batched_greedy_equals_per_sample_generate(request, model_fixture, cli_generate):
    model_dir = request.getfixturevalue(model_fixture)
    backend = _backend(model_dir, batch_size=3)
    results = _run(backend, _requests())
    expected = reference_outputs(model_dir, PROMPTS)
    assert [results[i].outputs for i in range(len(PROMPTS))] == [[e] for e in expected]
    assert len(set(expected)) == len(expected), "outputs must depend on the prompt for this test to mean something"
    usage = results[1].usage
    assert usage["prompt_tokens"] > results[0].usage["prompt_tokens"] and 0 < usage["completion_tokens"] <= 16


def test_padding_side_is_restored_and_right_padding_would_be_wrong(tiny_lm_dir):
    import torch

    backend = _backend(tiny_lm_dir, batch_size=4)
    tok = backend.tokenizer
    tok.padding_side = "right"
    results = _run(backend, _requests())
    assert tok.padding_side == "right"
    # What seed 001 warns about: the same batch, right-padded, gives different greedy text.
    model = backend.load_model("causal_lm")
    texts = [backend.render(r) for r in _requests()]
    enc = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=16, do_sample=False)
    right = [tok.decode(row[enc["input_ids"].shape[1] :], skip_special_tokens=True) for row in out]
    assert right != [results[i].outputs[0] for i in range(len(PROMPTS))]


def test_padding_side_restored_when_generation_fails(tiny_lm_dir):
    from evalkit_hf.padding import left_padding

    backend = _backend(tiny_lm_dir)
    tok = backend.tokenizer
    tok.padding_side = "right"
    with pytest.raises(RuntimeError):
        with left_padding(tok):
            assert tok.padding_side == "left"
            raise RuntimeError("boom")
    assert tok.padding_side == "right"


def test_stop_strings_end_and_are_trimmed(tiny_lm_dir):
    import re

    full = reference_outputs(tiny_lm_dir, PROMPTS)
    # Stop strings taken from inside the greedy outputs (two ASCII letters after the start).
    stop = tuple(dict.fromkeys(m.group(0) for text in full for m in [re.search(r"(?<=..)[a-z]{2}", text, re.S)] if m))
    assert len(stop) >= 3
    backend = _backend(tiny_lm_dir, batch_size=3, generation=GenerationConfig(max_new_tokens=16, stop=stop))
    results = _run(backend, _requests())
    stopped = 0
    for i, text in enumerate(full):
        cut = min([text.find(s) for s in stop if s in text] or [len(text)])
        assert results[i].outputs == [text[:cut]]
        stopped += cut < len(text)
        if cut < len(text):  # generation really ended early (padding after it is not counted)
            assert results[i].usage["completion_tokens"] < 16
    assert stopped >= 3


def test_n_samples(tiny_lm_dir):
    greedy = _run(_backend(tiny_lm_dir, generation=GenerationConfig(max_new_tokens=8, n=3)), _requests(PROMPTS[:2]))
    assert all(len(set(r.outputs)) == 1 and len(r.outputs) == 3 for r in greedy.values())
    sampling = GenerationConfig(max_new_tokens=8, n=3, temperature=1.0, top_k=50, top_p=0.95, seed=11)
    first = _run(_backend(tiny_lm_dir, generation=sampling), _requests(PROMPTS[:2]))
    again = _run(_backend(tiny_lm_dir, generation=sampling), _requests(PROMPTS[:2]))
    assert {i: r.outputs for i, r in first.items()} == {i: r.outputs for i, r in again.items()}  # seeded
    assert all(len(r.outputs) == 3 for r in first.values())
    assert any(len(set(r.outputs)) > 1 for r in first.values())


def test_response_cache_serves_a_rerun_without_loading_the_model(tiny_lm_dir, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    first = _run(_backend(tiny_lm_dir, cache=cache), _requests(PROMPTS[:4]))
    assert not any(r.cached for r in first.values()) and len(cache) == 4
    backend = _backend(tiny_lm_dir, cache=cache)
    second = _run(backend, _requests(PROMPTS[:4]))
    assert all(r.cached for r in second.values())
    assert {i: r.outputs for i, r in first.items()} == {i: r.outputs for i, r in second.items()}
    assert backend._models == {}  # nothing to generate, so no weights were loaded
    # A different template variable renders a different prompt: a cache miss.
    third = _run(_backend(tiny_lm_dir, cache=cache, chat_template_kwargs={"enable_thinking": False}), _requests(PROMPTS[:1]))
    assert not third[0].cached
    cache.close()


def test_template_kwargs_and_template_override(tiny_lm_dir, tmp_path):
    backend = _backend(tiny_lm_dir, chat_template_kwargs={"enable_thinking": False})
    text = backend.render(_requests()[0])
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    results = _run(backend, _requests(PROMPTS[:2]))
    assert [results[i].outputs[0] for i in range(2)] == reference_outputs(tiny_lm_dir, PROMPTS[:2], enable_thinking=False)
    template = tmp_path / "plain.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}\n{% endfor %}>>")
    assert _backend(tiny_lm_dir, chat_template=str(template)).render(_requests()[0]) == "hi\n>>"


def test_prompt_longer_than_max_length_fails_that_sample_only(tiny_lm_dir):
    results = _run(_backend(tiny_lm_dir, max_length=20), _requests(PROMPTS[:3]))
    assert results[0].ok and results[0].outputs
    assert results[2].error and "prompt too long" in results[2].error


def test_cli_generate_run_matches_reference(cli_generate, tiny_lm_dir):
    runs, run_dir = cli_generate
    proc = runs.get("toolcall")
    assert proc.returncode == 0, proc.stderr
    records = read_jsonl(run_dir / "predictions.jsonl")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(records) == 3 and metrics["num_samples"] == 3 and metrics["num_failed"] == 0
    # Outputs equal plain transformers on the exact messages the run recorded.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, dtype=torch.float32).eval()
    for record in records:
        text = tok.apply_chat_template(record["messages"], tokenize=False, add_generation_prompt=True, enable_thinking=False)
        enc = tok(text, add_special_tokens=False, return_tensors="pt")
        out = model.generate(**enc, max_new_tokens=8, do_sample=False)
        assert record["output"] == tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def test_template_error_fails_only_that_sample(tiny_lm_dir):
    template = "{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('no tool role') }}{% endif %}{{ m['content'] }}{% endfor %}"
    backend = _backend(tiny_lm_dir, chat_template=template, generation=GenerationConfig(max_new_tokens=4))
    requests = _requests(PROMPTS[:2]) + [Request(index=2, id="t", messages=[{"role": "tool", "content": "x"}])]
    results = _run(backend, requests)
    assert results[0].ok and results[1].ok
    assert "chat template" in results[2].error and "no tool role" in results[2].error


def test_generation_helpers():
    from evalkit_hf.generation import batches_by_length, cut_at_eos, trim_at_stop

    assert batches_by_length(list("abcde"), [3, 9, 1, 9, 5], 2) == [["b", "d"], ["e", "a"], ["c"]]
    assert trim_at_stop("answer</s> more", ["</s>", "more"]) == "answer"
    assert trim_at_stop("no stop here", ["###"]) == "no stop here"
    assert cut_at_eos([5, 6, 2, 7, 0, 0], [2], 0) == [5, 6]
    assert cut_at_eos([5, 6, 7, 0, 0], [2], 0) == [5, 6, 7]  # finished on a stop string, then padded
    assert cut_at_eos([5, 6, 7], [2]) == [5, 6, 7]


def test_batch_latency_is_shared_by_its_samples_not_repeated(tiny_lm_dir):
    """Each sample of a batch reports its share of the batch's time: the latencies of a run add
    up to at most the time it took (reporting the whole batch's time per sample overstated
    ``latency_s.total`` by the batch size)."""
    import time

    backend = _backend(tiny_lm_dir, batch_size=len(PROMPTS), generation=GenerationConfig(max_new_tokens=4))
    started = time.monotonic()
    results = _run(backend, _requests())
    spent = time.monotonic() - started
    latencies = [r.latency_s for r in results.values()] if isinstance(results, dict) else [r.latency_s for r in results]
    assert len(latencies) == len(PROMPTS) and all(lat > 0 for lat in latencies)
    assert sum(latencies) <= spent
