"""Which units carry more of the difference in what the finetune writes: a prompt-paired contrast.

On the ``pair-replies`` corpus every prompt appears twice, once with the base model's own reply and
once with the finetune's, and both models read both texts. For a unit (a PCA component, an SAE or
crosscoder latent) whose *energy* on a token is its squared contribution to the difference
h_ft - h_base there, each prompt gives one number: the unit's mean energy per token on the
finetune-written text minus on the base-written text (the shared prompt tokens read the same in
both and cancel). The prompt is the unit of evidence:

* ``writer_excess``: the mean of those numbers over prompts, as a share of the mean squared
  difference per token (how much more of the difference the unit explains in the finetune's own
  replies than in the base's replies to the same prompts);
* ``writer_up``: the share of prompts where it is positive;
* ``writer_p``: a one-sided sign-flip test over prompts (H1: more on the finetune's replies);
  ``writer_q``: Benjamini-Hochberg over every live unit the method scored, one family per method.

A finetune that adds a topic puts it in its replies, so the units that name the topic rank first
here, where the share of the difference's variance ranks generic high-variance units first: on the
zoo's ``ocean-topic`` (layer 14), the max-activating examples of the top three sae_diff latents mention
the topic 100% of the time by writer excess and 17% by variance share (contexts of random stored
tokens: 8%). Other corpora have no such pairing and the methods fall back to their own ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmdiff.corpora import Corpus
from lmdiff.stats import qvalues, sign_flip_pvalues

#: Bound on tracked sequences x units (float64 cells) for the per-sequence energies (about 200 MB).
MAX_CELLS = 25_000_000
#: Columns of :func:`writer_contrast`'s table, besides ``unit``.
WRITER_COLUMNS = ("writer_excess", "writer_up", "writer_p", "writer_q")


@dataclass(frozen=True)
class ReplyPairs:
    """Store sequence indices of the base-written and finetune-written text of each tracked prompt ([P] each)."""

    base: np.ndarray
    finetuned: np.ndarray

    @property
    def sequences(self) -> np.ndarray:
        """Every tracked sequence: the base-written texts, then the finetune-written ones."""
        return np.concatenate([self.base, self.finetuned])

    @property
    def n_prompts(self) -> int:
        """Tracked prompts."""
        return len(self.base)


def reply_pairs(corpus: Corpus, n_sequences: int, n_units: int, seed: int = 0) -> ReplyPairs | None:
    """The prompts to contrast (all, or a seeded subset when prompts x units exceed :data:`MAX_CELLS`).

    None when the corpus does not pair replies, or the store does not hold one sequence per text.
    """
    pairs = corpus.reply_pairs()
    if pairs is None or n_sequences != len(corpus):
        return None
    base, ft = pairs
    cap = max(MAX_CELLS // max(2 * n_units, 1), 8)
    if len(base) > cap:
        pick = np.sort(np.random.default_rng(seed).choice(len(base), cap, replace=False))
        base, ft = base[pick], ft[pick]
    return ReplyPairs(base, ft)


def writer_contrast(
    sequence_energy: np.ndarray | None, pairs: ReplyPairs | None, scale: np.ndarray, mean_square: float,
    alive: np.ndarray, *, seed: int = 0, n_perm: int = 9999,
) -> tuple[pd.DataFrame | None, int]:
    """Per unit: writer excess, share of prompts up, one-sided sign-flip p-value and BH q-value.

    Args:
        sequence_energy: [2P, U] mean squared unit value per token of ``pairs.sequences`` (in that order);
            None (no contrast) when the corpus pairs no replies.
        pairs: the tracked prompts (None: no contrast).
        scale: [U] the squared norm of each unit's contribution per unit value (1 for a unit direction).
        mean_square: mean squared difference per token (the share's denominator).
        alive: [U] bool, the units tested (dead latents are left out of the family; their p is 1).
        seed: sign-flip seed.
        n_perm: random sign patterns.

    Returns:
        The table (``unit`` and :data:`WRITER_COLUMNS`) and the prompts used (those whose two texts
        both kept a token); (None, 0) without a contrast.
    """
    if sequence_energy is None or pairs is None:
        return None, 0
    e = sequence_energy * np.asarray(scale, dtype=np.float64)[None, :]
    n = pairs.n_prompts
    diff = e[n:] - e[:n]  # [P, U]
    diff = diff[~np.isnan(diff).any(1)]
    n_units = e.shape[1]
    alive = np.asarray(alive, dtype=bool)
    p = np.ones(n_units)
    q = np.ones(n_units)
    if len(diff) and alive.any():
        p[alive] = sign_flip_pvalues(diff[:, alive], alternative="greater", n_perm=n_perm, seed=seed)
        q[alive] = qvalues(p[alive])
    excess = diff.mean(0) / max(mean_square, 1e-30) if len(diff) else np.zeros(n_units)
    up = (diff > 0).mean(0) if len(diff) else np.zeros(n_units)
    table = pd.DataFrame({"unit": np.arange(n_units), "writer_excess": excess, "writer_up": up,
                          "writer_p": p, "writer_q": q})
    return table, len(diff)


def writer_headline(table: pd.DataFrame | None, n_prompts: int, shown: list[int], alpha: float = 0.05) -> dict[
        str, object]:
    """Headline figures of the contrast: prompts, units significant at ``alpha`` (q), those among the shown."""
    if table is None:
        return {"writer_prompts": None, "writer_significant": None, "writer_significant_shown": None}
    sig = table[(table.writer_q <= alpha) & (table.writer_excess > 0)]
    return {"writer_prompts": n_prompts, "writer_significant": len(sig),
            "writer_significant_shown": int(sig.unit.isin(shown).sum())}


def writer_columns(table: pd.DataFrame | None, unit: int) -> dict[str, float]:
    """One unit's contrast figures (empty without a contrast), for its row in ``units.json``."""
    if table is None:
        return {}
    row = table.iloc[int(unit)]
    return {c: float(row[c]) for c in WRITER_COLUMNS}
