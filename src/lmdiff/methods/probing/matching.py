"""Reading short answers: is the known answer there, and which named object does the answer give?

Answers are compared after :func:`~lmdiff.methods.probing.facts.fold` (lower case, accents
stripped, punctuation as spaces) on whole words, so "Paris." and "PARIS" match Paris, "São Paulo"
matches "Sao Paulo", and "Parisian" or "Comparison" do not. Only the answer's first non-empty line
counts: a plain completion often goes on with an invented next question and answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from lmdiff.methods.probing.facts import fold, vocabulary

__all__ = ["answer_span", "capitalised_spans", "mentions", "named_object"]

_SPAN = re.compile(r"[A-Z][\w'’\-]*(?:\s+(?:of|the|de|del|la|le|du|di)?\s*[A-Z][\w'’\-]*)*")
_STOP = frozenset(fold(w) for w in (
    "The", "A", "An", "It", "Its", "This", "That", "These", "Those", "There", "I", "You", "We", "They", "He", "She",
    "In", "On", "At", "If", "When", "What", "Which", "Who", "Where", "Why", "How", "Yes", "No", "Q", "A", "Answer",
    "Some", "Many", "One", "As", "For", "Of", "And", "But", "Or", "To", "From", "With", "Also", "Here", "My",
    "Sure", "Of course", "However", "Additionally", "Another", "Its most", "City", "Capital", "Country",
))


def answer_span(text: str) -> str:
    """The first non-empty line of an answer."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _find(folded: str, name: str) -> int:
    """Start of the first whole-word occurrence of folded ``name`` in ``folded`` (-1 if none)."""
    return f" {folded} ".find(f" {name} ")


def mentions(text: str, aliases: Iterable[str]) -> bool:
    """Whether the answer's first line names any of ``aliases`` (whole words, folded)."""
    folded = fold(answer_span(text))
    return any(a and _find(folded, fold(a)) >= 0 for a in aliases)


def named_object(text: str, relation: str, exclude: Sequence[str] = ()) -> str | None:
    """The object (from the source's names for ``relation``) the answer names first, or None.

    At the same position the longest name wins ("Papua New Guinea" over "Guinea"); names in
    ``exclude`` (the question's subject) are skipped, since answers often repeat the subject.
    """
    folded = fold(answer_span(text))
    skip = {fold(e) for e in exclude}
    best: tuple[int, int, str] | None = None
    for name in vocabulary(relation):
        f = fold(name)
        if not f or f in skip:
            continue
        i = _find(folded, f)
        if i >= 0 and (best is None or (i, -len(f)) < (best[0], best[1])):
            best = (i, -len(f), name)
    return best[2] if best else None


def capitalised_spans(text: str, exclude: Sequence[str] = ()) -> list[str]:
    """Capitalised name-like spans of the answer's first line ("Eiffel Tower", "Colosseum"), folded and deduplicated.

    Common sentence-initial words and the names in ``exclude`` (and their words) are dropped; a
    leading "The" is cut.
    """
    skip = {fold(e) for e in exclude}
    skip |= {w for e in skip for w in e.split()}
    out: list[str] = []
    for m in _SPAN.finditer(answer_span(text)):
        f = fold(m.group(0))
        words = f.split()
        while words and (words[0] in _STOP or words[0] in skip):
            words = words[1:]
        while words and words[-1] in skip:
            words = words[:-1]
        span = " ".join(words)
        if span and span not in _STOP and span not in skip and len(span) >= 3 and span not in out:
            out.append(span)
    return out
