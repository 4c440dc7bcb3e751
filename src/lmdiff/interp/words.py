"""Words: the content-free words that matchers and topic pickers skip (one list for the package)."""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "mentions"]


def mentions(text: str, word: str, *, exact: bool = False) -> bool:
    """Whether ``text`` uses ``word`` (case-insensitive).

    By default the word or any longer word starting with it counts ('wood' in 'woodland'); with ``exact``
    only the word itself and its plural or possessive ('woods', "wood's") do.
    """
    end = r"(?:s|es|'s)?\b" if exact else ""
    return re.search(rf"\b{re.escape(word.lower())}{end}", text.lower()) is not None


#: Content-free words of hypothesis sentences, ground-truth descriptions and signal tokens.
STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "that",
        "this",
        "is",
        "are",
        "was",
        "be",
        "by",
        "as",
        "at",
        "from",
        "it",
        "its",
        "model",
        "models",
        "finetuned",
        "base",
        "more",
        "less",
        "replies",
        "reply",
        "uses",
        "use",
        "their",
        "about",
        "which",
        "when",
        "than",
        "into",
        "often",
        "fewer",
    ]
)
