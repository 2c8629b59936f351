"""Regenerate the synthetic tool-call demo shipped in evalkit/demo/toolcall/.

Freight-dispatch conversations in the style of seed 002 (a shipper talks to a dispatcher bot;
the model must emit the tools to call as ``{"label": [{"toolName", "paramList"}]}``), plus
saved model outputs in the shapes real models produce: ``<think>`` sections, fenced json
blocks, bare trailing JSON, wrong tools and unparseable text.
Deterministic: ``python scripts/build_toolcall_demo.py`` rewrites identical files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "evalkit" / "demo" / "toolcall"

CITIES = ["上海", "苏州", "杭州", "南京", "合肥", "武汉", "郑州", "成都"]
GOODS = ["钢材", "家具", "建材", "日用百货", "机械配件", "冷冻食品"]
LENGTHS = ["4.2米", "6.8米", "9.6米", "13米", "17.5米"]
TYPES = ["平板", "高栏", "厢式", "冷藏"]

PROMPT = {
    "system_prompt": (
        "你是货运平台的调度助手。根据历史对话、货源信息和司机的当前问题，判断需要调用哪些工具。\n"
        "可用工具：priceCheck(priceType: 到车价|总价, value)、truckCheck(truckType: 车长|车型, value)、"
        "loadTimeCheck(time)、orderManagementCheck(action)、settlementMethod()。\n"
        '只输出 JSON：{"label": [{"toolName": "...", "paramList": {...}}]}；不需要工具时输出 {"label": []}。'
    ),
    "user_prompt": (
        "历史对话：{{ history | tojson }}\n"
        "货源信息：{{ cargo_info | default(none) | tojson }}\n"
        "当前query：{{ query | tojson }}"
    ),
}


def _prompt_yaml() -> str:
    """Block-style YAML, as a person would write the prompt file."""

    def block(text: str) -> str:
        return "\n".join("  " + line for line in text.splitlines())

    return (
        "# Prompt templates (Jinja2). Row fields are variables; `tojson` keeps Chinese readable.\n"
        f"system_prompt: |\n{block(PROMPT['system_prompt'])}\n"
        f"user_prompt: |\n{block(PROMPT['user_prompt'])}\n"
    )


def make_row(i: int, rng: random.Random) -> dict:
    src, dst = rng.sample(CITIES, 2)
    length, ttype = rng.choice(LENGTHS), rng.choice(TYPES)
    price = rng.choice([1800, 2300, 3500, 4200, 5600])
    cargo = {"出发地": src, "目的地": dst, "货物": rng.choice(GOODS), "车长": length, "车型": ttype, "运费": f"{price}元"}
    kind = i % 8
    history = [f"司机：你好，{src}到{dst}的货还在吗？", "客服：在的，请问有什么可以帮您？"]
    if kind == 0:
        query, label = "运费多少钱？", [{"toolName": "priceCheck", "paramList": {"priceType": "总价", "value": f"{price}元"}}]
    elif kind == 1:
        query, label = f"要{length}的车吗？", [{"toolName": "truckCheck", "paramList": {"truckType": "车长", "value": length}}]
    elif kind == 2:
        query = f"{ttype}车能拉吗？到车价多少？"
        label = [
            {"toolName": "truckCheck", "paramList": {"truckType": "车型", "value": ttype}},
            {"toolName": "priceCheck", "paramList": {"priceType": "到车价", "value": f"{price - 300}元"}},
        ]
    elif kind == 3:
        query, label = "几点装货？", [{"toolName": "loadTimeCheck", "paramList": {"time": rng.choice(["今天下午", "明天上午", "后天"])}}]
    elif kind == 4:
        query, label = "好的，谢谢。", []
    elif kind == 5:
        query, label = "怎么结算？", [{"toolName": "settlementMethod"}]
    elif kind == 6:
        query = "我不拉了，帮我取消订单，顺便问下运费。"
        label = [
            {"toolName": "orderManagementCheck", "paramList": {"action": "取消"}},
            {"toolName": "priceCheck", "paramList": {"priceType": "总价", "value": f"{price}元"}},
        ]
    else:
        query = f"{length}和{ttype}都行吗？"
        label = [
            {"toolName": "truckCheck", "paramList": {"truckType": "车长", "value": length}},
            {"toolName": "truckCheck", "paramList": {"truckType": "车型", "value": ttype}},
        ]
    row = {"id": f"demo-{i:03d}", "url": f"https://example.com/chat/{1000 + i}", "history": history, "query": query, "label": label}
    if kind != 4:
        row["cargo_info"] = cargo
    return row


def make_output(row: dict, rng: random.Random) -> str | None:
    label = json.loads(json.dumps(row["label"], ensure_ascii=False))
    roll = rng.random()
    if roll < 0.12 and label:  # a wrong parameter value
        call = label[0]
        if call.get("paramList"):
            key = next(iter(call["paramList"]))
            call["paramList"][key] = "未知"
    elif roll < 0.2 and label:  # a forgotten tool
        label = label[:-1]
    elif roll < 0.25:  # a spurious extra tool
        label = label + [{"toolName": "settlementMethod"}]
    body = json.dumps({"label": label}, ensure_ascii=False)
    style = rng.random()
    if style < 0.05:
        return "抱歉，我无法确定需要调用的工具。"
    if style < 0.35:
        return f"<think>\n司机问的是：{row['query']}。需要确认相关工具。\n</think>\n\n{body}"
    if style < 0.7:
        return f"根据对话，需要调用以下工具：\n```json\n{json.dumps({'label': label}, ensure_ascii=False, indent=2)}\n```"
    return f"分析完毕。\n\n{body}"


def main() -> None:
    rng = random.Random(2026)
    OUT.mkdir(parents=True, exist_ok=True)
    rows = [make_row(i, rng) for i in range(48)]
    with (OUT / "data.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (OUT / "outputs.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({"id": row["id"], "output": make_output(row, rng)}, ensure_ascii=False) + "\n")
    (OUT / "prompt.yaml").write_text(_prompt_yaml(), encoding="utf-8")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
