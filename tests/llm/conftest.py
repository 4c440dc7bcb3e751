from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from lmdiff.llm import LlmClient, LlmConfig


@pytest.fixture(autouse=True)
def _isolated_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ambient LLM config, a private cache home, no progress bars, no network.

    ``real_model`` tests keep the user cache, where the shipped model is converted once.
    """
    monkeypatch.delenv("LMDIFF_LLM", raising=False)
    monkeypatch.delenv("LMDIFF_LLM_BASE_URL", raising=False)
    if request.node.get_closest_marker("real_model") is None:
        monkeypatch.setenv("LMDIFF_HOME", str(tmp_path / "lmdiff_home"))
    monkeypatch.setenv("LMDIFF_PROGRESS", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def make_output(text: str, input_tokens: int = 10, output_tokens: int = 5) -> ModelOutput:
    """A mock reply with explicit usage (mockllm would otherwise count tokens with tiktoken)."""
    out = ModelOutput.from_content(model="mockllm", content=text)
    out.usage = ModelUsage(
        input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
    )
    return out


@pytest.fixture
def output() -> Callable[..., ModelOutput]:
    return make_output


@pytest.fixture
def make_client(tmp_path: Path) -> Callable[..., LlmClient]:
    """Build a client over Inspect's mock model.

    ``outputs`` is a list of texts/ModelOutputs (scripted in order) or a callable
    ``(input, tools, tool_choice, config) -> ModelOutput`` (sync or async).
    """

    def build(outputs: Iterable[Any] | Callable[..., Any], **config: Any) -> LlmClient:
        if callable(outputs):
            custom: Any = outputs
        else:
            custom = [make_output(o) if isinstance(o, str) else o for o in outputs]
        config.setdefault("cache_dir", tmp_path / "llm_cache")
        config.setdefault("backoff_initial", 0.001)
        config.setdefault("backoff_max", 0.01)
        model = get_model("mockllm/model", custom_outputs=custom)
        return LlmClient(LlmConfig(model="mockllm/model", **config), model=model)

    return build


class Recorder:
    """A scripted mock model that records the messages and configs it receives."""

    def __init__(self, replies: list[Any]) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[list[Any], Any]] = []

    def __call__(self, input: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        self.calls.append((input, config))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, BaseException):
            raise reply
        return make_output(reply) if isinstance(reply, str) else reply


@pytest.fixture
def recorder() -> type[Recorder]:
    return Recorder
