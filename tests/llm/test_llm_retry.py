from __future__ import annotations

import dataclasses
import random

import httpx
import pytest

from lmdiff.errors import LlmError
from lmdiff.llm import RetryPolicy, TransientLlmError, classify
from lmdiff.llm.client import LlmClient


class HttpError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def test_transient_errors_are_retried_with_backoff(make_client, recorder):
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    rec = recorder([HttpError(429), TransientLlmError("connection reset"), "finally"])
    client = make_client(rec, max_retries=3, backoff_initial=0.5, backoff_max=10.0)
    assert client.retry_policy == RetryPolicy(max_retries=3, backoff_initial=0.5, backoff_max=10.0)
    client.retry_policy = dataclasses.replace(client.retry_policy, sleep=fake_sleep)
    reply = client.generate("hi")
    assert reply.text == "finally" and reply.valid
    assert len(rec.calls) == 3
    # exponential: retry 0 waits in [0.25, 0.5], retry 1 in [0.5, 1.0]
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0
    usage = client.usage_summary()
    assert usage["retries"] == 2 and usage["rate_limited"] == 1 and usage["calls"] == 1


def test_retries_run_out(make_client, recorder):
    rec = recorder([TransientLlmError("down")])
    client = make_client(rec, max_retries=2)
    with pytest.raises(LlmError, match="after 2 retries"):
        client.generate("hi")
    assert len(rec.calls) == 3
    assert client.usage_summary()["failed_calls"] == 1


def test_permanent_errors_fail_at_once(make_client, recorder):
    rec = recorder([HttpError(400)])
    client = make_client(rec, max_retries=5)
    with pytest.raises(LlmError, match="not retryable"):
        client.generate("hi")
    assert len(rec.calls) == 1


def test_inspect_retry_wrapper_is_unwrapped(make_client, recorder):
    """Inspect runs with max_retries=0: an error its provider calls retryable surfaces as a
    tenacity RetryError after one attempt; lmdiff unwraps it and retries itself."""
    rec = recorder([RuntimeError("provider hiccup"), "ok"])
    client: LlmClient = make_client(rec, max_retries=2)
    client.inspect_model.api.should_retry = lambda ex: isinstance(ex, RuntimeError)  # type: ignore[method-assign]
    assert client.generate("hi").text == "ok"
    assert len(rec.calls) == 2
    assert client.usage_summary()["retries"] == 1


def test_batch_failure_is_recorded_not_dropped(make_client, output):
    def model(input, tools, tool_choice, config):
        if input[-1].text == "bad":
            raise HttpError(401)
        return output("good")

    replies = make_client(model).generate_many(["a", "bad", "b"])
    assert [r.valid for r in replies] == [True, False, True]
    assert replies[1].text == "" and "401" in (replies[1].error or "")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (HttpError(429), "rate_limit"),
        (HttpError(503), "transient"),
        (HttpError(400), None),
        (HttpError(401), None),
        (TimeoutError(), "transient"),
        (ConnectionResetError(), "transient"),
        (httpx.ConnectError("boom"), "transient"),
        (TransientLlmError("x"), "transient"),
        (ValueError("bad request"), None),
        (LlmError("already final"), None),
    ],
)
def test_classify(exc, kind):
    assert classify(exc) == kind


def test_backoff_is_exponential_capped_and_jittered():
    policy = RetryPolicy(max_retries=10, backoff_initial=1.0, backoff_max=8.0)
    rng = random.Random(0)
    for retry, base in enumerate([1, 2, 4, 8, 8, 8]):
        delay = policy.delay(retry, rng)
        assert base / 2 <= delay <= base
