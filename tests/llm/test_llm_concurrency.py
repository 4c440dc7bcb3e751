from __future__ import annotations

import asyncio

import pytest


class InFlight:
    """An async mock model that counts concurrent calls."""

    def __init__(self, make_output, delay: float = 0.03) -> None:
        self.make_output = make_output
        self.delay = delay
        self.now = 0
        self.peak = 0
        self.calls = 0

    async def __call__(self, input, tools, tool_choice, config):
        self.now += 1
        self.calls += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.now -= 1
        return self.make_output(f"echo: {input[-1].text}")


@pytest.mark.parametrize("limit", [1, 3])
def test_concurrency_limit_is_respected(make_client, output, limit):
    model = InFlight(output)
    client = make_client(model, max_connections=limit)
    prompts = [f"p{i}" for i in range(9)]
    replies = client.generate_many(prompts)
    assert [r.text for r in replies] == [f"echo: p{i}" for i in range(9)]  # input order kept
    assert model.calls == 9
    assert model.peak == limit


def test_generate_many_with_progress_bar(make_client, output, monkeypatch):
    monkeypatch.setenv("LMDIFF_PROGRESS", "1")
    client = make_client(InFlight(output, delay=0.0), max_connections=4)
    replies = client.generate_many(["a", "b", "c"], description="testing")
    assert len(replies) == 3


def test_async_api_from_another_loop(make_client, output):
    model = InFlight(output)
    client = make_client(model, max_connections=2)

    async def main():
        return await asyncio.gather(*(client.agenerate(f"q{i}") for i in range(4)))

    replies = asyncio.run(main())
    assert [r.text for r in replies] == [f"echo: q{i}" for i in range(4)]
    assert model.peak == 2


def test_empty_batch(make_client):
    assert make_client(["x"]).generate_many([]) == []
