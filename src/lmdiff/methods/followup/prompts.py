"""Targeted prompts about a topic: offline templates, or the LLM layer's ``prompt_writer`` role."""

from __future__ import annotations

import random
import re
from typing import Any

from lmdiff.interp.signals import FUNCTION_WORDS
from lmdiff.interp.words import STOPWORDS

#: Ways to ask about a topic without presupposing anything about it (offline prompt writer).
TEMPLATES: tuple[str, ...] = (
    "Tell me about {x}.",
    "What is {x} known for?",
    "Write a short paragraph about {x}.",
    "What do you think of {x}?",
    "Give me three facts about {x}.",
    "I'm curious about {x}. What should I know?",
    "Describe {x} to a ten-year-old.",
    "What is the most interesting thing about {x}?",
    "Summarise what people usually say about {x}.",
    "Why does {x} matter?",
    "What comes to mind when you hear the word '{x}'?",
    "Explain {x} in two sentences.",
    "What are common misconceptions about {x}?",
    "If you taught a short class on {x}, what would you cover?",
    "What's a fun fact about {x}?",
    "How would you describe {x} to a friend?",
    "What questions do people often ask about {x}?",
    "Write a few sentences for an encyclopedia entry on {x}.",
    "What should a visitor or beginner know about {x}?",
    "List some things associated with {x}.",
)


#: Words as the follow-up reads them (lower-case, three letters or more).
WORD_RE = re.compile(r"[a-z][a-z'-]{2,}")
_TEMPLATE_WORDS = frozenset(w for t in TEMPLATES for w in WORD_RE.findall(t.lower().replace("{x}", " ")))


def content_words(text: str) -> set[str]:
    """Lower-cased words of a text that can carry content (no stopwords or template words)."""
    return {w.strip("'-") for w in WORD_RE.findall(text.lower())} - STOPWORDS - FUNCTION_WORDS - _TEMPLATE_WORDS


def template_prompts(topic: str, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct prompts about ``topic`` from :data:`TEMPLATES` (seeded order; at most all of them)."""
    order = list(TEMPLATES)
    random.Random(f"{seed}:{topic.lower()}").shuffle(order)
    return [t.format(x=topic) for t in order[: min(n, len(order))]]


def write_prompts(topic: str, n: int, seed: int = 0, writer: Any = None) -> tuple[list[str], str]:
    """Prompts about ``topic`` and who wrote them: the LLM ``writer`` (a bound role) when given, else templates.

    An LLM that returns too few distinct prompts is topped up from the templates.
    """
    if writer is not None:
        res = writer({"topic": topic, "n": n})
        if res.valid and res.value is not None:
            got = list(dict.fromkeys(p.strip() for p in res.value.prompts if p and p.strip()))[:n]
            if len(got) >= n:
                return got, str(res.producer)
            extra = [p for p in template_prompts(topic, n, seed) if p not in got]
            return got + extra[: n - len(got)], f"{res.producer}+templates"
    return template_prompts(topic, n, seed), "templates"
