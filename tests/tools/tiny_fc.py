"""A tiny function-calling chat model, built and taught offline in a few seconds.

The tiny chat checkpoint of :mod:`evalkit_hf.tiny` gets a Qwen-style template that renders
``tools`` (a ``# Tools`` system block listing each tool as JSON) and is then over-fitted on two
conversations that differ *only* in the offered tool: offered ``get_weather`` it answers
``<tool_call>{"name": "get_weather", ...}</tool_call>``, offered ``get_time`` it calls that.
So a backend run proves both halves: the tools reached the prompt (the answer names the offered
tool) and the hermes text comes back as calls. ``<tool_call>`` tokens are made non-special, as
in Qwen's tokenizer, so decoding with ``skip_special_tokens`` keeps them.
"""

from __future__ import annotations

import json
from pathlib import Path

TOOLS_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n# Tools\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools><|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
QUESTION = "What should I know?"


def tool(name: str, param: str) -> dict:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {param: {"type": "string"}}}}}


WEATHER, TIME = tool("get_weather", "city"), tool("get_time", "tz")
ANSWERS = {"get_weather": {"city": "Paris"}, "get_time": {"tz": "CET"}}


def answer(name: str) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": ANSWERS[name]}) + "</tool_call>"


def rows() -> list[dict]:
    """Two evalkit rows: the same question, a different tool offered, that tool's call as label."""
    return [
        {"id": name, "messages": [{"role": "user", "content": QUESTION}], "tools": [spec], "label": [{"toolName": name, "paramList": ANSWERS[name]}]}
        for name, spec in (("get_weather", WEATHER), ("get_time", TIME))
    ]


def _non_special_tool_tags(out: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json"):
        path = out / name
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data.get("added_tokens") or list((data.get("added_tokens_decoder") or {}).values())
        for entry in entries:
            if entry.get("content") in ("<tool_call>", "</tool_call>"):
                entry["special"] = False
        extra = data.get("additional_special_tokens") or data.get("extra_special_tokens")
        if isinstance(extra, list):
            key = "additional_special_tokens" if "additional_special_tokens" in data else "extra_special_tokens"
            data[key] = [t for t in extra if t not in ("<tool_call>", "</tool_call>")]
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def build_tiny_fc_model(path: str | Path, steps: int = 60) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evalkit_hf.tiny import build_tiny_chat_model, quiet_transformers

    out = build_tiny_chat_model(path, hidden_size=64, num_attention_heads=2, seed=3)
    (out / "chat_template.jinja").write_text(TOOLS_TEMPLATE, encoding="utf-8")
    _non_special_tool_tags(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(0)
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    sequences, starts = [], []
    for row in rows():
        prompt = tokenizer.apply_chat_template(row["messages"], tools=row["tools"], tokenize=False, add_generation_prompt=True)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(answer(row["id"]) + "<|im_end|>", add_special_tokens=False)["input_ids"]
        sequences.append(prompt_ids + target_ids)
        starts.append(len(prompt_ids))
    width = max(len(s) for s in sequences)
    ids = torch.tensor([s + [tokenizer.pad_token_id] * (width - len(s)) for s in sequences])
    labels = torch.full_like(ids, -100)
    for i, (seq, start) in enumerate(zip(sequences, starts)):
        labels[i, start : len(seq)] = ids[i, start : len(seq)]
    mask = (labels != -100) | (torch.arange(width)[None, :] < torch.tensor(starts)[:, None])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):  # right padding: pad positions sit after every scored token
        loss = model(input_ids=ids, attention_mask=mask.long(), labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with quiet_transformers():
        model.save_pretrained(out)
    return out
