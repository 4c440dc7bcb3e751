"""Token counting never reaches for the network (Inspect's default loads a tiktoken encoding)."""

from __future__ import annotations

import pytest

from lmdiff.errors import ConfigError
from lmdiff.llm import LlmClient, LlmConfig
from lmdiff.llm.client import estimate_tokens, llm_counts_since, process_llm_counts
from lmdiff.llm.config import check_llm_config


def test_mockllm_replies_without_usage_are_counted_offline(monkeypatch, tmp_path):
    import tiktoken

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tiktoken was asked for an encoding (a download)")

    monkeypatch.setattr(tiktoken, "get_encoding", no_network)
    monkeypatch.setattr(tiktoken, "encoding_for_model", no_network)
    before = process_llm_counts()
    client = LlmClient(LlmConfig(model="mockllm/model", cache=False))
    reply = client.generate("Say hello in twelve words.")
    assert reply.text == "Default output from mockllm/model"
    # mockllm reports usage from Inspect's count_text_tokens, now the 4-characters-per-token estimate
    assert reply.usage.input_tokens == estimate_tokens("Say hello in twelve words.")
    assert llm_counts_since(before)["calls"] == 1


def test_estimate_is_four_characters_per_token():
    assert estimate_tokens("") == 1 and estimate_tokens("abcd" * 10) == 10


@pytest.mark.parametrize("value, message", [
    ("nosuchprovider/x", "Unknown LLM provider 'nosuchprovider'"),
    ("justaname", "must look like 'provider/name'"),
    ("local/not-a-model", "neither a shipped model nor a directory"),
])
def test_misconfigured_llm_is_one_config_error(monkeypatch, value, message):
    monkeypatch.setenv("LMDIFF_LLM", value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as err:
        check_llm_config()
    assert err.value.hint


def test_known_and_unset_llm_pass(monkeypatch):
    monkeypatch.setenv("LMDIFF_LLM", "mockllm/model")
    assert check_llm_config().model == "mockllm/model"
    monkeypatch.delenv("LMDIFF_LLM")
    assert check_llm_config().offline
