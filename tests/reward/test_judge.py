"""The pairwise judge (``head=judge``) with position swapping, over the real API backend talking
to the loopback OpenAI-compatible stub server.

The stub answers with whatever follows the last ``#expect:`` marker of the conversation. Each
response carries a marker, and the judge prompt puts response B last, so in the first request
(chosen as A) the *rejected* response's marker is the answer, and in the swapped request the
*chosen* one's. Four kinds of pairs follow: a judge that prefers the chosen response in both
orders, one that prefers the rejected response in both, one that always says "A" (position
bias: a tie), and one whose answer holds no verdict (a tie).
"""

from __future__ import annotations

import pytest

from evalkit.types import Request, Result
from evalkit_api.backend import ApiBackend
from evalkit_reward.functional import pairwise_accuracy
from evalkit_reward.judge import JudgeHead
from evalkit_reward.label_format import PreferenceFormat
from tests.servers.openai_stub import StubServer

# (marker in chosen, marker in rejected) -> expected (chosen, rejected) score
CASES = {
    "correct": ("[[B]]", "[[A]]", (1.0, 0.0)),
    "wrong": ("[[A]]", "[[B]]", (0.0, 1.0)),
    "position": ("[[A]]", "[[A]]", (0.5, 0.5)),
    "unreadable": ("no idea", "no idea", (0.5, 0.5)),
}
KINDS = ["correct", "correct", "wrong", "position", "correct", "unreadable", "wrong", "correct", "position", "correct"]


def _rows() -> list[dict]:
    fmt = PreferenceFormat()
    rows = []
    for i, kind in enumerate(KINDS):
        c, r, _ = CASES[kind]
        raw = {"system": "你是物流助手" if i % 2 else "", "history": [["运价多少?", "每公里三元"]] if i % 3 == 0 else [],
               "question": f"问题 {i}: 上海到北京的冷藏车明天能发货吗?",
               "response_chosen": f"chosen-{i}: 可以, 明天发货。\n#expect: {c}", "response_rejected": f"rejected-{i}: 不知道。\n#expect: {r}"}
        rows.append(fmt.convert(raw, f"judge:{i + 1}"))
    return rows


def test_verdicts_are_read_and_swaps_combined():
    head = JudgeHead()
    assert [head.parse(t) for t in ("```json\n[[B]]\n```", "B", "Response A.", "first [[A]], on reflection [[ b ]]", "neither", None)] == ["B", "B", "A", "B", None, None]
    assert head.combine("A", "B")["chosen"] == 1.0 and head.combine("B", "A")["rejected"] == 1.0
    assert head.combine("A", "A")["consistent"] is False and head.combine(None, "B")["chosen"] == 0.5


def test_api_backend_as_a_position_swapped_judge():
    rows = _rows()
    requests = [Request(index=i, id=f"p{i}", row=r, where=f"judge:{i + 1}") for i, r in enumerate(rows)]
    out: dict[int, Result] = {}
    with StubServer(model="judge", latency=0.01) as server:
        backend = ApiBackend(base_url=server.base_url, model="judge", concurrency=4)
        try:
            JudgeHead().judge(backend, requests, lambda res: out.__setitem__(res.index, res))
        finally:
            backend.close()
        stats = server.stats()
    assert sorted(out) == list(range(len(rows))) and all(out[i].ok for i in out), [out[i].error for i in out]
    for i, kind in enumerate(KINDS):
        pred = out[i].prediction
        assert (pred["chosen"], pred["rejected"]) == CASES[kind][2], (kind, pred)
        assert pred["consistent"] == (kind in ("correct", "wrong"))
        assert out[i].usage["prompt_tokens"] > 0
    # both orders reached the server, once each: chosen as A in one, as B in the other
    assert stats["total"] == 2 * len(rows) and set(stats["received"].values()) == {1}
    users = [b["messages"][-1]["content"] for b in stats["bodies"].values()]
    for i in range(len(rows)):
        mine = [u for u in users if f"chosen-{i}:" in u]
        assert len(mine) == 2
        slots = sorted("A" if u.index(f"chosen-{i}:") < u.index(f"rejected-{i}:") else "B" for u in mine)
        assert slots == ["A", "B"]
        assert all(u.index("[Response A]") < u.index("[Response B]") for u in mine)
    # the pairwise metric: strict wins over all pairs, ties apart, as an independent count
    got = pairwise_accuracy([out[i].prediction for i in range(len(rows))], [r["label"] for r in rows])
    assert got["accuracy"] == pytest.approx(KINDS.count("correct") / len(KINDS))
    assert got["ties"] == KINDS.count("position") + KINDS.count("unreadable")
    half = pairwise_accuracy([out[i].prediction for i in range(len(rows))], [r["label"] for r in rows], ties="half")
    assert half["accuracy"] == pytest.approx((KINDS.count("correct") + 0.5 * got["ties"]) / len(KINDS))


def test_a_failed_half_fails_its_sample_and_other_rows_are_refused():
    rows = _rows()[:2]
    ranked = PreferenceFormat().convert({"input": "q", "choices": [{"text": "a", "rank": 1}, {"text": "b", "rank": 2}, {"text": "c", "rank": 3}]}, "r:1")

    def generate(requests, on_result):  # the second order of the first pair fails after its retries
        for r in reversed(requests):
            fail = r.id == "0#ba"
            on_result(Result(index=r.index, error="HTTP 500 after 3 attempts") if fail else Result(index=r.index, outputs=["[[A]]"]))

    out: dict[int, Result] = {}
    reqs = [Request(index=i, id=i, row=r) for i, r in enumerate([*rows, ranked])]
    JudgeHead().score_generations(generate, reqs, lambda res: out.__setitem__(res.index, res))
    assert "judge request failed: HTTP 500" in out[0].error
    assert out[1].ok and out[1].prediction["verdicts"] == ["A", "A"]
    assert "compares pairs" in out[2].error


def test_reward_judge_experiment_from_the_command_line(tmp_path):
    """``evalkit +experiment=reward_judge`` over the loopback stub: every pair is asked in both
    orders; the stub's answers hold no verdict for the shipped pairs, so every pair is a tie."""
    import json

    from tests.conftest import run_cli

    with StubServer(model="m") as server:
        proc = run_cli(
            ["+experiment=reward_judge", f"backend.base_url={server.base_url}", "backend.model=m", f"cache.dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'run'}"],
            timeout=300,
        )
        stats = server.stats()
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["pairwise"]["total"] == 24 and metrics["pairwise"]["ties"] == 24
    assert stats["total"] == 48  # each pair twice: chosen as A, then as B
