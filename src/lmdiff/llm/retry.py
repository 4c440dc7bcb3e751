"""Retries with exponential backoff for rate limits and transient failures.

lmdiff owns the retry loop so that its behaviour is defined and tested: Inspect AI's own
retry is switched off (``max_retries=0``) and each failed attempt is classified here. An
error is retried when the provider's Inspect adapter says so (``ModelAPI.should_retry``:
rate limits, 5xx, connection errors of that SDK), when it is a timeout or connection error,
when it carries an HTTP status of 408, 409, 425, 429 or 5xx, or when it is a
:class:`TransientLlmError`. Anything else (bad request, authentication, unknown model)
fails at once. The wait before retry ``n`` (0-based) is
``min(backoff_max, backoff_initial * 2**n)`` scaled by a random factor in [0.5, 1].
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from lmdiff.errors import LlmError

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
_TRANSIENT_NAMES = frozenset(
    {
        "AttemptTimeoutError",
        "StreamIdleTimeoutError",
        "NoStreamDataError",
        "RateLimitError",
        "APIConnectionError",
        "APITimeoutError",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceExhausted",
        "DeadlineExceeded",
        "OverloadedError",
    }
)

RetryKind = Literal["rate_limit", "transient"]


class TransientLlmError(RuntimeError):
    """A failure worth retrying; raise it from custom providers to ask for a retry."""


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait before retrying a transient failure."""

    max_retries: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False, compare=False)

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Return the seconds to wait before retry number ``retry`` (0-based).

        Args:
            retry: How many retries came before this one.
            rng: Random source for the jitter (tests pass a seeded one).

        Returns:
            Seconds, in ``[0.5, 1] * min(backoff_max, backoff_initial * 2**retry)``.
        """
        base = min(self.backoff_max, self.backoff_initial * (2.0**retry))
        return base * (0.5 + 0.5 * (rng or random).random())

    async def wait(self, retry: int) -> float:
        """Wait before retry number ``retry`` and return the seconds waited."""
        seconds = self.delay(retry)
        await self.sleep(seconds)
        return seconds


def unwrap(exc: BaseException) -> BaseException:
    """Return the underlying error of a tenacity ``RetryError`` (Inspect's retry wrapper)."""
    last = getattr(exc, "last_attempt", None)
    if last is not None and hasattr(last, "exception"):
        inner = last.exception()
        if isinstance(inner, BaseException):
            return inner
    return exc


def _status(exc: BaseException) -> int | None:
    for attr in ("status_code", "status", "http_status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def classify(exc: BaseException, api: Any | None = None) -> RetryKind | None:
    """Decide whether a failed attempt is worth retrying.

    Args:
        exc: The exception raised by the attempt (a tenacity ``RetryError`` is unwrapped).
        api: The Inspect ``ModelAPI`` that raised it; its ``should_retry`` is consulted.

    Returns:
        "rate_limit" or "transient" when the call should be retried, None when it should fail.
    """
    exc = unwrap(exc)
    if isinstance(exc, LlmError) or not isinstance(exc, Exception):
        return None
    status = _status(exc)
    if status == 429 or type(exc).__name__ in {"RateLimitError", "ResourceExhausted"}:
        return "rate_limit"
    if isinstance(exc, TransientLlmError | TimeoutError | ConnectionError):
        return "transient"
    if status is not None and status in RETRY_STATUS:
        return "transient"
    if type(exc).__name__ in _TRANSIENT_NAMES:
        return "transient"
    try:
        import httpx

        if isinstance(exc, httpx.TransportError):
            return "transient"
    except ImportError:  # pragma: no cover - httpx ships with inspect-ai
        pass
    if api is not None:
        try:
            decision = api.should_retry(exc)
        except Exception:
            decision = False
        if decision:
            kind = getattr(decision, "kind", "transient")
            return "rate_limit" if kind == "rate_limit" else "transient"
    return None
