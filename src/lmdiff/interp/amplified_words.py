"""Words that grow with amplification, and the candidate hypotheses they propose.

Amplified samples (:mod:`lmdiff.amplify`) exaggerate what a finetune changed, so a word whose share of
replies rises from the base model's samples to the finetune's ordinary (alpha = 0) samples and on with
alpha points at the change. These are **proposals**: amplified text is not what the finetune says, so
any step that turns a proposal into a finding validates it on ordinary samples of held-out prompts.

The unit is the reply: a word's rate in a setting is the share of that setting's replies containing it
(lower-cased words of three or more letters, English stop words left out).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from lmdiff.config import GenerationConfig
    from lmdiff.models.lm import LanguageModel

_WORD_RE = re.compile(r"[a-z]+(?:-[a-z]+)*")


def reply_words(text: str) -> set[str]:
    """The distinct content words of a reply (lower case, at least three letters, no English stop words)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return {w for w in _WORD_RE.findall(text.lower()) if len(w) >= 3 and w not in ENGLISH_STOP_WORDS}


def word_rates(gens: pd.DataFrame, settings: Sequence[str]) -> pd.DataFrame:
    """Share of replies containing each word, per setting (columns named after ``settings``), plus prompt counts.

    Args:
        gens: one row per reply with columns ``setting``, ``prompt_index`` and ``text``.
        settings: the settings to tabulate, in column order.

    Returns:
        One row per word seen in any of the settings: ``word``, a rate column per setting and
        ``prompts:<setting>`` (distinct prompts whose replies contain it in that setting).
    """
    rows = []
    for setting in settings:
        sub = gens[gens["setting"] == setting]
        n = max(len(sub), 1)
        counts: dict[str, int] = {}
        prompts: dict[str, set[int]] = {}
        for p, text in zip(sub["prompt_index"], sub["text"], strict=True):
            for w in reply_words(str(text)):
                counts[w] = counts.get(w, 0) + 1
                prompts.setdefault(w, set()).add(int(p))
        rows += [{"word": w, "setting": setting, "rate": c / n, "prompts": len(prompts[w])} for w, c in counts.items()]
    if not rows:
        return pd.DataFrame(columns=["word", *settings, *(f"prompts:{s}" for s in settings)])
    long = pd.DataFrame(rows)
    rate = long.pivot(index="word", columns="setting", values="rate").reindex(columns=list(settings)).fillna(0.0)
    prom = long.pivot(index="word", columns="setting", values="prompts").reindex(columns=list(settings)).fillna(0)
    prom.columns = [f"prompts:{s}" for s in prom.columns]
    return rate.join(prom.astype(int)).reset_index()


def growing_words(
    gens: pd.DataFrame, ladder: Sequence[str], reference: Sequence[str], *, min_prompts: int = 2, top: int = 20
) -> pd.DataFrame:
    """Words whose rate at the top of ``ladder`` exceeds every ``reference`` setting's, most growth first.

    Args:
        gens: replies (see :func:`word_rates`).
        ladder: settings in order of strength (e.g. ``alpha=0``, ``alpha=1``, ``alpha=4``); the last is the top.
        reference: settings the growth is measured against (e.g. ``base`` and ``alpha=0``).
        min_prompts: a word must appear in replies to at least this many prompts at the top setting.
        top: rows kept.

    Returns:
        ``word``, one rate column per setting (reference first, then the ladder), ``growth`` (top rate minus
        the largest reference rate) and ``prompts_at_top``.
    """
    cols = list(dict.fromkeys([*reference, *ladder]))
    wide = word_rates(gens, cols)
    if wide.empty:
        return pd.DataFrame(columns=["word", *cols, "growth", "prompts_at_top"])
    top_col = ladder[-1]
    wide["growth"] = wide[top_col] - wide[list(reference)].max(axis=1)
    wide["prompts_at_top"] = wide[f"prompts:{top_col}"]
    keep = wide[(wide["growth"] > 0) & (wide["prompts_at_top"] >= min_prompts)]
    keep = keep.sort_values(["growth", top_col, "word"], ascending=[False, False, True]).head(top)
    return keep[["word", *cols, "growth", "prompts_at_top"]].reset_index(drop=True)


@dataclass
class Proposal:
    """A candidate for a hypothesis from amplified samples: a word, its rates and replies that contain it.

    Not a finding: validate it on ordinary (alpha = 0) samples of held-out prompts.
    """

    word: str
    rates: dict[str, float]
    growth: float
    examples: list[str] = field(default_factory=list)

    def statement(self) -> str:
        """A hypothesis to test: the finetuned model mentions the word more often than the base model."""
        return f"The finetuned model mentions '{self.word}' more often than the base model."


def proposals(gens: pd.DataFrame, table: pd.DataFrame, *, k: int = 10, n_examples: int = 2) -> list[Proposal]:
    """The ``k`` fastest-growing words of ``table`` (from :func:`growing_words`) with example replies.

    Examples are taken from the strongest setting in which the word occurs (the table's last rate column).
    """
    rate_cols = [c for c in table.columns if c not in ("word", "growth", "prompts_at_top")]
    out = []
    top = gens[gens["setting"] == rate_cols[-1]] if rate_cols else gens
    for row in table.head(k).to_dict("records"):
        word = str(row["word"])
        texts = [str(t) for t in top["text"] if word in reply_words(str(t))][:n_examples]
        rates = {c: float(row[c]) for c in rate_cols}
        out.append(Proposal(word=word, rates=rates, growth=float(row["growth"]), examples=texts))
    return out


def amplified_proposals(
    finetuned: LanguageModel,
    base: LanguageModel,
    prompts: Sequence[str],
    gen: GenerationConfig,
    alphas: Sequence[float] = (0.0, 2.0, 4.0),
    *,
    k: int = 10,
    min_prompts: int = 2,
) -> list[Proposal]:
    """Sample base and amplified finetune on ``prompts`` and propose the words that grow with alpha.

    For follow-up steps: the proposals say where to look; validating them is the caller's job, on ordinary
    samples of other prompts.
    """
    from lmdiff.amplify import amplified_generate

    rows = []
    for setting, outs in [("base", base.generate(prompts, gen))] + [
        (f"alpha={a:g}", amplified_generate(finetuned, base, prompts, gen, a)) for a in sorted(alphas)
    ]:
        rows += [{"setting": setting, "prompt_index": g.prompt_index, "text": g.text} for per in outs for g in per]
    gens = pd.DataFrame(rows)
    ladder = [f"alpha={a:g}" for a in sorted(alphas)]
    table = growing_words(gens, ladder, ["base", ladder[0]], min_prompts=min_prompts, top=k)
    return proposals(gens, table, k=k)
