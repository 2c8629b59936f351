"""Tiny, offline, deterministic chat checkpoints for tests, benchmarks and the shipped demo.

Why: tests must load a *real* model through the same code paths users hit (``AutoTokenizer``,
``AutoModelForCausalLM``, chat templates, safetensors) without ever touching a model hub.
``build_tiny_chat_model`` trains a byte-level BPE tokenizer in-process on a small built-in
Chinese + English + JSON corpus, wraps it with pad/eos tokens and a Qwen-style chat template
(``enable_thinking`` supported), builds a randomly initialised model from a config and saves
everything (float32 safetensors) to a directory. A seed fixes the bytes.

Two choices make comparison tests meaningful: embeddings are untied and ``initializer_range``
is raised, so greedy outputs depend on the whole input instead of repeating the last token.
With ``accept_head=True`` the LM head is replaced by a ``Linear(H -> 1)`` regression head before
saving — exactly what a LLaMA-Factory AcceptHead checkpoint looks like (``lm_head.weight`` of
shape ``[1, H]`` plus ``lm_head.bias`` of shape ``[1]``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>")
PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"

# Qwen-style ChatML template. `enable_thinking=false` pre-fills an empty think block, as Qwen3's
# template does, so the model answers directly.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] if message['content'] is string else message['content'] | tojson) + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)

# A small mixed corpus: enough byte pairs for ~500 merges across Chinese, English and JSON.
_CORPUS = (
    "请帮我查询从上海到北京的货车运价，车型是9.6米厢式货车。",
    "好的，我来为您调用价格查询工具。运价大约是每公里三元。",
    "用户想知道明天的天气情况，以及是否适合运输生鲜货物。",
    "模型的回答需要包含工具名称和参数列表，参数要完整准确。",
    "评估指标包括精确率、召回率、F1 值以及容差准确率。",
    "这是一个用于测试的小模型，权重是随机初始化的。",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please evaluate the fine-tuned model on the validation set and report accuracy.",
    "Greedy decoding picks the most likely token at every step of generation.",
    "Left padding keeps the last prompt token next to the first generated token.",
    "The accept head predicts a score between zero and one for every position.",
    "Tool calls are parsed from the model output and compared with the labels.",
    '{"toolName": "priceCheck", "paramList": {"priceType": "truck", "value": "9.6"}}',
    '{"toolName": "truckCheck", "paramList": {"truckType": "van", "value": 42}}',
    '{"label": [{"toolName": "weather", "paramList": {"city": "上海", "date": "2024-05-01"}}]}',
    '[{"id": 1, "input_ids": [12, 345, 67], "labels": [-100, 0.5, 0.25]}]',
    "def evaluate(model, data):\n    return {\"accuracy\": 0.875, \"mae\": 0.031}\n",
    "0123456789 3.14159 2.71828 100% 42 -100 0.01 0.1 true false null",
    "<think>先分析用户的需求，再决定调用哪个工具。</think>好的。",
)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' progress bars ("Writing model shards", "Loading weights") and its
    load report for a block, restoring the previous settings: they are noise in test logs and
    in evalkit's own progress (an AcceptHead checkpoint loaded as a base model *expects* its
    ``lm_head`` tensors to be reported as unused — evalkit reads them itself)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()


def _portable_tokenizer_class(out: Path) -> None:
    """transformers 5 writes ``TokenizersBackend``, which 4.x (and tools pinned to it) cannot
    resolve; ``PreTrainedTokenizerFast`` loads the same tokenizer in both."""
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if cfg.get("tokenizer_class") == "TokenizersBackend":
        cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _corpus(repeat: int = 4) -> list[str]:
    return [line for _ in range(repeat) for line in _CORPUS]


def build_tokenizer(vocab_size: int = 512):
    """Train a byte-level BPE tokenizer in-process and wrap it as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in (PAD_TOKEN, EOS_TOKEN)],
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_chat_model(
    path: str | Path,
    *,
    model_type: str = "qwen3",
    hidden_size: int = 64,
    num_attention_heads: int = 2,
    num_key_value_heads: int | None = None,
    num_hidden_layers: int = 2,
    intermediate_size: int | None = None,
    vocab_size: int = 512,
    tie_word_embeddings: bool = False,
    seed: int = 0,
    accept_head: bool = False,
    initializer_range: float = 0.2,
    max_position_embeddings: int = 2048,
) -> Path:
    """Build and save a tiny random chat model (float32 safetensors) + tokenizer to ``path``.

    Deterministic for a given ``seed`` and arguments. ``model_type`` is any architecture
    ``AutoConfig.for_model`` knows with the usual Llama-like fields (``qwen3``, ``qwen2``,
    ``llama``). With ``accept_head=True`` the saved ``lm_head`` is a ``Linear(H, 1)`` with bias.
    Returns ``path`` as a :class:`~pathlib.Path`.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(vocab_size)
    real_vocab = len(tokenizer)
    if real_vocab > vocab_size:
        raise ValueError(f"tokenizer has {real_vocab} tokens, more than vocab_size={vocab_size}")
    kv_heads = num_key_value_heads or num_attention_heads
    config = AutoConfig.for_model(
        model_type,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 2 * hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden_size // num_attention_heads,
        max_position_embeddings=max_position_embeddings,
        initializer_range=initializer_range,
        tie_word_embeddings=tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        torch_dtype="float32",
    )
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.bos_token_id = None
        # Greedy by default, so `model.generate(...)` without arguments is the reference.
        model.generation_config.do_sample = False
        if accept_head:
            head = torch.nn.Linear(hidden_size, 1, bias=True)
            torch.nn.init.normal_(head.weight, std=1.0 / hidden_size**0.5)
            torch.nn.init.normal_(head.bias, std=0.5)
            model.lm_head = head
    finally:
        torch.random.set_rng_state(state)
    model.eval()
    with quiet_transformers():
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _portable_tokenizer_class(out)
    for file in out.iterdir():
        if file.is_file():
            file.chmod(0o644)  # safetensors writes 0600; shipped demo files must be readable by all
    if accept_head:
        # Record how the head was replaced, as LLaMA-Factory's checkpoints do in spirit: a
        # reader (or a human) can tell this is not a language model any more.
        meta = {"head": "accept_head", "lm_head.weight": [1, hidden_size], "lm_head.bias": [1]}
        (out / "evalkit_head.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out
