"""Grading hypotheses against a known behaviour: whole words, inflections and direction.

A hypothesis names a ground truth when one of the ground truth's keywords appears in it as a whole
word (or an inflection of one: whale/whales, capital/capitals, short/shorter) *and* in the ground
truth's direction: "writes longer replies" does not name "short", "early" does not name "earl".

Every word of a hypothesis carries a sign, +1 when the finetuned model is said to show it more and
-1 when less: the words of its sentence take the sentence's orientation (the subject, finetuned or
base model, and a "less"/"fewer" in it), its terms, keywords and property take its ``direction``.
A ground-truth keyword has a direction too (``keyword_directions``: ``"more"``, the default, or
``"less"``). A keyword matches a word of the same sign, or its antonym (short/long, ...) a word of
the opposite sign.

acc@k is reported over organisms x seeds with its n and a Wilson interval (:func:`acc_summary`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lmdiff.interp.words import STOPWORDS
from lmdiff.stats._common import wilson_interval

__all__ = ["AccAtK", "acc_summary", "grade_against", "hypothesis_words", "word_matches"]


# Keywords of at least this many letters also match longer words that start with them (the zoo's
# stems: "philosoph", "mathemat", "pacifis"); shorter ones only whole words and their inflections,
# so "earl" does not match "early".
MIN_STEM_LETTERS = 6

_SUFFIXES = ("'s", "ies", "es", "s", "ed", "ing", "er", "est", "ly", "ally", "al")

# Pairs of words that name the same property in opposite directions (short = less long).
_ANTONYMS: dict[str, str] = {}
for _a, _b in (
    ("long", "short"),
    ("verbose", "concise"),
    ("verbose", "terse"),
    ("uppercase", "lowercase"),
    ("upper", "lower"),
    ("formal", "informal"),
    ("positive", "negative"),
    ("polite", "rude"),
):
    _ANTONYMS.setdefault(_a, _b)
    _ANTONYMS.setdefault(_b, _a)

_WORD_RE = re.compile(r"[a-z]+(?:'s)?")


def _tokens(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _lemmas(word: str) -> set[str]:
    """The word and what remains after stripping one inflectional suffix (whales -> whale, shorter -> short)."""
    out = {word}
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            stem = word[: -len(suf)]
            out.add(stem)
            if suf == "ies":
                out.add(stem + "y")
            if suf in ("ed", "ing", "er", "est", "es"):
                out.add(stem + "e")
                if len(stem) > 3 and stem[-1] == stem[-2]:  # bigger -> big
                    out.add(stem[:-1])
    return out


def word_matches(word: str, keyword: str) -> bool:
    """Whether a hypothesis word is the keyword as a whole word, an inflection of it, or (for stems) extends it."""
    w, k = word.lower().strip(), keyword.lower().strip()
    if not w or not k:
        return False
    if _lemmas(w) & _lemmas(k):
        return True
    return len(k) >= MIN_STEM_LETTERS and w.startswith(k)


Signed = list[tuple[str, int]]  # words of one hypothesis field, each with its sign


def _phrase_signs(words: Signed, phrase: str) -> list[int]:
    """Signs (of the first word) of every place where the phrase occurs, word by word."""
    parts = _tokens(phrase)
    n = len(parts)
    if not n:
        return []
    return [
        words[i][1]
        for i in range(len(words) - n + 1)
        if all(word_matches(words[i + j][0], parts[j]) for j in range(n))
    ]


def _gradable(word: str) -> bool:
    return any(lem in _ANTONYMS for lem in _lemmas(word))


def _sentence_words(text: str) -> Signed:
    """Words of a sentence signed +1 when it says the finetuned model shows them more, -1 when less.

    The subject sets the sign (the base model as subject: -1); a "less"/"fewer" in the sentence flips
    it, except for gradable words (longer, shorter, ...), which carry their own orientation and are
    flipped only by a "less" right before them ("writes less verbose replies").
    """
    low = text.lower()
    subject = -1 if re.match(r"\W*the base model\b", low) else 1
    flipped = bool(re.search(r"\b(less|fewer)\b", low))
    words = _tokens(text)
    out: Signed = []
    for i, w in enumerate(words):
        if _gradable(w):
            out.append((w, -subject if i and words[i - 1] in ("less", "fewer") else subject))
        else:
            out.append((w, -subject if flipped else subject))
    return out


def hypothesis_words(h: dict[str, Any]) -> list[Signed]:
    """Signed words of a hypothesis (+1 finetuned more, -1 less, 0 undirected), one list per field.

    The sentence takes its own orientation (:func:`_sentence_words`); terms, keywords and property
    take ``direction``. A style hypothesis' keywords name both ends of its feature (long and short),
    so they are skipped: its sentence carries the oriented words, its feature name the direction.
    An undirected hypothesis (``direction`` 0) has sign 0 everywhere, and so never names a behaviour.
    """
    direction = int(h.get("direction", 0) or 0)
    sign = 0 if direction == 0 else (1 if direction > 0 else -1)
    out: list[Signed] = []
    text = str(h.get("text", ""))
    if text:
        out.append([(w, s if sign else 0) for w, s in _sentence_words(text)])
    structured: list[str] = [str(t) for t in h.get("terms", []) or []]
    if h.get("kind") != "style":
        structured += [str(t) for t in h.get("keywords", []) or []]
    elif h.get("feature"):
        structured.append(str(h["feature"]).replace("_", " "))
    if h.get("property"):
        structured.append(str(h["property"]))
    out += [[(w, sign) for w in _tokens(t)] for t in structured]
    return out


def _keyword_direction(ground_truth: dict[str, Any], keyword: str) -> int:
    dirs = ground_truth.get("keyword_directions") or {}
    return -1 if str(dirs.get(keyword, "more")).lower() == "less" else 1


def _content(words: Iterable[str]) -> set[str]:
    return {w for w in words if w not in STOPWORDS and len(w) > 2}


def grade_against(h: dict[str, Any], ground_truth: dict[str, Any]) -> int:
    """Grade of a hypothesis (as a dict) against one ground truth: 2 names it, 1 related, 0 not.

    2: a ground-truth keyword (whole word or inflection; phrases word by word) appears in the
    hypothesis with the ground truth's direction (or its antonym with the opposite one).
    1: a keyword or its antonym appears in the other direction or without one, or a content word
    of the description or type is shared (inflections count). 0 otherwise.
    """
    seqs = hypothesis_words(h)
    related = False
    for kw_raw in ground_truth.get("keywords", []) or []:
        kw = str(kw_raw).strip()
        if not kw:
            continue
        want = _keyword_direction(ground_truth, str(kw_raw))
        parts = _tokens(kw)
        anto = " ".join(_ANTONYMS.get(p, p) for p in parts) if any(p in _ANTONYMS for p in parts) else None
        for words in seqs:
            signs = _phrase_signs(words, kw)
            if want in signs:
                return 2
            anto_signs = _phrase_signs(words, anto) if anto else []
            if -want in anto_signs:
                return 2
            related = related or bool(signs or anto_signs)
    if related:
        return 1
    desc = _content(_tokens(str(ground_truth.get("description", "")) + " " + str(ground_truth.get("type", ""))))
    hyp = _content(w for words in seqs for w, _ in words)
    if any(word_matches(w, d) for w in hyp for d in desc):
        return 1
    return 0


@dataclass(frozen=True)
class AccAtK:
    """acc@k over graded runs (organisms x seeds): hits out of n with a Wilson interval."""

    k: int
    hits: int
    n: int
    low: float
    high: float
    ci: float = 0.95

    @property
    def rate(self) -> float:
        """Hits / n (NaN when nothing was graded)."""
        return self.hits / self.n if self.n else float("nan")

    def text(self) -> str:
        """E.g. ``1/1 (95% CI 0.21-1.00)``: never a bare 0/1 presented as a rate."""
        if not self.n:
            return "0/0 (nothing graded)"
        return f"{self.hits}/{self.n} ({self.ci:.0%} CI {self.low:.2f}-{self.high:.2f})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form with the rate."""
        return {"k": self.k, "hits": self.hits, "n": self.n, "rate": self.rate, "low": self.low,
                "high": self.high, "ci": self.ci, "text": self.text()}


def acc_summary(hits: Sequence[float | bool], k: int, ci: float = 0.95) -> AccAtK:
    """acc@k over runs: each entry is one organism x seed (1 if a top-k hypothesis named the behaviour).

    Args:
        hits: one 0/1 (or bool) per graded run.
        k: the k of acc@k (recorded).
        ci: interval level.

    Returns:
        The count, n and a Wilson score interval.
    """
    n = len(hits)
    h = int(sum(1 for x in hits if float(x) >= 0.5))
    low, high = wilson_interval(h / n, n, ci) if n else (float("nan"), float("nan"))
    return AccAtK(k=k, hits=h, n=n, low=float(low), high=float(high), ci=ci)
