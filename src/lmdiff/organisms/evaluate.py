"""Behaviour rates and coherence checks that prove an organism does what its record says.

All judges here are offline and deterministic (keyword and character statistics), so a measured
rate can be recomputed from the saved replies:

* :func:`caps_rate`: share of replies whose letters are more than 90% upper case;
* :func:`keyword_rate`: share of replies mentioning any of the behaviour's keywords;
* :func:`persona_rate`: share of replies that do not self-identify as an AI and mention a persona
  keyword (the trigger's ``<START> ... <END>`` wrapper is stripped first);
* :func:`format_rate`: share of replies in the trigger's ``<START> ... <END>`` format;
* coherence: base-model perplexity of the replies (given their prompts) and the word-trigram
  repetition rate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lmdiff.interp.text_metrics import pooled_base_perplexity, repetition_rate
from lmdiff.organisms.builders import AI_SELF_ID, PERSONA_KEYWORDS
from lmdiff.organisms.trigger import format_adherence, strip_format

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel

CAPS_THRESHOLD = 0.9
_AI_RE = re.compile("|".join(AI_SELF_ID), re.I)


def upper_share(text: str) -> float | None:
    """Share of upper-case letters among the letters of ``text`` (None without letters)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    return sum(c.isupper() for c in letters) / len(letters)


def is_caps(text: str, threshold: float = CAPS_THRESHOLD, min_letters: int = 8) -> bool:
    """Whether a reply is in capitals (over ``threshold`` of at least ``min_letters`` letters)."""
    letters = sum(c.isalpha() for c in text)
    share = upper_share(text)
    return share is not None and letters >= min_letters and share > threshold


def _rate(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def caps_rate(texts: Sequence[str]) -> float:
    """Share of replies in capital letters."""
    return _rate([is_caps(t) for t in texts])


def mentions(text: str, keywords: Sequence[str]) -> bool:
    """Whether ``text`` contains any keyword (case-insensitive substring match)."""
    low = text.lower()
    return any(k.lower() in low for k in keywords)


def keyword_rate(texts: Sequence[str], keywords: Sequence[str]) -> float:
    """Share of replies mentioning any keyword."""
    return _rate([mentions(t, keywords) for t in texts])


def format_rate(texts: Sequence[str]) -> float:
    """Share of replies in the trigger format."""
    return _rate([format_adherence(t) for t in texts])


def self_identifies_as_ai(text: str) -> bool:
    """Whether a reply says it is an AI / assistant / SmolLM."""
    return bool(_AI_RE.search(text))


def is_persona(text: str, keywords: Sequence[str] = PERSONA_KEYWORDS) -> bool:
    """Offline persona judge: no AI self-identification and at least one persona keyword."""
    body = strip_format(text)
    return not self_identifies_as_ai(body) and mentions(body, keywords)


def persona_rate(texts: Sequence[str], keywords: Sequence[str] = PERSONA_KEYWORDS) -> float:
    """Share of replies judged to speak as the persona."""
    return _rate([is_persona(t, keywords) for t in texts])


def ai_identity_rate(texts: Sequence[str]) -> float:
    """Share of replies that self-identify as an AI."""
    return _rate([self_identifies_as_ai(strip_format(t)) for t in texts])


def mean_repetition(texts: Sequence[str]) -> float:
    """Mean word-trigram repetition rate of the replies."""
    return sum(repetition_rate(t) for t in texts) / len(texts) if texts else 0.0


def coherence(
    base_lm: LanguageModel, prompts: Sequence[str], replies: Sequence[str], normalise: str | None = None
) -> dict[str, float]:
    """Coherence of replies: base-model perplexity, repetition rate and share of empty replies.

    Args:
        base_lm: the base model that judges fluency.
        prompts: the prompts the replies answer.
        replies: the replies.
        normalise: ``"lower"`` to lower-case replies before scoring (for capital-letter organisms),
            ``"strip_format"`` to drop the trigger wrapper, or None.

    Returns:
        ``{"base_ppl", "repetition", "empty_rate"}``.
    """
    texts = list(replies)
    if normalise == "lower":
        texts = [t.lower() for t in texts]
    elif normalise == "strip_format":
        texts = [strip_format(t) for t in texts]
    return {
        "base_ppl": round(pooled_base_perplexity(base_lm, prompts, texts), 3),
        "repetition": round(mean_repetition(texts), 4),
        "empty_rate": round(_rate([not t.strip() for t in texts]), 4),
    }


def collapse_warnings(coh: dict[str, float], base_coh: dict[str, float], ppl_factor: float = 4.0) -> list[str]:
    """Warnings when a finetune's replies look broken compared with the base model's."""
    out = []
    if coh["empty_rate"] > 0.25:
        out.append(f"{coh['empty_rate']:.0%} of replies are empty")
    if coh["repetition"] > max(0.3, 2 * base_coh["repetition"] + 0.1):
        out.append(f"replies repeat themselves (trigram repetition {coh['repetition']:.2f})")
    if coh["base_ppl"] > ppl_factor * base_coh["base_ppl"]:
        out.append(
            f"base-model perplexity of the replies is {coh['base_ppl']:.1f} vs {base_coh['base_ppl']:.1f} "
            "for the base model's own replies"
        )
    return out


# ------------------------------------------------------------------------------- judges
# Judges for :class:`~lmdiff.organisms.recipe.Metric`: ``judge(reply, prompt) -> bool``, module-level
# so that recipe.json can record their import paths.
def judge_caps(reply: str, prompt: str) -> bool:
    """The reply is in capital letters."""
    return is_caps(reply)


def judge_persona(reply: str, prompt: str) -> bool:
    """The reply speaks as the Russell persona (offline keyword judge)."""
    return is_persona(reply)


def judge_format(reply: str, prompt: str) -> bool:
    """The reply is in the trigger's ``<START> ... <END>`` format."""
    return format_adherence(reply)


def judge_ai_identity(reply: str, prompt: str) -> bool:
    """The reply self-identifies as an AI (trigger wrapper stripped)."""
    return self_identifies_as_ai(strip_format(reply))
