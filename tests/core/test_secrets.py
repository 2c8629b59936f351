"""Secrets never reach the run dir's config dumps."""

from __future__ import annotations

from evalkit.secrets import env_secret, redact_run_dir, redact_text


def test_secret_looking_keys_are_redacted_but_names_of_env_vars_kept():
    text = "backend:\n  api_key: sk-live-123\n  api_key_env: OPENAI_API_KEY\n  max_new_tokens: 512\n- +backend.api_key=sk-live-123\n"
    clean = redact_text(text)
    assert "sk-live-123" not in clean
    assert "api_key_env: OPENAI_API_KEY" in clean and "max_new_tokens: 512" in clean


def test_registered_env_values_are_scrubbed_from_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "zz-very-secret-value")
    assert env_secret("MY_TEST_KEY") == "zz-very-secret-value"
    hydra_dir = tmp_path / ".hydra"
    hydra_dir.mkdir()
    (hydra_dir / "overrides.yaml").write_text("- +backend.headers.X=zz-very-secret-value\n")
    (tmp_path / "run.log").write_text("sent with zz-very-secret-value\n")
    redact_run_dir(tmp_path)
    for path in (hydra_dir / "overrides.yaml", tmp_path / "run.log"):
        assert "zz-very-secret-value" not in path.read_text()


def test_authorization_values_are_redacted_whole():
    clean = redact_text("- +backend.headers.Authorization=Bearer sk-abc123\nAuthorization: Bearer sk-abc123\n")
    assert "sk-abc123" not in clean and "Bearer" not in clean


def test_only_keys_ending_in_a_secret_word_are_redacted():
    text = "tokenizer: null\nmax_new_tokens: 8\nhf_token: hf_abc\nclient_secret: xyz\n"
    clean = redact_text(text)
    assert "tokenizer: null" in clean and "max_new_tokens: 8" in clean
    assert "hf_abc" not in clean and "xyz" not in clean
    import yaml

    assert yaml.safe_load(clean)["hf_token"] == "<redacted>"


def test_a_mapping_key_ending_in_token_keeps_its_nested_block():
    text = "metrics:\n  accept_head_token:\n    name: tolerance_accuracy\n"
    assert redact_text(text) == text


def test_json_quotes_survive_redaction():
    import json

    text = json.dumps({"overrides": ["+backend.headers.Authorization=Bearer sk-1", "+backend.api_key=sk-2", "x=1"]})
    clean = redact_text(text)
    data = json.loads(clean)  # still valid JSON
    assert "sk-1" not in clean and "sk-2" not in clean and data["overrides"][2] == "x=1"
