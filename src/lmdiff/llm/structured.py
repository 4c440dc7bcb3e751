"""Structured calls: generate, parse, and on a malformed reply ask again with the error.

A reply that still cannot be parsed after ``max_attempts`` becomes a result marked
``valid=False`` carrying the error and the raw text: it is recorded, never dropped and never
counted as a success.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from lmdiff.llm.parsing import parse_json
from lmdiff.llm.types import GenerationParams, LlmReply, normalize_messages


class StructuredBackend(Protocol):
    """What a structured call needs from a client: one generation, a model name, and a tally."""

    model_name: str

    async def generate_reply(
        self, messages: list[dict[str, str]], system: str | None, params: GenerationParams
    ) -> LlmReply:
        """One (cached, retried, budgeted) generation."""
        ...

    def record_structured(self, valid: bool) -> None:
        """Count a structured reply as valid or invalid."""
        ...

V = TypeVar("V")

CORRECTION = (
    "Your previous reply could not be used: {error}.\n"
    "Reply again with the complete answer in exactly the requested format, and nothing else."
)


@dataclass(frozen=True)
class ReplyParser(Generic[V]):
    """Wraps a parser that needs the whole :class:`LlmReply` (e.g. its logprobs)."""

    fn: Callable[[LlmReply], V]

    def __call__(self, reply: LlmReply) -> V:
        """Parse ``reply``."""
        return self.fn(reply)


#: A pydantic model class (JSON replies), or a function of the reply text, or (with
#: :class:`ReplyParser`) a function of the whole reply (to read logprobs).
Parser = type[BaseModel] | Callable[[str], V] | ReplyParser[V]


@dataclass
class StructuredResult(Generic[V]):
    """The outcome of a structured call.

    Attributes:
        value: The parsed value (None when invalid).
        valid: True only if a reply parsed.
        text: The last raw reply text.
        error: Why the result is invalid (None when valid).
        attempts: Replies generated (including corrective retries).
        model: The model string.
        cached: True if every reply came from the cache.
        cost_usd: Estimated cost to this run.
        replies: Every reply, in order.
    """

    value: V | None
    valid: bool
    text: str
    error: str | None
    attempts: int
    model: str
    cached: bool = False
    cost_usd: float = 0.0
    replies: list[LlmReply] = field(default_factory=list)

    @property
    def producer(self) -> str:
        """``llm:<model>``."""
        return f"llm:{self.model}"

    @classmethod
    def failed(cls, model: str, error: str) -> StructuredResult[Any]:
        """An invalid result for a call that failed for good."""
        return cls(value=None, valid=False, text="", error=error, attempts=0, model=model)


def _as_reply_parser(parse: Any) -> Callable[[LlmReply], Any]:
    if isinstance(parse, ReplyParser):
        return parse
    if isinstance(parse, type) and issubclass(parse, BaseModel):
        schema = parse
        return lambda reply: parse_json(reply.text, schema)
    if callable(parse):
        return lambda reply: parse(reply.text)
    raise TypeError(f"parse must be a pydantic model class or a callable, not {type(parse).__name__}")


async def run_structured(
    client: StructuredBackend,
    prompt: Any,
    parse: Any,
    system: str | None,
    params: GenerationParams,
    max_attempts: int = 3,
    correction: str = CORRECTION,
) -> StructuredResult[Any]:
    """Generate and parse with corrective retries (runs on the client's loop).

    Args:
        client: The client.
        prompt: A string or messages.
        parse: See :data:`Parser`.
        system: System prompt.
        params: Resolved generation parameters.
        max_attempts: Replies to try.
        correction: Follow-up message template with an ``{error}`` field.

    Returns:
        A valid or invalid :class:`StructuredResult`.
    """
    parser = _as_reply_parser(parse)
    messages = normalize_messages(prompt)
    replies: list[LlmReply] = []
    error = "no attempt made"
    for _ in range(max(1, max_attempts)):
        reply = await client.generate_reply(messages, system, params)
        replies.append(reply)
        try:
            value = parser(reply)
        except ValueError as exc:  # ParseError and pydantic's ValidationError are ValueErrors
            error = str(exc).strip() or type(exc).__name__
            messages = [
                *messages,
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": correction.format(error=error)},
            ]
            continue
        client.record_structured(True)
        return _result(client, value, True, None, replies)
    client.record_structured(False)
    return _result(client, None, False, error, replies)


def _result(
    client: StructuredBackend, value: Any, valid: bool, error: str | None, replies: list[LlmReply]
) -> StructuredResult[Any]:
    return StructuredResult(
        value=value,
        valid=valid,
        text=replies[-1].text if replies else "",
        error=error,
        attempts=len(replies),
        model=client.model_name,
        cached=all(r.cached for r in replies),
        cost_usd=sum(r.cost_usd or 0.0 for r in replies),
        replies=replies,
    )
