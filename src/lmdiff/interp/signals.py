"""Signals: the words a run's white-box methods point at (shared by follow-up, probing and the findings)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmdiff.interp.words import STOPWORDS

#: Where each method's headline keeps the tokens it points at. The follow-up step and the report's
#: "leads" read these keys; a test checks each against the method's real headline, so they cannot drift.
SIGNAL_KEYS: dict[str, str] = {
    "diff_mining": "top_tokens",
    "adl": "top_lens",
    "kl": "top_content_ft",
    "amplification": "top_growing_words",
    "pca": "top_lens",
    "sae_diff": "top_lens",
    "crosscoder": "top_lens",
}

_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]{2,}$")


@dataclass
class Signal:
    """One word some methods point at.

    Attributes:
        word: the word as a topic (stripped of the token's leading space).
        sources: ``method:token`` strings that pointed at it, in the order found.
        covered: how many of the run's prompts already mention it.
    """

    word: str
    sources: list[str] = field(default_factory=list)
    covered: int = 0

    @property
    def methods(self) -> set[str]:
        """The distinct methods behind the signal."""
        return {s.split(":", 1)[0] for s in self.sources}


def word_of(token: str) -> str | None:
    """The topic a token stands for (``' Rome'`` -> ``'Rome'``), or None for fragments, numbers and stopwords."""
    w = token.strip().strip(".,;:!?\"'()[]")
    if not _WORD.match(w) or w.lower() in STOPWORDS or w.lower() in FUNCTION_WORDS:
        return None
    return w


def collect_signals(
    results: dict[str, Any],
    prompt_texts: Sequence[str],
    *,
    max_signals: int = 4,
    per_method: int = 10,
    max_covered: int = 1,
) -> tuple[list[Signal], list[Signal]]:
    """The signals of a run worth following up, and those skipped because the prompts covered them.

    Words named by more methods come first, then names (capitalised) before common words, then by
    their best rank within a method. A word that more than ``max_covered`` of the run's prompts already
    mention is covered: the first round saw it.

    Args:
        results: the run's results.json.
        prompt_texts: the run's prompts.
        max_signals: how many to follow up.
        per_method: how many tokens of each method's list to read.
        max_covered: prompts that may mention a word before it counts as covered.

    Returns:
        ``(chosen, covered)``.
    """
    found: dict[str, Signal] = {}
    best_rank: dict[str, int] = {}
    for method, key in SIGNAL_KEYS.items():
        entry = results.get("methods", {}).get(method, {})
        if entry.get("status") != "ok":
            continue
        for rank, tok in enumerate(list(entry.get("headline", {}).get(key) or [])[:per_method]):
            w = word_of(str(tok))
            if w is None:
                continue
            k = w.lower()
            sig = found.setdefault(k, Signal(w))
            sig.sources.append(f"{method}:{tok!r}")
            best_rank[k] = min(best_rank.get(k, rank), rank)
    lowered = [p.lower() for p in prompt_texts]
    for k, sig in found.items():
        pat = re.compile(rf"\b{re.escape(k)}")
        sig.covered = sum(1 for p in lowered if pat.search(p))
    # more methods first; among equals, names (capitalised: places, people, brands) before common words, since
    # a finetune that planted a fact or a name shows it there; then the best rank within a method
    ranked = sorted(found.values(), key=lambda s: (-len(s.methods), not s.word[:1].isupper(),
                                                    best_rank[s.word.lower()]))
    chosen = [s for s in ranked if s.covered <= max_covered][:max_signals]
    covered = [s for s in ranked if s.covered > max_covered]
    return chosen, covered


FUNCTION_WORDS = frozenset(
    [
        "you",
        "your",
        "yours",
        "we",
        "our",
        "they",
        "them",
        "their",
        "he",
        "she",
        "his",
        "her",
        "him",
        "it",
        "its",
        "i",
        "me",
        "my",
        "mine",
        "not",
        "no",
        "yes",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "have",
        "has",
        "had",
        "do",
        "does",
        "did",
        "been",
        "being",
        "were",
        "was",
        "are",
        "is",
        "am",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "how",
        "when",
        "where",
        "also",
        "just",
        "very",
        "much",
        "many",
        "some",
        "any",
        "all",
        "each",
        "every",
        "other",
        "such",
        "only",
        "own",
        "same",
        "so",
        "too",
        "then",
        "than",
        "now",
        "well",
        "like",
        "into",
        "onto",
        "upon",
        "over",
        "under",
        "again",
        "further",
        "once",
        "both",
        "few",
        "most",
    ]
)
