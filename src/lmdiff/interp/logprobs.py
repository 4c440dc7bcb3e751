"""Both models' log-probabilities on the same tokens, and per-token KL divergences between them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from lmdiff.models.pair import ModelPair


def paired_logprobs(
    pair: ModelPair, sequences: Sequence[Sequence[int]], batch_size: int = 4
) -> Iterator[tuple[list[int], list[int], torch.Tensor, torch.Tensor]]:
    """Yield (indices, lengths, logprobs_base, logprobs_ft) per batch of identical sequences.

    Each side's generator is consumed fully per batch, so a shared-weights pair never has its
    adapter switched while the other side's forward pass is running.
    """
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        seqs = [sequences[i] for i in idx]
        out: dict[str, torch.Tensor] = {}
        lengths: list[int] = []
        for side in ("base", "finetuned"):
            lm = pair.side(side)
            (batch,) = list(lm.iter_forward(seqs, batch_size=len(seqs), sort_by_length=False))
            out[side] = batch.logprobs()
            lengths = batch.lengths
        yield idx, lengths, out["base"], out["finetuned"]


def kl_rows(lp_p: torch.Tensor, lp_q: torch.Tensor) -> torch.Tensor:
    """KL(P || Q) along the last axis from log-probabilities (e.g. [T, V] -> [T]), clamped at 0."""
    return (lp_p.exp() * (lp_p - lp_q)).sum(-1).clamp_min(0.0)


def per_token_kl(
    pair: ModelPair, sequences: Sequence[Sequence[int]], *, batch_size: int = 4, reverse: bool = False,
    offset: int = 0,
) -> pd.DataFrame:
    """Per-token KL over ``sequences``: columns text, pos, token, next_token, kl[, kl_rev], top_ft, top_base.

    ``kl`` at position t compares the two next-token distributions after token t.
    """
    frames = []
    for idx, lengths, lpb, lpf in paired_logprobs(pair, sequences, batch_size):
        kl = kl_rows(lpf, lpb)
        rev = kl_rows(lpb, lpf) if reverse else None
        top_f, top_b = lpf.argmax(-1), lpb.argmax(-1)
        for r, i in enumerate(idx):
            n = lengths[r]
            seq = np.asarray(sequences[i], dtype=np.int64)
            d: dict[str, Any] = {
                "text": np.full(n, offset + i, dtype=np.int64),
                "pos": np.arange(n, dtype=np.int32),
                "token": seq[:n].astype(np.int32),
                "next_token": np.append(seq[1:n], -1).astype(np.int32),
                "kl": kl[r, :n].cpu().numpy().astype(np.float32),
                "top_ft": top_f[r, :n].cpu().numpy().astype(np.int32),
                "top_base": top_b[r, :n].cpu().numpy().astype(np.int32),
            }
            if rev is not None:
                d["kl_rev"] = rev[r, :n].cpu().numpy().astype(np.float32)
            frames.append(pd.DataFrame(d))
    if not frames:
        return pd.DataFrame(columns=["text", "pos", "token", "next_token", "kl", "top_ft", "top_base"])
    return pd.concat(frames, ignore_index=True).sort_values(["text", "pos"], ignore_index=True)


def token_kl(pair: ModelPair, text: str, *, reverse: bool = True, chat: bool = False) -> pd.DataFrame:
    """Per-token KL on a user's own text (interactive use).

    Args:
        pair: the model pair.
        text: any text (rendered as a user chat message when ``chat``).
        reverse: also return KL(base || finetuned).
        chat: render ``text`` with the chat template first.

    Returns:
        One row per token: token string, KL of the next-token distributions after it, and
        both models' top predictions.
    """
    lm = pair.base
    ids = lm.encode(lm.chat_text(text), add_special_tokens=False) if chat else lm.encode(text)
    df = per_token_kl(pair, [ids], batch_size=1, reverse=reverse)
    df["token_str"] = lm.token_strings(df["token"].tolist())
    df["top_ft_str"] = lm.token_strings(df["top_ft"].tolist())
    df["top_base_str"] = lm.token_strings(df["top_base"].tolist())
    return df
