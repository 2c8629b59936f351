"""run.log redaction hides secrets and keeps the words around them; evalkit-plugins shows how
long each plugin took to import."""

from __future__ import annotations

import json

import pytest

from evalkit.secrets import REDACTED, redact_text
from tests.output.conftest import run80


@pytest.mark.parametrize(
    "line, secret, kept",
    [
        ("Authorization: Bearer sk-abc123 was rejected (401), retrying", "sk-abc123", "was rejected (401), retrying"),
        ("api_key=sk-live-9 for model qwen", "sk-live-9", "for model qwen"),
        ('headers {"Authorization": "Bearer sk-1", "X-Trace": "t1"}', "sk-1", '"X-Trace": "t1"'),
        ("{'api_key': 'sk-2', 'model': 'qwen'}", "sk-2", "'model': 'qwen'"),
        ("hf_token: hf_abcdef and then some words", "hf_abcdef", "and then some words"),
        # how Hydra writes a swept override whose value has a space: escaped, or quoted
        ("+backend.headers.Authorization=Bearer\\ sk-swept-1 x=1", "sk-swept-1", " x=1"),
        ("+backend.headers.Authorization='Bearer sk-swept-2' x=1", "sk-swept-2", " x=1"),
    ],
)
def test_secrets_are_hidden_and_the_following_words_kept(line, secret, kept):
    clean = redact_text(line)
    assert secret not in clean and REDACTED in clean
    assert kept in clean
    assert "Bearer" not in clean


@pytest.mark.parametrize("line", ["api_key: null", "secret: missing, set OPENAI_API_KEY", "api_key_env: OPENAI_API_KEY", "max_new_tokens: 512", "token budget 512 exceeded"])
def test_lines_without_a_secret_are_left_alone(line):
    assert redact_text(line) == line


def test_plugins_command_shows_load_times():
    proc = run80(["--json"], prog="evalkit-plugins")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows and all(isinstance(r["load_s"], float) and r["load_s"] >= 0 for r in rows)
    table = run80([], prog="evalkit-plugins")
    assert table.returncode == 0, table.stderr
    assert "load" in table.stdout and " ms" in table.stdout and "plugins imported in" in table.stdout
    assert "import heavy libraries" in table.stdout
