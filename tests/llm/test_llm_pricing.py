from __future__ import annotations

import pytest

from lmdiff.llm import Price, estimate_cost, price_for


@pytest.mark.parametrize(
    ("model", "expected", "source"),
    [
        ("openai/gpt-4.1-mini", Price(input=0.40, output=1.60), "builtin"),
        ("openai/gpt-4.1", Price(input=2.0, output=8.0), "builtin"),
        ("openrouter/openai/gpt-4o-mini-2024-07-18", Price(input=0.15, output=0.60), "builtin"),
        ("anthropic/claude-sonnet-4-5-20250929", Price(input=3.0, output=15.0), "builtin"),
        ("google/gemini-2.5-flash-lite", Price(input=0.10, output=0.40), "builtin"),
        ("hf//tmp/model", Price(input=0.0, output=0.0), "local"),
        ("vllm/meta-llama/Llama-3.3-70B", Price(input=0.0, output=0.0), "local"),
        ("openai-api/acme/mystery", None, "unknown"),
    ],
)
def test_builtin_table(model, expected, source):
    assert price_for(model) == (expected, source)


def test_overrides_win_and_match_by_prefix():
    custom = {"openai/gpt-4.1": Price(input=9, output=9), "mystery": Price(input=1, output=1)}
    assert price_for("openai/gpt-4.1-mini", custom) == (Price(input=9, output=9), "override")
    assert price_for("openai-api/acme/mystery-7b", custom) == (Price(input=1, output=1), "override")
    assert price_for("vllm/mystery", custom)[1] == "override"  # even a local model can be priced


def test_estimate_cost():
    assert estimate_cost(Price(input=1.0, output=2.0), 1_000_000, 500_000) == pytest.approx(2.0)
    assert estimate_cost(None, 10, 10) is None
