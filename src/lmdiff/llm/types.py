"""Value types of the LLM layer: generation parameters, usage, replies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lmdiff.errors import LlmError


class GenerationParams(BaseModel):
    """Per-call generation parameters; None means "use the client's config"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    sample: int = Field(default=0, ge=0, description="index of a repeated sample; part of the cache key")

    def merged(self, overrides: Mapping[str, Any] | None) -> GenerationParams:
        """Return a copy with ``overrides`` applied (None values ignored)."""
        if not overrides:
            return self
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return GenerationParams.model_validate(data)


class Usage(BaseModel):
    """Tokens of one call (or of a run)."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    estimated: bool = Field(default=False, description="the provider reported no usage; counted from characters")


class TokenLogprob(BaseModel):
    """The logprob of one generated token and its top alternatives."""

    model_config = ConfigDict(extra="forbid")

    token: str
    logprob: float
    top: list[tuple[str, float]] = Field(default_factory=list)


class LlmReply(BaseModel):
    """What one LLM call returned.

    ``valid`` is False when the call failed for good (the error is in ``error`` and the text
    is empty); such replies appear only in batch results, never silently in place of text.
    """

    model_config = ConfigDict(extra="forbid")

    text: str
    model: str
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = Field(default=0.0, description="estimated cost to this run (0 for cache hits)")
    cached: bool = False
    valid: bool = True
    error: str | None = None
    stop_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    key: str = Field(default="", description="cache key (hash of the full request)")

    @property
    def producer(self) -> str:
        """``llm:<model>``."""
        return f"llm:{self.model}"

    def first_token_top_logprobs(self) -> list[tuple[str, float]] | None:
        """Return the top logprobs at the first generated position, or None."""
        if not self.logprobs:
            return None
        first = self.logprobs[0]
        return first.top or [(first.token, first.logprob)]


Message = Mapping[str, Any]
Prompt = str | Sequence[Any]


class LlmRequest(BaseModel):
    """One request of a batch: a prompt (or messages), an optional system prompt and params."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    prompt: str | list[Any]
    system: str | None = None
    params: GenerationParams | None = None


_ROLES = {"system", "user", "assistant"}


def normalize_messages(prompt: Any) -> list[dict[str, str]]:
    """Turn a prompt string, role/content dicts or Inspect chat messages into plain dicts.

    Args:
        prompt: A string (one user message) or a sequence of messages.

    Returns:
        ``[{"role": ..., "content": ...}, ...]``

    Raises:
        LlmError: A message has an unknown role or non-text content.
    """
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    out: list[dict[str, str]] = []
    for message in prompt:
        if isinstance(message, Mapping):
            role, content = message.get("role"), message.get("content")
        else:  # an inspect_ai ChatMessage
            role, content = getattr(message, "role", None), getattr(message, "content", None)
            parts = [] if isinstance(content, str) else list(content or [])
            if parts and all(getattr(c, "type", None) == "text" for c in parts):
                content = getattr(message, "text", None)
        if role not in _ROLES or not isinstance(content, str):
            raise LlmError(
                f"unsupported chat message {type(message).__name__} (role={role!r})",
                hint="messages must be system/user/assistant with text content",
            )
        out.append({"role": role, "content": content})
    if not out:
        raise LlmError("empty prompt", hint="pass a string or at least one message")
    return out
