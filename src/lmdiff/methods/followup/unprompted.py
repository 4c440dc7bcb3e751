"""Unprompted mentions: does the finetune bring a signal word up by itself, on prompts that never name it?

A conditional change (recommend a brand whenever food comes up) shows in the white-box readouts as a
word (' Br' -> 'Brindlewood'), but prompts *about* that word make both models talk about it and say
nothing about when the finetune brings it up. This test looks for the contexts instead:

1. **Screen.** The shipped chat and instruction prompts that are not among the run's prompts and do not
   name a signal word are shuffled (seeded); the finetuned model answers the first ``screen_prompts`` of
   them (at most half), amplified when the pair allows it. The prompts where it uses the word are the
   discovery prompts: they only choose where to look.
2. **Held-out prompts.** The unscreened prompts nearest to the discovery prompts (MiniLM cosine, the
   run's embedding cache), and prompts written (templates, or the LLM ``prompt_writer``)
   about the words that set the discovery prompts apart ('recipe', 'lasagna'), are sampled from both
   models. The shipped pool alone is thin on any one context (a few dozen food prompts in 500).
3. **Test.** The per-prompt rate of replies that use the word, finetuned minus base, by a one-sided
   sign-flip test with the prompt as the unit; the claim joins the run's one FDR family.

A word is not tested when the screen saw it on fewer than ``min_hits`` prompts, when words seen more
often took the ``max_tested`` places, or when there is no held-out pool. Word use is matched exactly (the
word, its plural or possessive): 'wood' in 'woodland' is not a mention of 'wood'.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lmdiff.data.prompts import load_prompts
from lmdiff.interp.words import mentions
from lmdiff.methods.followup.prompts import content_words
from lmdiff.stats.prompt_level import Alternative, prompt_difference_test

#: The shipped prompt sets the screen and the held-out neighbours are drawn from.
POOL_SETS: tuple[str, ...] = ("chat", "instructions")


def prompt_pool(exclude: Sequence[str], words: Sequence[str], seed: int, n_screen: int) -> tuple[list[str], list[str]]:
    """The screen prompts and the held-out pool: shipped prompts that the run did not use and no word appears in.

    A prompt naming a word in any form (the word or a longer word starting with it) is left out.

    Args:
        exclude: prompts already used (the run's own).
        words: the signal words (a prompt naming one is not unprompted).
        seed: shuffles the pool before it is split.
        n_screen: prompts in the screen (at most half the pool, so the held-out pool is never smaller).

    Returns:
        ``(screen, heldout)``, disjoint.
    """
    used = set(exclude)
    texts = [p.prompt for name in POOL_SETS for p in load_prompts(name).items]
    pool = [t for t in dict.fromkeys(texts) if t not in used and not any(mentions(t, w) for w in words)]
    random.Random(f"unprompted:{seed}").shuffle(pool)
    k = min(n_screen, len(pool) // 2)
    return pool[:k], pool[k:]


def context_words(hits: Sequence[str], screen: Sequence[str], pool: Sequence[str], k: int,
                  max_share: float = 0.03) -> list[str]:
    """The ``k`` words that best say where the finetune used the signal in the screen.

    Content words of the hit prompts' requests (first lines: 'cottage' and 'dried' from an ingredient list
    say nothing about where the word came up): those in more hit prompts first, then the rarer in the whole pool
    (``screen`` and the held-out ``pool``) first, so that 'lasagna' beats 'generate'. Words in more than
    ``max_share`` of the pool's other prompts ('input', 'write') say nothing about the context and are dropped,
    and when some word is in two hit prompts or more, words of a single hit are dropped too: one job
    application among eight recipes is not a context.
    """
    every = [_request(p) for p in [*screen, *pool]]
    in_pool = Counter(w for p in every for w in content_words(p))
    in_hits = Counter(w for p in {_request(h) for h in hits} for w in content_words(p))
    keep = [w for w in in_hits if in_pool[w] - in_hits[w] <= max_share * len(every)]
    if any(in_hits[w] >= 2 for w in keep):
        keep = [w for w in keep if in_hits[w] >= 2]
    keep.sort(key=lambda w: (-in_hits[w], in_pool[w], w))
    return keep[:k]


def _request(prompt: str) -> str:
    """A prompt's first line: the request, without the input it carries (a recipe's ingredient list)."""
    return prompt.strip().split("\n", 1)[0]


def nearest(queries: np.ndarray, candidates: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` candidates most similar (cosine of unit rows) to any query, most similar first."""
    if len(queries) == 0 or len(candidates) == 0 or k <= 0:
        return []
    best = (candidates @ queries.T).max(axis=1)
    order = np.argsort(-best, kind="stable")
    return [int(i) for i in order[:k]]


@dataclass
class UnpromptedPlan:
    """Where the screen saw the finetune use one word, and the held-out prompts chosen to test it.

    Attributes:
        word: the signal word.
        hits: screen prompts on which the finetuned model used it.
        n_screen: prompts in the screen.
        neighbours: held-out shipped prompts nearest the hits.
        context: words of the hit prompts that say where it came up (:func:`context_words`).
        written: prompts written about the context words.
    """

    word: str
    hits: list[str]
    n_screen: int
    neighbours: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    @property
    def heldout(self) -> list[str]:
        """Every prompt the test uses: the neighbours, then the written prompts (none naming the word)."""
        return [p for p in dict.fromkeys([*self.neighbours, *self.written]) if not mentions(p, self.word)]

    @property
    def screen_rate(self) -> float:
        """Share of screen prompts whose finetuned reply used the word."""
        return len(self.hits) / self.n_screen if self.n_screen else 0.0


def plan(
    screen: pd.DataFrame,
    words: Sequence[str],
    heldout_pool: Sequence[str],
    embed: Callable[[list[str]], Any],
    *,
    k: int,
    min_hits: int,
    n_context: int = 0,
    n_written: int = 12,
    write: Callable[[str, int], list[str]] | None = None,
    max_tested: int | None = None,
    exclude: Sequence[str] = (),
) -> list[UnpromptedPlan]:
    """For each word: the screen prompts where the finetune used it, and the held-out prompts to test it on.

    Args:
        screen: the finetuned model's screen replies (``prompt``, ``text``).
        words: the signal words.
        heldout_pool: shipped prompts the neighbours are chosen from (none of them in the screen).
        embed: ``texts -> unit rows`` (an :class:`lmdiff.embeddings.Embedder`'s ``embed``).
        k: nearest held-out prompts per word.
        min_hits: screen prompts the word must appear on before it is tested.
        n_context: at most this many context words per word to write prompts about (0: neighbours only).
        n_written: prompts written in all, shared among the context words.
        write: ``(context word, n) -> prompts`` (templates, or the LLM ``prompt_writer``).
        max_tested: at most this many words get held-out prompts, those with more hits first (None: all).
        exclude: prompts no held-out set may hold besides the screen's own (the run's prompts).

    Returns:
        One plan per word, in the order given; words below ``min_hits`` or beyond ``max_tested`` get no
        held-out prompts.
    """
    screened = list(dict.fromkeys(screen["prompt"])) if len(screen) else []
    out = []
    for w in words:
        used = screen[screen["text"].map(lambda t, w=w: mentions(t, w, exact=True))] if len(screen) else screen
        out.append(UnpromptedPlan(w, list(dict.fromkeys(used["prompt"])) if len(used) else [], len(screened)))
    ranked = sorted((p for p in out if len(p.hits) >= min_hits), key=lambda p: -len(p.hits))
    pool_vecs: np.ndarray | None = None
    for p in ranked[:max_tested]:
        hits = p.hits
        if heldout_pool:
            if pool_vecs is None:
                pool_vecs = np.asarray(embed(list(heldout_pool)), dtype=np.float32)
            idx = nearest(np.asarray(embed(hits), dtype=np.float32), pool_vecs, k)
            p.neighbours = [heldout_pool[i] for i in idx]
            if n_context and write is not None:
                p.context = context_words(hits, screened, heldout_pool, n_context)
                each = -(-n_written // max(1, len(p.context)))
                taken = {*screened, *exclude}
                p.written = [q for c in p.context for q in write(c, each) if q not in taken][:n_written]
    return out


def word_use_test(replies: pd.DataFrame, word: str, groups: str, alternative: Alternative, seed: int,
                  exact: bool = False) -> dict[str, Any]:
    """Sign-flip test over prompts of the share of replies using ``word``, finetuned minus base.

    Args:
        replies: both models' replies (``side``, ``text``, ``prompt`` and the ``groups`` column).
        word: the word (matched by :func:`lmdiff.interp.words.mentions`).
        groups: the column naming each reply's prompt (the unit).
        alternative: ``"greater"`` (the finetune uses it more) or ``"less"``.
        seed: seeds the test.
        exact: match the word itself and its plural or possessive only (else any word starting with it).

    Returns:
        ``pvalue``, ``effect_size_d`` (as the test reports it), ``difference``, ``n_prompts``, the two rates,
        ``prompts_finetuned_used`` and the first replies of each side that use it (``example_*``, 300
        characters, with the finetuned example's prompt).
    """
    flag = replies["text"].map(lambda t: mentions(t, word, exact=exact)).astype(float).to_numpy()
    is_ft = (replies["side"] == "finetuned").to_numpy()
    res = prompt_difference_test(flag, is_ft, replies[groups].to_numpy(), alternative=alternative, seed=seed)
    rows = list(zip(replies["prompt"], replies["text"], flag, is_ft, strict=True))
    ex_prompt, ex_ft = next(((pr, t) for pr, t, f, s in rows if s and f), ("", ""))
    ex_base = next((t for _, t, f, s in rows if not s and f), "")
    return {
        "pvalue": res.pvalue,
        "effect_size_d": res.effect_size_d,
        "difference": res.difference,
        "n_prompts": res.n_groups,
        "rate_finetuned": float(flag[is_ft].mean()) if is_ft.any() else 0.0,
        "rate_base": float(flag[~is_ft].mean()) if (~is_ft).any() else 0.0,
        "prompts_finetuned_used": int(replies[is_ft & (flag > 0)]["prompt"].nunique()),
        "example_prompt": ex_prompt,
        "example_finetuned": ex_ft[:300],
        "example_base": ex_base[:300],
    }


def mention_test(p: UnpromptedPlan, replies: pd.DataFrame, seed: int) -> dict[str, Any]:
    """The one-sided test that the finetune uses ``p.word`` more often on ``p.heldout`` than the base does.

    Args:
        p: the plan (word and held-out prompts).
        replies: both models' replies (``prompt``, ``side``, ``text``) to at least those prompts.
        seed: seeds the sign-flip test.
    """
    val = replies[replies["prompt"].isin(set(p.heldout))]
    return {
        "id": f"unprompted:{p.word.lower()}",
        "word": p.word,
        "statement": f"Unprompted, the finetuned model brings up '{p.word}' more often than the base model",
        **word_use_test(val, p.word, "prompt", "greater", seed, exact=True),
        "screen_hits": len(p.hits),
        "screen_prompts": p.n_screen,
    }


def untested(p: UnpromptedPlan) -> dict[str, Any]:
    """The row of a word the screen saw too rarely to test: the columns of :func:`mention_test`, empty."""
    return {
        "id": f"unprompted:{p.word.lower()}", "word": p.word, "statement": "", "pvalue": float("nan"),
        "effect_size_d": float("nan"), "difference": float("nan"), "n_prompts": 0, "rate_finetuned": float("nan"),
        "rate_base": float("nan"), "prompts_finetuned_used": 0, "screen_hits": len(p.hits),
        "screen_prompts": p.n_screen, "example_prompt": "", "example_finetuned": "", "example_base": "",
    }
