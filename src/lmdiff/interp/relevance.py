"""Token relevance: how many of a readout's top tokens relate to an organism's ground truth (offline)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np


def _norm_word(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def relevant_token(token: str, keywords: Sequence[str]) -> bool:
    """Whether a token matches a keyword by stem (offline token relevance)."""
    t = _norm_word(token)
    if len(t) < 3:
        return False
    for kw in keywords:
        for word in re.split(r"\s+", kw):
            k = _norm_word(word)
            if len(k) < 3:
                continue
            stem = k[: max(4, len(k) - 3)]
            if t == k or (len(t) >= 4 and (k.startswith(t) or t.startswith(stem))):
                return True
    return False


def styled_token(token: str, style: str | None) -> bool:
    """Whether a token itself shows a style a ground truth names (``uppercase``: two or more letters, all capitals)."""
    if style == "uppercase":
        letters = [c for c in token if c.isalpha()]
        return len(letters) >= 2 and all(c.isupper() for c in letters)
    return False


def token_relevance(tokens: Sequence[str], ground_truth: dict[str, Any] | None) -> dict[str, Any] | None:
    """Share of ``tokens`` related to the ground truth (None when it names nothing to match).

    A token is relevant when it matches one of the ground truth's keywords by stem or, for a style
    organism whose ``token_style`` is set (e.g. ``uppercase``), when the token shows that style.
    """
    gt = ground_truth or {}
    keywords = list(gt.get("keywords") or [])
    style = gt.get("token_style")
    if (not keywords and not style) or not tokens:
        return None
    flags = [relevant_token(t, keywords) or styled_token(t, style) for t in tokens]
    return {"share": float(np.mean(flags)), "relevant": [t for t, f in zip(tokens, flags, strict=True) if f],
            "n": len(tokens), "producer": relevance_producer(gt)}


def relevance_producer(ground_truth: dict[str, Any] | None) -> str:
    """How :func:`token_relevance` judges tokens for this ground truth (recorded with every share)."""
    style = (ground_truth or {}).get("token_style")
    return "offline:keywords" + (f"+{style}_tokens" if style else "")
