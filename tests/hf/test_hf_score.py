"""Score mode in-process: token accuracy through the lm head, row checks, head weights and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from evalkit.errors import BackendError, DataError, MissingDependencyError
from evalkit.pipeline import Pipeline
from evalkit.types import Request
from tests.hf import _reference as ref


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_pipeline(tmp_path: Path, model_dir: Path, rows: list[dict], *, head: dict, metrics: dict | None = None, backend: dict | None = None):
    data = _write_jsonl(tmp_path / "data.jsonl", rows)
    cfg = OmegaConf.create(
        {
            "backend": {"name": "hf", "device": "cpu", "batch_size": 3, **(backend or {})},
            "model": {"path": str(model_dir)},
            "head": head,
            "parser": {"name": "none"},
            "metrics": metrics or {},
            "data": {"path": str(data), "id_key": "id", "label_key": "labels"},
            "prompt": None,
            "generation": {},
            "cache": {"enabled": False},
            "run": {"resume": False},
        }
    )
    return Pipeline(cfg, tmp_path / "run", show_progress=False).run()


# -- TokenAccuracy through the lm head (score mode) --------------------------------------------


def test_lm_scores_in_position_chunks_equal_full_logits(tiny_lm_dir, tmp_path, monkeypatch):
    """The head sees the logits a few positions at a time (memory), with identical results."""
    import evalkit_hf.backend as hf_backend

    rng = np.random.default_rng(3)
    ids = [rng.integers(5, 500, size=int(n)).tolist() for n in (13, 7, 21)]
    monkeypatch.setattr(hf_backend, "LOGIT_CHUNK_ELEMENTS", 3 * 512 * 2)  # 2 positions per chunk
    summary = run_pipeline(tmp_path, tiny_lm_dir, [{"id": i, "input_ids": x, "labels": x} for i, x in enumerate(ids)], head={"name": "lm", "mode": "score"})
    assert [r["prediction"] for r in summary.records] == [p.tolist() for p in ref.lm_argmax(tiny_lm_dir, ids)]



def test_token_accuracy_shift_and_masking_match_reference(tiny_lm_dir, tmp_path):
    rng = np.random.default_rng(0)
    ids = [rng.integers(5, 500, size=int(n)).tolist() for n in (9, 17, 4, 25, 12)]
    argmax = ref.lm_argmax(tiny_lm_dir, ids)
    rows = []
    for i, (row_ids, pred) in enumerate(zip(ids, argmax)):
        start = len(row_ids) // 2  # prompt masked with -100, response labelled
        labels = [-100] * start + row_ids[start:]
        # Make some response labels equal to the model's next-token prediction so accuracy is
        # neither 0 nor 1, and the shift matters: label t+1 is compared with prediction t.
        for t in range(start, len(row_ids)):
            if t >= 1 and rng.random() < 0.5:
                labels[t] = int(pred[t - 1])
        rows.append({"id": i, "input_ids": row_ids, "labels": labels})
    summary = run_pipeline(
        tmp_path,
        tiny_lm_dir,
        rows,
        head={"name": "lm", "mode": "score"},
        metrics={"token_accuracy": {"name": "token_accuracy"}},
    )
    expected = ref.token_accuracy(argmax, [r["labels"] for r in rows])
    assert 0 < expected < 1
    assert summary.metrics["token_accuracy"]["accuracy"] == pytest.approx(expected, abs=1e-12)
    for record, pred in zip(summary.records, argmax):
        assert record["prediction"] == pred.tolist()
    # Without the shift the same predictions would score differently: the test can tell.
    unshifted = np.mean([np.mean(np.asarray(p)[np.asarray(r["labels"]) != -100] == np.asarray(r["labels"])[np.asarray(r["labels"]) != -100]) for p, r in zip(argmax, rows)])
    assert unshifted != pytest.approx(expected)


# -- AcceptHead weights from head.path, and weight errors ---------------------------------------


def _accept_rows() -> list[dict]:
    return [
        {"id": "a", "input_ids": [10, 20, 30, 40], "labels": [-100, 0.5, 0.9, 0.005]},
        {"id": "b", "input_ids": [7, 8], "labels": [0.3, None]},
    ]


def test_head_path_weights_replace_the_checkpoints_head(tiny_lm_dir, tmp_path):
    """A plain LM checkpoint plus a separate head file (``weight`` [1, H], ``bias`` [1])."""
    from safetensors.torch import save_file
    import torch

    gen = torch.Generator().manual_seed(5)
    weight, bias = torch.randn(1, 64, generator=gen) * 0.2, torch.tensor([0.3])
    head_file = tmp_path / "head.safetensors"
    save_file({"weight": weight, "bias": bias}, str(head_file))
    rows = _accept_rows()
    summary = run_pipeline(tmp_path, tiny_lm_dir, rows, head={"name": "accept_head", "path": str(head_file)})
    expected = ref.accept_head_scores(tiny_lm_dir, [r["input_ids"] for r in rows], weight.numpy(), bias.numpy())
    for record, score in zip(summary.records, expected):
        np.testing.assert_allclose(record["prediction"], score, atol=2e-6)


def test_lm_checkpoint_as_accept_head_names_file_and_shapes(tiny_lm_dir, tmp_path):
    with pytest.raises(BackendError) as err:
        run_pipeline(tmp_path, tiny_lm_dir, _accept_rows(), head={"name": "accept_head"})
    msg = str(err.value)
    assert "lm_head.weight has shape [512, 64], expected [1, 64]" in msg and str(tiny_lm_dir) in msg


def test_head_file_with_wrong_shape(tiny_accept_dir, tmp_path):
    import torch
    from safetensors.torch import save_file

    head_file = tmp_path / "head.safetensors"
    save_file({"weight": torch.zeros(1, 32), "bias": torch.zeros(1)}, str(head_file))
    with pytest.raises(BackendError) as err:
        run_pipeline(tmp_path, tiny_accept_dir, _accept_rows(), head={"name": "accept_head", "path": str(head_file)})
    assert "weight has shape [1, 32], expected [1, 64]" in str(err.value) and "head.safetensors" in str(err.value)


def test_tied_checkpoint_without_head_weights(tmp_path):
    from evalkit_hf.tiny import build_tiny_chat_model

    tied = build_tiny_chat_model(tmp_path / "tied", tie_word_embeddings=True)
    with pytest.raises(BackendError) as err:
        run_pipeline(tmp_path, tied, _accept_rows(), head={"name": "accept_head"})
    msg = str(err.value)
    assert "no AcceptHead weights" in msg and "lm_head.weight" in msg and "head.path" in msg


def test_accept_head_checkpoint_cannot_generate(tiny_accept_dir):
    from evalkit_hf.backend import HFBackend

    backend = HFBackend(device="cpu", model={"path": str(tiny_accept_dir)})
    with pytest.raises(BackendError, match=r"lm_head.weight has shape \[1, 64\].*head=accept_head"):
        backend.generate([Request(index=0, id=0, messages=[{"role": "user", "content": "hi"}])], lambda r: None)


# -- bad rows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, needle",
    [
        ({"id": 7, "input_ids": [1, 2, 3], "labels": [0.1, 0.2]}, "'labels' has 2 entries but 'input_ids' has 3"),
        ({"id": 7, "input_ids": [1, 2], "labels": [0.1, 1.5]}, "labels[1] = 1.5 is outside [0, 1]"),
        ({"id": 7, "input_ids": [1, 2], "labels": [-0.2, 0.5]}, "labels[0] = -0.2 is outside [0, 1]"),
        ({"id": 7, "input_ids": [1, 2], "labels": [0.1, "x"]}, "labels[1] is 'x'"),
        ({"id": 7, "input_ids": [], "labels": []}, "'input_ids' is empty"),
        ({"id": 7, "input_ids": [1, 2]}, "missing label field 'labels'"),  # caught by evalkit.data
        ({"id": 7, "input_ids": [1, 9999], "labels": [0.1, 0.2]}, "input_ids[1] = 9999 is not a token id of this model"),
        ({"id": 7, "input_ids": [1, 2.5], "labels": [0.1, 0.2]}, "input_ids[1] is 2.5"),
    ],
)
def test_bad_accept_rows(tiny_accept_dir, tmp_path, row, needle):
    rows = [{"id": 1, "input_ids": [3, 4], "labels": [0.5, -100]}, row]
    with pytest.raises(DataError) as err:
        run_pipeline(tmp_path, tiny_accept_dir, rows, head={"name": "accept_head"})
    msg = str(err.value)
    assert needle in msg, msg
    assert msg.startswith(f"{tmp_path / 'data.jsonl'}:2") and "\n" not in msg  # the row's file:line
    if "label field" not in msg:
        assert "(id=7)" in msg


def test_row_longer_than_max_length(tiny_accept_dir, tmp_path):
    rows = [{"id": "long", "input_ids": list(range(5, 25)), "labels": [0.5] * 20}]
    with pytest.raises(DataError, match="has 20 tokens, more than backend.max_length=16"):
        run_pipeline(tmp_path, tiny_accept_dir, rows, head={"name": "accept_head"}, backend={"max_length": 16})


def test_token_rows_reject_float_labels(tiny_lm_dir, tmp_path):
    rows = [{"id": "f", "input_ids": [5, 6, 7], "labels": [-100, 0.5, 6]}]
    with pytest.raises(DataError, match=r"labels\[1\] is 0.5, expected a token id"):
        run_pipeline(tmp_path, tiny_lm_dir, rows, head={"name": "lm", "mode": "score"})


# -- configuration errors -----------------------------------------------------------------------


def test_model_path_errors(tmp_path, tiny_lm_dir):
    from evalkit.errors import ConfigError
    from evalkit_hf.backend import HFBackend

    with pytest.raises(ConfigError, match="model.path"):
        HFBackend(model={"path": None})
    with pytest.raises(BackendError, match="model directory not found"):
        HFBackend(model={"path": str(tmp_path / "nope")})
    (tmp_path / "file.bin").write_text("x")
    with pytest.raises(BackendError, match="is a file"):
        HFBackend(model={"path": str(tmp_path / "file.bin")})
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors"):
        (no_tok / name).write_bytes((tiny_lm_dir / name).read_bytes())
    with pytest.raises(BackendError, match="no tokenizer"):
        HFBackend(model={"path": str(no_tok)})
    with pytest.raises(ConfigError, match="unknown option 'revison' for model"):
        HFBackend(model={"path": str(tiny_lm_dir), "revison": "main"})
    with pytest.raises(ConfigError, match="backend.device"):
        HFBackend(device="tpu", model={"path": str(tiny_lm_dir)})


def test_missing_transformers_gives_install_advice(monkeypatch, tiny_lm_dir):
    import sys

    from evalkit_hf.backend import HFBackend

    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "evalkit\[hf\]"'):
        HFBackend(model={"path": str(tiny_lm_dir)})


def test_plugin_registration_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from evalkit.registry import default_registry\n"
        "reg = default_registry()\n"
        "assert reg.get('backend', 'hf', where='x').target == 'evalkit_hf.backend:HFBackend'\n"
        "from evalkit_hf.heads import LMHead\n"
        "assert LMHead().mode == 'generate'\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_row_description_without_a_file_location():
    from evalkit_hf.rows import describe

    assert describe(Request(index=6, id=7)) == "row id=7 (index 6)"
    assert describe(Request(index=6, id=7, where="val.jsonl:7")) == "val.jsonl:7 (id=7)"
