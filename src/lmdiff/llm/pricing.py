"""A small price table per model family, for cost estimates and dollar budgets.

Prices are list prices in USD per million tokens, checked by hand (2025); they are
estimates, not invoices. Override or extend them with ``LlmConfig.prices``. Models served
locally (``hf/``, ``local/``, ``vllm/``, ``ollama/``, ``mockllm/``, ...) cost nothing unless
an override says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from lmdiff.llm.config import Price

PriceSource = Literal["override", "builtin", "local", "unknown"]

#: Name prefix (after the provider) -> price. The longest matching prefix wins.
BUILTIN_PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-5": Price(input=1.25, output=10.0),
    "gpt-5-mini": Price(input=0.25, output=2.0),
    "gpt-5-nano": Price(input=0.05, output=0.40),
    "gpt-4.1": Price(input=2.0, output=8.0),
    "gpt-4.1-mini": Price(input=0.40, output=1.60),
    "gpt-4.1-nano": Price(input=0.10, output=0.40),
    "gpt-4o": Price(input=2.50, output=10.0),
    "gpt-4o-mini": Price(input=0.15, output=0.60),
    "o3": Price(input=2.0, output=8.0),
    "o3-mini": Price(input=1.10, output=4.40),
    "o4-mini": Price(input=1.10, output=4.40),
    # Anthropic
    "claude-opus-4": Price(input=15.0, output=75.0),
    "claude-opus-4-5": Price(input=5.0, output=25.0),
    "claude-sonnet-4": Price(input=3.0, output=15.0),
    "claude-3-7-sonnet": Price(input=3.0, output=15.0),
    "claude-3-5-sonnet": Price(input=3.0, output=15.0),
    "claude-haiku-4-5": Price(input=1.0, output=5.0),
    "claude-3-5-haiku": Price(input=0.80, output=4.0),
    # Google
    "gemini-2.5-pro": Price(input=1.25, output=10.0),
    "gemini-2.5-flash": Price(input=0.30, output=2.50),
    "gemini-2.5-flash-lite": Price(input=0.10, output=0.40),
    "gemini-2.0-flash": Price(input=0.10, output=0.40),
    # Open-weight models on hosted routers (typical OpenRouter prices)
    "llama-3.3-70b": Price(input=0.13, output=0.40),
    "qwen3-next-80b": Price(input=0.15, output=1.50),
    "deepseek-chat": Price(input=0.27, output=1.10),
}

#: Providers that run on hardware the user already pays for.
LOCAL_PROVIDERS = frozenset(
    {"hf", "local", "vllm", "ollama", "mockllm", "llama-cpp-python", "sglang", "transformer_lens", "nnterp"}
)

FREE = Price(input=0.0, output=0.0)


def _name_parts(model: str) -> tuple[str, str]:
    provider, _, rest = model.partition("/")
    # openrouter/openai/gpt-4.1-mini, openai-api/service/name, together/meta-llama/Llama-3.3-70B
    name = rest.rsplit("/", 1)[-1]
    return provider.lower(), name.lower()


def _longest_prefix(name: str, table: Mapping[str, Price]) -> Price | None:
    best: tuple[int, Price] | None = None
    for prefix, price in table.items():
        p = prefix.lower()
        if name.startswith(p) and (best is None or len(p) > best[0]):
            best = (len(p), price)
    return best[1] if best else None


def price_for(model: str, overrides: Mapping[str, Price] | None = None) -> tuple[Price | None, PriceSource]:
    """Look up the price of ``model``.

    Overrides match the full model string by longest prefix (``openai/gpt-4.1``), then the
    name after the provider (``gpt-4.1``); the built-in table is consulted next; local
    providers are free; anything else is unknown.

    Args:
        model: An Inspect model string such as ``openai/gpt-4.1-mini``.
        overrides: ``LlmConfig.prices``.

    Returns:
        The price (None when unknown) and where it came from.
    """
    overrides = overrides or {}
    provider, name = _name_parts(model)
    found = _longest_prefix(model.lower(), overrides) or _longest_prefix(name, overrides)
    if found is not None:
        return found, "override"
    if provider in LOCAL_PROVIDERS:
        return FREE, "local"
    found = _longest_prefix(name, BUILTIN_PRICES)
    if found is not None:
        return found, "builtin"
    return None, "unknown"


def estimate_cost(price: Price | None, input_tokens: int, output_tokens: int) -> float | None:
    """Return the estimated cost in USD of one call, or None when the price is unknown.

    Args:
        price: The model's price, or None.
        input_tokens: Prompt tokens billed.
        output_tokens: Completion tokens billed (reasoning tokens included).

    Returns:
        Dollars, or None.
    """
    if price is None:
        return None
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000
