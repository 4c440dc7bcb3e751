"""One pass over the store: each unit's top (and bottom) activating tokens, firing frequency and energy.

A *unit* is a PCA component or a dictionary latent; ``score`` maps rows [N, S, D] to unit values
[N, U]. Tokens are read in store order, chunk by chunk, and only the running top ``n_top`` per
unit is kept, so memory does not grow with the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lmdiff.activations import ActivationStore
from lmdiff.dictionaries.stream import View, read_view

Score = Callable[[np.ndarray], torch.Tensor]


@dataclass
class UnitStats:
    """Per-unit results of :func:`unit_stats` (U units)."""

    top_values: np.ndarray  # [U, n_top]
    top_tokens: np.ndarray  # [U, n_top] global token indices (-1: none)
    bottom_values: np.ndarray  # [U, n_top] (most negative first), only for signed units
    bottom_tokens: np.ndarray
    frequency: np.ndarray  # [U] share of tokens where the unit is > 0
    energy: np.ndarray  # [U] sum of value^2 over tokens
    n_tokens: int
    #: [len(sequences), U] mean value^2 per kept token of each tracked sequence (NaN: none kept), when asked for.
    sequence_energy: np.ndarray | None = None


def _merge(vals: torch.Tensor, idx: torch.Tensor, new_v: torch.Tensor, new_i: torch.Tensor,
           n: int) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.cat([vals, new_v], 1)
    i = torch.cat([idx, new_i], 1)
    top = torch.topk(v, min(n, v.shape[1]), dim=1)
    return top.values, torch.gather(i, 1, top.indices)


def unit_stats(
    store: ActivationStore, layer: int, view: View, score: Score, n_units: int, *, n_top: int = 10,
    min_position: int = 1, signed: bool = False, chunk_tokens: int = 8192, sequences: np.ndarray | None = None,
) -> UnitStats:
    """Top-``n_top`` tokens of each unit (and bottom ones when ``signed``), frequency and energy over the store.

    ``sequences`` (store sequence indices) also gets each listed sequence's mean squared value per
    kept token and unit (``UnitStats.sequence_energy``, in the order given), in the same pass.
    """
    neg = torch.full((n_units, 0), float("-inf"))
    top_v, top_i = neg.clone(), torch.zeros((n_units, 0), dtype=torch.long)
    bot_v, bot_i = neg.clone(), torch.zeros((n_units, 0), dtype=torch.long)
    fired = torch.zeros(n_units, dtype=torch.float64)
    energy = torch.zeros(n_units, dtype=torch.float64)
    total = 0
    slot = seq_sum = seq_n = None
    if sequences is not None:
        slot = torch.full((store.n_sequences,), -1, dtype=torch.long)
        slot[torch.as_tensor(np.asarray(sequences, dtype=np.int64))] = torch.arange(len(sequences))
        seq_sum = torch.zeros(len(sequences), n_units, dtype=torch.float64)
        seq_n = torch.zeros(len(sequences), dtype=torch.float64)
    for start in range(0, store.n_tokens, chunk_tokens):
        stop = min(start + chunk_tokens, store.n_tokens)
        keep = store.kept_mask(layer, start, stop, min_position)
        if not keep.any():
            continue
        rows = read_view(store, layer, view, start, stop)[keep]
        gidx = torch.as_tensor(np.arange(start, stop)[keep])
        with torch.no_grad():
            vals = score(rows).float()  # [N, U]
        total += vals.shape[0]
        fired += (vals > 0).sum(0).double()
        energy += vals.double().pow(2).sum(0)
        if slot is not None and seq_sum is not None and seq_n is not None:
            at = slot[torch.as_tensor(store.sequence_of(gidx.numpy()), dtype=torch.long)]
            tracked = at >= 0
            seq_sum.index_add_(0, at[tracked], vals[tracked].double().pow(2))
            seq_n.index_add_(0, at[tracked], torch.ones(int(tracked.sum()), dtype=torch.float64))
        k = min(n_top, vals.shape[0])
        t = torch.topk(vals.T, k, dim=1)
        top_v, top_i = _merge(top_v, top_i, t.values, gidx[t.indices], n_top)
        if signed:
            b = torch.topk(-vals.T, k, dim=1)
            bot_v, bot_i = _merge(bot_v, bot_i, b.values, gidx[b.indices], n_top)
    seq_energy = None
    if seq_sum is not None and seq_n is not None:
        seq_energy = (seq_sum / seq_n[:, None]).numpy()  # 0/0 -> NaN for a sequence with no kept token
    return UnitStats(top_v.numpy(), top_i.numpy(), -bot_v.numpy(), bot_i.numpy(),
                     (fired / max(total, 1)).numpy(), energy.numpy(), total, seq_energy)


def token_context(store: ActivationStore, token: int, decode: Callable[[Sequence[int]], str],
                  token_string: Callable[[int], str], before: int = 12, after: int = 3) -> tuple[str, str]:
    """The token's string and its context text, the token marked ``[[...]]``."""
    seq = int(store.sequence_of(token))
    ids = store.sequence_tokens(seq)
    pos = token - int(store.offsets[seq])
    left = decode([int(t) for t in ids[max(0, pos - before) : pos]])
    mid = decode([int(ids[pos])])
    right = decode([int(t) for t in ids[pos + 1 : pos + 1 + after]])
    return token_string(int(ids[pos])), f"{left}[[{mid}]]{right}".replace("\n", " ")
