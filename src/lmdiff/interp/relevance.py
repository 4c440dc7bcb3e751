"""Token relevance: how many of a readout's top tokens relate to an organism's ground truth (offline).

A token is relevant when its whole word matches a curated ground-truth term (the ground truth's
``keywords``), not when it shares a few letters with one:

* a single-word term matches the token's word exactly or as a regular inflection of either
  (``whale`` ~ ``whales``, ``capitals`` ~ ``capital``, ``reason`` ~ ``reasoning``);
* a term of seven or more letters is also a curated stem (``philosoph`` ~ ``philosopher``,
  ``mathemat`` ~ ``mathematics``); shorter terms never match by prefix, so ``earl`` is not ``early``;
* a multi-word term (``upper case``, ``ALL CAPS``) matches only as a whole (``UPPERCASE``): its
  words alone (``case``, ``all``) are too common to count.

Every relevance figure should stand next to a null: :func:`chance_relevance` gives the share of
random vocabulary tokens that count as relevant (what a readout of a random direction scores).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Keyword words at least this long also match as stems (prefixes of the token's word).
STEM_MIN_LEN = 7
#: Regular inflections a whole word may carry.
_SUFFIXES = ("s", "es", "ed", "ing")


def _norm_word(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def _inflected(word: str, base: str) -> bool:
    """Whether ``word`` is ``base`` plus a regular inflection (or ``-y`` -> ``-ies``)."""
    if any(word == base + s for s in _SUFFIXES):
        return True
    return base.endswith("y") and word == base[:-1] + "ies"


def term_matches(word: str, term: str) -> bool:
    """Whether a token's normalised ``word`` matches one curated ground-truth ``term`` (see the module doc)."""
    k = _norm_word(term)
    if len(k) < 3 or len(word) < 3:
        return False
    if word == k or _inflected(word, k) or _inflected(k, word):
        return True
    single = len(term.split()) == 1
    return single and len(k) >= STEM_MIN_LEN and word.startswith(k)


def relevant_token(token: str, keywords: Sequence[str]) -> bool:
    """Whether a token's whole word matches one of the curated ``keywords`` (offline token relevance)."""
    t = _norm_word(token)
    return any(term_matches(t, kw) for kw in keywords)


def styled_token(token: str, style: str | None) -> bool:
    """Whether a token itself shows a style (named as the behaviour pipeline's style features name them).

    ``uppercase``: two or more letters, all capitals; ``exclamation``: holds ``!``; ``digits``: holds a digit;
    ``symbols``: holds an emoji or another symbol past U+2000. Other styles (length, lists) show in no token.
    """
    if style == "uppercase":
        letters = [c for c in token if c.isalpha()]
        return len(letters) >= 2 and all(c.isupper() for c in letters)
    if style == "exclamation":
        return "!" in token
    if style == "digits":
        return any(c.isdigit() for c in token)
    if style == "symbols":
        return any(ord(c) > 0x2000 for c in token)
    return False


def token_relevance(tokens: Sequence[str], ground_truth: dict[str, Any] | None) -> dict[str, Any] | None:
    """Share of ``tokens`` related to the ground truth (None when it names nothing to match).

    A token is relevant when its whole word matches one of the ground truth's keywords (see the
    module doc) or, for a style organism whose ``token_style`` is set (e.g. ``uppercase``), when
    the token shows that style.
    """
    gt = ground_truth or {}
    keywords = list(gt.get("keywords") or [])
    style = gt.get("token_style")
    if (not keywords and not style) or not tokens:
        return None
    flags = [relevant_token(t, keywords) or styled_token(t, style) for t in tokens]
    return {"share": float(np.mean(flags)), "relevant": [t for t, f in zip(tokens, flags, strict=True) if f],
            "n": len(tokens), "producer": relevance_producer(gt)}


def chance_relevance(decode: Callable[[Sequence[int]], list[str]], vocab_size: int,
                     ground_truth: dict[str, Any] | None, n: int = 4000, seed: int = 0) -> float | None:
    """The share of ``n`` vocabulary tokens drawn at random (seeded) that count as relevant: the chance rate.

    A readout of a direction unrelated to the finetune names tokens at about this rate, so a
    relevance figure means something only well above it. None when the ground truth names nothing.

    Args:
        decode: token ids to token strings (e.g. ``LanguageModel.token_strings``).
        vocab_size: ids are drawn from ``range(vocab_size)`` without replacement.
        ground_truth: the organism's ground truth.
        n: tokens drawn.
        seed: the draw's seed.
    """
    if vocab_size <= 0:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.choice(vocab_size, size=min(n, vocab_size), replace=False)
    rel = token_relevance(decode([int(i) for i in picks]), ground_truth)
    return rel["share"] if rel else None


def relevance_producer(ground_truth: dict[str, Any] | None) -> str:
    """How :func:`token_relevance` judges tokens for this ground truth (recorded with every share)."""
    style = (ground_truth or {}).get("token_style")
    return "offline:keywords" + (f"+{style}_tokens" if style else "")
