from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lmdiff.errors import LlmError
from lmdiff.llm import LlmClient, LlmConfig, redact
from lmdiff.llm.secrets import safe_url

FAKE_KEY = "sk-test-FAKEKEY-1234567890abcdef"
FAKE_TOKEN = "hf_FAKETOKEN_abcdefghijklmnop"


class Http(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


def _all_text_under(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_keys_never_reach_cache_usage_or_logs(monkeypatch, tmp_path, caplog, capsys, make_client, output):
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    caplog.set_level(logging.DEBUG)  # every logger, Inspect's included
    failed_once: set[str] = set()

    def model(input, tools, tool_choice, config):
        prompt = input[-1].text
        if prompt == "rate-limited" and prompt not in failed_once:
            failed_once.add(prompt)
            raise Http(429, f"Rate limit for key {FAKE_KEY}")
        if prompt == "unauthorized":
            raise Http(401, f"Incorrect API key provided: {FAKE_KEY}")
        if prompt == "echo":
            return output(f"your key is {FAKE_KEY} and token {FAKE_TOKEN}")
        return output("fine")

    cache_dir = tmp_path / "cache"
    client = make_client(
        model,
        cache_dir=cache_dir,
        base_url=f"https://user:{FAKE_KEY}@llm.example.com/v1?api_key={FAKE_KEY}",
        max_retries=2,
    )
    replies = client.generate_many(["hello", "rate-limited", "unauthorized", "echo"])
    assert [r.valid for r in replies] == [True, True, False, True]
    assert FAKE_KEY not in (replies[2].error or "")
    with pytest.raises(LlmError) as info:
        client.generate("unauthorized", temperature=0.5)
    assert FAKE_KEY not in str(info.value)
    client.write_usage(cache_dir / "usage.json")

    written = _all_text_under(cache_dir)
    assert written and "fine" in written
    assert FAKE_KEY not in written and FAKE_TOKEN not in written
    assert "llm.example.com" in written  # the endpoint is recorded, its credentials are not
    assert FAKE_KEY not in caplog.text and FAKE_TOKEN not in caplog.text
    assert "retry" in caplog.text  # the rate limit was logged (redacted)
    out = capsys.readouterr()
    assert FAKE_KEY not in out.out + out.err
    assert "api_key" not in LlmConfig.model_fields


def test_config_refuses_credentials_in_model_args():
    with pytest.raises(ValueError, match="credentials"):
        LlmConfig(model="openai/gpt-4.1-mini", model_args={"api_key": "x"})


def test_redact_and_safe_url(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    assert redact(f"error: {FAKE_KEY}!") == "error: ***!"
    assert safe_url(f"https://u:{FAKE_KEY}@h.example:8443/v1?key=abc#x") == "https://h.example:8443/v1"
    assert safe_url(None) is None


def test_real_provider_error_does_not_leak_the_key(monkeypatch, tmp_path, caplog):
    pytest.importorskip("openai")
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    caplog.set_level(logging.DEBUG)
    client = LlmClient(
        LlmConfig(
            model="openai/gpt-4.1-mini",
            base_url="http://127.0.0.1:9/v1",
            max_retries=1,
            timeout=5,
            backoff_initial=0.01,
            cache_dir=tmp_path,
        )
    )
    with pytest.raises(LlmError) as info:
        client.generate("hi")
    assert FAKE_KEY not in str(info.value) and FAKE_KEY not in caplog.text
    assert FAKE_KEY not in _all_text_under(tmp_path)
