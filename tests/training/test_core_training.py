"""``evalkit.training``: generation evaluation over any backend, and a Lightning plugin that
needs no transformers.

The backends here are not HF: a small in-test object that follows ``evalkit.types.Backend``
and the replay backend built through the registry. Every number is checked against the
independent reference in ``_reference.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from evalkit.factory import build_plugin
from evalkit.registry import default_registry
from evalkit.training import GenerationEval
from evalkit.types import Result

from ._reference import tool_f1_micro

REPO = Path(__file__).resolve().parents[2]
QUERIES = ["运费多少钱？", "要17.5米的车吗？", "hello", "boom", "平板车能拉吗？", "down"]


def as_calls(text: str) -> list[dict[str, str]]:
    if text == "boom":
        raise RuntimeError("a parser bug")  # not a ValueError: must still be a counted parse error
    return [{"toolName": text}]


class EchoBackend:
    """Answers each request with the text of its user message; ``down`` fails as a request."""

    uses_messages = True

    def __init__(self) -> None:
        self.seen: list[list[dict]] = []
        self.closed = False

    def generate(self, requests, on_result):
        for r in requests:
            self.seen.append(r.messages)
            text = r.messages[-1]["content"].removeprefix("Q: ")
            on_result(Result(index=r.index, error="HTTP 503") if text == "down" else Result(index=r.index, outputs=[text]))

    def close(self) -> None:
        self.closed = True


def _rows(labels):
    return [{"id": f"r{i}", "query": q, "label": l} for i, (q, l) in enumerate(zip(QUERIES, labels))]


def _evaluator(rows, tmp_path, **extra) -> GenerationEval:
    prompt = tmp_path / "prompt.yaml"
    prompt.write_text("system_prompt: 你是助手\nuser_prompt: 'Q: {{ query }}'\n", encoding="utf-8")
    options = {
        "data": rows,
        # a node shaped like conf/prompt/toolcall.yaml: ??? = take the file's template
        "prompt": {"file": str(prompt), "system": "???", "user": "???"},
        "parser": as_calls,
        "metrics": {"tool_f1": {"name": "tool_f1"}, "exact": {"name": "tool_exact_match"}},
        **extra,
    }
    return GenerationEval.from_config(options)


def test_generation_eval_over_an_in_test_backend(tmp_path):
    other = [{"toolName": "other"}]
    labels = [as_calls(QUERIES[0]), other, as_calls("hello"), [{"toolName": "x"}], other + other, [{"toolName": "down"}]]
    evaluator = _evaluator(_rows(labels), tmp_path)
    backend = EchoBackend()
    result = evaluator.run(backend)

    assert not backend.closed  # a backend the caller built is the caller's to close
    assert backend.seen[0] == [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "Q: 运费多少钱？"}]
    by_id = {r["id"]: r for r in result.records}
    assert [r["id"] for r in result.records] == [f"r{i}" for i in range(len(QUERIES))]
    assert by_id["r3"]["error_type"] == "parse" and by_id["r3"]["prediction"] is None and "RuntimeError" in by_id["r3"]["error"]
    assert by_id["r5"]["error_type"] == "request" and by_id["r5"]["error"] == "HTTP 503"
    # the failed request is not a prediction: left out of the metrics; the parse error scores as empty
    scored = [i for i in range(len(QUERIES)) if QUERIES[i] != "down"]
    preds = [[] if QUERIES[i] == "boom" else as_calls(QUERIES[i]) for i in scored]
    expected = tool_f1_micro(preds, [labels[i] for i in scored])
    assert result.results["tool_f1"]["micro"]["f1"] == pytest.approx(expected["f1"])
    assert result.results["tool_f1"]["micro"]["precision"] == pytest.approx(expected["precision"])
    correct = sum(p == labels[i] for p, i in zip(preds, scored))
    assert result.results["exact"]["all"] == {"correct": correct, "total": len(scored), "accuracy": pytest.approx(correct / len(scored))}
    assert [by_id[f"r{i}"]["scores"]["exact"] for i in scored] == [p == labels[i] for p, i in zip(preds, scored)]
    assert "scores" not in by_id["r5"]
    assert result.counts["num_samples"] == 6 and result.counts["num_scored"] == 5
    assert result.counts["num_parse_errors"] == 1 and result.counts["num_failed"] == 1 and result.counts["complete"] is False
    flat = result.flat(prefix="val/")
    assert flat["val/tool_f1/micro/f1"] == pytest.approx(expected["f1"]) and flat["val/generation/num_failed"] == 1.0

    out = result.write(tmp_path / "step_3", step=3)
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["step"] == 3 and saved["num_scored"] == 5 and saved["failures_by_reason"] == {"HTTP 503": 1}
    assert len((out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()) == 6


def test_failed_samples_scored_as_empty_when_asked(tmp_path):
    labels = [as_calls("x")] * len(QUERIES)
    result = _evaluator(_rows(labels), tmp_path, failed="empty", metrics={"tool_f1": {"name": "tool_f1"}}).run(EchoBackend())
    assert result.counts["num_scored"] == 6 and result.counts["num_failed"] == 1
    assert result.results["tool_f1"]["micro"]["recall"] == 0.0


def test_generation_eval_over_the_replay_backend(tmp_path):
    """Saved outputs (e.g. of a checkpoint served elsewhere) scored through the same core API."""
    outputs = {"r0": "priceCheck", "r1": "truckCheck", "r2": "nothing"}
    saved = tmp_path / "outputs.jsonl"
    saved.write_text("".join(json.dumps({"id": k, "output": v}) + "\n" for k, v in outputs.items()), encoding="utf-8")
    rows = [{"id": k, "query": "?", "label": [{"toolName": t}]} for k, t in zip(outputs, ["priceCheck", "loadTime", "nothing"])]
    evaluator = GenerationEval(data=rows, parser=lambda text: [{"toolName": text}], metrics={"tool_f1": {"name": "tool_f1"}})
    backend = build_plugin(default_registry(), "backend", {"name": "replay", "path": str(saved)}, path="backend")
    result = evaluator.run(backend)
    expected = tool_f1_micro([[{"toolName": t}] for t in outputs.values()], [r["label"] for r in rows])
    assert [r["output"] for r in result.records] == list(outputs.values())
    assert result.results["tool_f1"]["micro"]["f1"] == pytest.approx(expected["f1"])
    assert "messages" not in result.records[0]  # replay needs no prompt, and these rows have no messages


def test_run_rejects_what_is_not_a_backend(tmp_path):
    from evalkit.errors import ConfigError

    evaluator = _evaluator(_rows([as_calls("x")] * len(QUERIES)), tmp_path)
    with pytest.raises(ConfigError, match="not a backend"):
        evaluator.run(object())
    with pytest.raises(ConfigError, match=r"generation_eval.backend: backend 'replay' cannot generate with a model object"):
        GenerationEval(data=[{"label": 1}], parser=None, backend="replay").backend_for(object(), object())


def test_option_errors_name_the_generation_eval_key(tmp_path):
    from evalkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"generation_eval.generation.top_p"):
        GenerationEval(data=[{"label": 1}], parser=None, generation={"top_p": 2.0})
    with pytest.raises(ConfigError, match=r"generation_eval.prompt.users"):
        GenerationEval(data=[{"label": 1}], parser=None, prompt={"users": "{{ q }}"})
    with pytest.raises(ConfigError, match=r"generation_eval.generation.n"):
        GenerationEval(data=[{"label": 1}], parser=None, generation={"n": 2})


# A Lightning user without transformers: the package is made unimportable and invisible to
# importlib.metadata (so torchmetrics' optional text metrics do not try it either).
NO_TRANSFORMERS = textwrap.dedent(
    """
    import importlib.abc, importlib.metadata, sys

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "transformers":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Hide())
    _version, _distribution = importlib.metadata.version, importlib.metadata.distribution

    def version(name):
        if name.lower() == "transformers":
            raise importlib.metadata.PackageNotFoundError(name)
        return _version(name)

    def distribution(name):
        if name.lower() == "transformers":
            raise importlib.metadata.PackageNotFoundError(name)
        return _distribution(name)

    importlib.metadata.version, importlib.metadata.distribution = version, distribution
    try:
        import transformers
        raise SystemExit("transformers is still importable")
    except ModuleNotFoundError:
        pass
    """
)

LIGHTNING_WITHOUT_TRANSFORMERS = textwrap.dedent(
    """
    import torch
    import lightning.pytorch as L
    from torch.utils.data import DataLoader

    from evalkit.training import GenerationEval
    from evalkit.types import Result
    from evalkit_lightning import EvalKitCallback

    class Scores(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            return (self.w * batch["x"]).sum()

        def validation_step(self, batch, batch_idx):
            return {"preds": batch["x"] + self.w, "target": batch["y"]}

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    x = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]])
    y = torch.tensor([[0.5, 0.7, 0.3], [0.9, -100.0, 0.5]])
    data = DataLoader([{"x": x[i], "y": y[i]} for i in range(2)], batch_size=1)
    callback = EvalKitCallback(metrics={"acc": {"name": "tolerance_accuracy", "tolerance": 0.05}}, transform="sigmoid", verbose=False)
    trainer = L.Trainer(accelerator="cpu", callbacks=[callback], logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(Scores(), data, verbose=False)
    logged = {k: round(float(v), 6) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}

    class Echo:
        def generate(self, requests, on_result):
            for r in requests:
                on_result(Result(index=r.index, outputs=[r.messages[-1]["content"]]))

        def close(self):
            pass

    gen = GenerationEval(data=[{"q": "a", "label": [{"toolName": "a"}]}, {"q": "b", "label": [{"toolName": "c"}]}],
                         prompt={"user": "{{ q }}"}, parser=lambda t: [{"toolName": t}], metrics={"f1": {"name": "tool_f1"}})
    f1 = gen.run(Echo()).results["f1"]["micro"]["f1"]
    bad = sorted(m for m in sys.modules if m.split(".")[0] == "transformers")
    print(json.dumps({"logged": logged, "f1": f1, "transformers": bad}))
    """
)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(REPO))


def test_importing_the_lightning_plugin_imports_no_transformers():
    proc = _python("import evalkit_lightning, sys; assert 'transformers' not in sys.modules")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _python("import evalkit.training, evalkit_lightning.routes, sys; bad = [m for m in ('transformers', 'torch') if m in sys.modules]; assert not bad, bad")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_lightning_metrics_and_core_generation_eval_work_without_transformers():
    proc = _python("import json, sys\n" + NO_TRANSFORMERS + LIGHTNING_WITHOUT_TRANSFORMERS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["transformers"] == []
    # sigmoid(x) vs y, scored positions only: sample 1 (0.5, 0.731, 0.269) vs (0.5, 0.7, 0.3); sample 2 (0.881, 0.5) vs (0.9, 0.5)
    assert out["logged"]["val/acc/accuracy"] == pytest.approx((2 / 3 + 2 / 2) / 2, abs=1e-6)
    assert out["f1"] == pytest.approx(0.5)


def _imported_modules(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_training_plugins_import_only_the_core_and_their_own_package():
    files = {path: "evalkit_lightning" for path in (REPO / "plugins" / "evalkit_lightning").glob("*.py")}
    files[REPO / "plugins" / "evalkit_hf" / "trainer.py"] = "evalkit_hf"
    for path, own in files.items():
        for name in _imported_modules(path):
            top = name.split(".")[0]
            assert name != "evalkit.pipeline" and not name.startswith("evalkit.pipeline."), f"{path.name} imports {name}"
            assert not top.startswith("evalkit_") or top == own, f"{path.name} imports another plugin: {name}"
            assert top != "transformers" or own == "evalkit_hf", f"{path.name} imports {name}"
