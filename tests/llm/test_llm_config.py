from __future__ import annotations

import pytest
from pydantic import ValidationError

from lmdiff.errors import LlmError
from lmdiff.llm import LlmClient, LlmConfig


def test_defaults_come_from_the_environment(monkeypatch):
    assert LlmConfig().model is None and LlmConfig().offline
    monkeypatch.setenv("LMDIFF_LLM", "openai/gpt-4.1-mini")
    monkeypatch.setenv("LMDIFF_LLM_BASE_URL", "http://localhost:8080/v1")
    config = LlmConfig()
    assert config.model == "openai/gpt-4.1-mini" and not config.offline
    assert config.base_url == "http://localhost:8080/v1"
    assert LlmConfig(model=None).offline  # explicit None wins over the environment


@pytest.mark.parametrize("value", ["", "none", "offline", "  "])
def test_offline_spellings(value):
    assert LlmConfig(model=value).model is None


def test_bad_values_are_rejected():
    with pytest.raises(ValidationError):
        LlmConfig(model="gpt-4")  # no provider
    with pytest.raises(ValidationError):
        LlmConfig(api_key="sk-x")  # extra="forbid": keys have no place here
    with pytest.raises(ValidationError):
        LlmConfig(max_connections=0)


def test_config_round_trips_through_json(tmp_path):
    config = LlmConfig(model="anthropic/claude-haiku-4-5", budget_usd=1.5, prices={"x": {"input": 1, "output": 2}})
    assert LlmConfig.model_validate_json(config.model_dump_json()) == config


def test_no_client_without_a_model():
    with pytest.raises(LlmError, match="no LLM is configured"):
        LlmClient(LlmConfig(model=None))


def test_unknown_provider_fails_with_a_hint(tmp_path):
    client = LlmClient(LlmConfig(model="nosuchprovider/model", cache_dir=tmp_path))
    with pytest.raises(LlmError) as info:
        client.generate("hi")
    assert "cannot start LLM" in str(info.value) and info.value.hint


def test_local_alias_needs_a_directory_or_shipped_name(tmp_path):
    client = LlmClient(LlmConfig(model=f"local/{tmp_path / 'missing'}", cache_dir=tmp_path))
    with pytest.raises(LlmError, match="neither a shipped model nor a directory"):
        client.generate("hi")
