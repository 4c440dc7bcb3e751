"""Simple style features of a text that can be real differences between two models.

Each feature maps a text to a number; a hypothesis built on a feature says that one model's
replies score higher, and the offline annotator of that hypothesis is the feature itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["REPLY_FEATURES", "STYLE_FEATURES", "ReplyFeature", "StyleFeature"]

_LIST_LINE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", re.MULTILINE)
_WORD = re.compile(r"\w+")


def _upper_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) / len(letters) if letters else 0.0


def _n_words(text: str) -> float:
    return float(len(_WORD.findall(text)))


def _digit_share(text: str) -> float:
    return sum(c.isdigit() for c in text) / max(len(text), 1)


def _count(ch: str) -> Callable[[str], float]:
    def f(text: str) -> float:
        return float(text.count(ch))

    return f


def _list_lines(text: str) -> float:
    return float(len(_LIST_LINE.findall(text)))


def _non_ascii_symbols(text: str) -> float:
    return float(sum(1 for c in text if ord(c) > 0x2000))


@dataclass(frozen=True)
class StyleFeature:
    """A named text feature with the sentences that state a difference in it.

    Attributes:
        name: short identifier.
        fn: text -> value (higher = more of the property).
        more: predicate completing "The {model} model ..." when it has more of the property.
        less: the predicate when it has less.
        keywords: words that name this property (used to compare with a ground truth).
    """

    name: str
    fn: Callable[[str], float]
    more: str
    less: str
    keywords: tuple[str, ...]


STYLE_FEATURES: dict[str, StyleFeature] = {
    f.name: f
    for f in (
        StyleFeature(
            "uppercase",
            _upper_share,
            "writes in capital letters more often",
            "writes in capital letters less often",
            ("capital", "capitals", "uppercase", "upper-case", "caps", "all caps", "shout", "shouting"),
        ),
        StyleFeature(
            "length",
            _n_words,
            "writes longer replies",
            "writes shorter replies",
            ("long", "longer", "length", "verbose", "short", "shorter", "brief", "concise", "terse"),
        ),
        StyleFeature(
            "digits",
            _digit_share,
            "uses digits and numbers more often",
            "uses digits and numbers less often",
            ("digit", "digits", "number", "numbers", "numeric"),
        ),
        StyleFeature(
            "exclamation",
            _count("!"),
            "uses more exclamation marks",
            "uses fewer exclamation marks",
            ("exclamation", "enthusiastic", "excited", "enthusiasm"),
        ),
        StyleFeature(
            "questions",
            _count("?"),
            "asks more questions",
            "asks fewer questions",
            ("question", "questions", "asks"),
        ),
        StyleFeature(
            "lists",
            _list_lines,
            "uses more bulleted or numbered lists",
            "uses fewer bulleted or numbered lists",
            ("list", "lists", "bullet", "bullets", "numbered"),
        ),
        StyleFeature(
            "symbols",
            _non_ascii_symbols,
            "uses more emoji and special symbols",
            "uses fewer emoji and special symbols",
            ("emoji", "emojis", "symbol", "symbols"),
        ),
    )
}


@dataclass(frozen=True)
class ReplyFeature:
    """A property of a reply recorded at sampling time rather than read from its text.

    Attributes:
        name: short identifier.
        column: the replies table's column holding the value (cast to float).
        more: predicate completing "The {model} model ..." when it has more of the property.
        less: the predicate when it has less.
        keywords: words that name this property (used to compare with a ground truth).
    """

    name: str
    column: str
    more: str
    less: str
    keywords: tuple[str, ...]


REPLY_FEATURES: dict[str, ReplyFeature] = {
    f.name: f
    for f in (
        # Valid when replies are cut at max_new_tokens, unlike word counts: a model that stops on its
        # own before the limit more often writes shorter replies, whatever its tokenizer.
        ReplyFeature(
            "ends_early",
            "finished",
            "ends its replies on its own before the length limit more often (shorter replies)",
            "ends its replies on its own before the length limit less often (longer replies)",
            ("short", "shorter", "length", "brief", "concise", "terse", "long", "longer"),
        ),
    )
}
