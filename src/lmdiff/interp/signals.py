"""Signals: the words a run's white-box methods point at (shared by follow-up, probing and the findings)."""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmdiff.interp.words import STOPWORDS

if TYPE_CHECKING:
    from lmdiff.models.text import TextModel

#: Where each method's headline keeps the tokens it points at. The follow-up step and the report's
#: "leads" read these keys; a test checks each against the method's real headline, so they cannot drift.
SIGNAL_KEYS: dict[str, str] = {
    "diff_mining": "top_tokens",
    "adl": "top_lens",
    "kl": "top_content_ft",
    "amplification": "top_growing_words",
    "pca": "top_signals",
    "sae_diff": "top_signals",
    "crosscoder": "top_signals",
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


#: Neutral frames in which a name is expected: a fragment token (``' Br'``) put after them is
#: completed by the finetuned model into the word it was trained on (``' Brindlewood'``).
COMPLETION_FRAMES = ("The name of it is{t}", "It is called{t}", "Everyone talks about{t}", "My favourite is{t}")
_FRAGMENT = re.compile(r"^[A-Za-z]{2,5}$")


@dataclass(frozen=True)
class SignalToken:
    """One token a method's headline lists: the method, its 1-based rank there, and the word it stands for.

    ``word`` is None for fragments, numbers and stopwords; a fragment the finetuned model completed
    (``' Br'`` -> ``'Brindlewood'``) stands for its completion.
    """

    method: str
    rank: int
    token: str
    word: str | None


def iter_signal_tokens(
    results: dict[str, Any], per_method: int = 10, completions: dict[str, str] | None = None
) -> Iterator[SignalToken]:
    """The tokens the run's methods point at: each method's first ``per_method``, methods in :data:`SIGNAL_KEYS` order.

    This is the one reader of the :data:`SIGNAL_KEYS` headlines (follow-up, probing and the findings use it).
    """
    for method, key in SIGNAL_KEYS.items():
        entry = results.get("methods", {}).get(method, {})
        if entry.get("status") != "ok":
            continue
        for rank, tok in enumerate(list(entry.get("headline", {}).get(key) or [])[:per_method], start=1):
            token = str(tok)
            yield SignalToken(method, rank, token, word_of((completions or {}).get(token, token)))


def signal_tokens(results: dict[str, Any], per_method: int = 10) -> list[str]:
    """The tokens the run's methods point at (each method's first ``per_method``), in order, unique."""
    return list(dict.fromkeys(s.token for s in iter_signal_tokens(results, per_method)))


#: The headline key under which a method records the fragment completions it used.
COMPLETIONS_KEY = "completed_fragments"


def recorded_completions(results: dict[str, Any]) -> dict[str, str] | None:
    """The fragment completions a method of this run recorded in its headline, or None when none did."""
    found: dict[str, str] | None = None
    for entry in results.get("methods", {}).values():
        rec = (entry.get("headline") or {}).get(COMPLETIONS_KEY)
        if isinstance(rec, dict):
            found = {**(found or {}), **{str(k): str(v) for k, v in rec.items()}}
    return found


def run_completions(lm: TextModel, results: dict[str, Any]) -> dict[str, str]:
    """The run's fragment completions, computed once: reused when an earlier method recorded them.

    A method that calls this records the result in its headline under :data:`COMPLETIONS_KEY`.
    """
    recorded = recorded_completions(results)
    return recorded if recorded is not None else complete_fragments(lm, signal_tokens(results))


def complete_fragments(lm: TextModel, tokens: Sequence[str]) -> dict[str, str]:
    """Words that short fragment tokens stand for, as the (finetuned) model completes them.

    A multi-token name (an invented brand, a rare entity) shows up in the signals as its first piece
    (``' Br'``). Each fragment of 2-5 letters is put after each of :data:`COMPLETION_FRAMES` and
    completed greedily; the word the model completes it to in most frames (3 of 4), when longer
    than the fragment, is the completion.

    Returns:
        ``{token: word}`` for the fragments that completed.
    """
    from lmdiff.config import GenerationConfig

    frags = [t for t in dict.fromkeys(tokens) if _FRAGMENT.match(t.strip()) and t.strip()[:1].isupper()]
    if not frags:
        return {}
    prompts = [f.format(t=t if t.startswith(" ") else " " + t) for t in frags for f in COMPLETION_FRAMES]
    gen = GenerationConfig(temperature=0.0, max_new_tokens=5, batch_size=16)
    outs = lm.generate(prompts, gen, chat=False, progress="")
    found: dict[str, str] = {}
    for i, tok in enumerate(frags):
        words = []
        for j in range(len(COMPLETION_FRAMES)):
            text = tok.strip() + outs[i * len(COMPLETION_FRAMES) + j][0].text
            m = re.match(r"[A-Za-z][A-Za-z'-]*", text)
            if m:
                words.append(m.group(0).rstrip("'-"))
        if words:
            word, n = collections.Counter(words).most_common(1)[0]
            if 2 * n > len(COMPLETION_FRAMES) and len(word) > len(tok.strip()) and word_of(word):
                found[tok] = word
    return found


def collect_signals(
    results: dict[str, Any],
    prompt_texts: Sequence[str],
    *,
    completions: dict[str, str] | None = None,
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
        completions: words that fragment tokens stand for (:func:`complete_fragments`).
        max_signals: how many to follow up.
        per_method: how many tokens of each method's list to read.
        max_covered: prompts that may mention a word before it counts as covered.

    Returns:
        ``(chosen, covered)``.
    """
    found: dict[str, Signal] = {}
    best_rank: dict[str, int] = {}
    for st in iter_signal_tokens(results, per_method, completions):
        if st.word is None:
            continue
        k = st.word.lower()
        sig = found.setdefault(k, Signal(st.word))
        sig.sources.append(f"{st.method}:{st.token!r}")
        best_rank[k] = min(best_rank.get(k, st.rank), st.rank)
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
