"""Mean activation differences h_ft - h_base from the activation store, and the settings that choose the store.

:class:`DirectionConfig` is the one typed home of the direction/store settings (corpus, texts,
tokens per text, first positions, layers, storage dtype). Every method that reads mean
differences (``adl``, ``causal``) inherits it and opens its store through
:func:`open_direction_store`, so with equal settings (the defaults included) a run of several
such methods collects one store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from lmdiff.activations import ActivationStore, open_store, store_key
from lmdiff.corpora import Corpus, load_corpus

if TYPE_CHECKING:
    from lmdiff.models.pair import ModelPair
    from lmdiff.runs.executor import Executor

#: Texts read when ``n_texts`` is None: on a GPU and on CPU.
DEFAULT_TEXTS_GPU = 10000
DEFAULT_TEXTS_CPU = 200


class DirectionConfig(BaseModel):
    """Settings of the activation store that mean differences are computed from (shared by adl and causal)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    corpus: str = Field("generic", description="corpus name or file of the mean differences")
    n_texts: int | None = Field(None, ge=1, description=f"texts (default {DEFAULT_TEXTS_GPU} on a GPU, "
                                                         f"{DEFAULT_TEXTS_CPU} on CPU)")
    k: int = Field(5, ge=1, description="first positions analysed")
    n_tokens: int = Field(32, ge=1, description="tokens per text (norms use positions >= k)")
    layers: list[float | int] = Field(
        default_factory=lambda: [0.5, 1.0],
        description="layers read out (relative floats or indices); the middle is the paper's choice, the last "
        "layer is where small models' logit lens becomes readable",
    )
    dtype: str = Field("float32", pattern="^(float32|float16|bfloat16)$", description="store dtype")
    batch_size: int = Field(8, ge=1)

    def texts(self) -> int:
        """The number of texts read (``n_texts``, or the default for this machine)."""
        if self.n_texts is not None:
            return self.n_texts
        return DEFAULT_TEXTS_GPU if torch.cuda.is_available() else DEFAULT_TEXTS_CPU

    @property
    def store_tokens(self) -> int:
        """Tokens stored per text."""
        return max(self.n_tokens, self.k)

    def store_layers(self, pair: ModelPair, *extra: float | int) -> list[int]:
        """The resolved, sorted block indices stored: ``layers`` plus ``extra``."""
        lm = pair.finetuned
        return sorted(set(lm.resolve_layers(self.layers)) | set(lm.resolve_layers(list(extra))))

    def load_corpus(self, pair: ModelPair, seed: int, cache_dir: Path | None = None) -> Corpus:
        """The corpus the store is collected on."""
        return load_corpus(self.corpus, pair, limit=self.texts(), seed=seed, cache_dir=cache_dir)

    def store_key(self, pair: ModelPair, corpus: Corpus, layers: list[int]) -> dict[str, Any]:
        """The key identifying the store (two methods with equal keys share one store)."""
        return store_key(pair, corpus.content_hash, layers, self.store_tokens, self.dtype)


def open_direction_store(
    cfg: DirectionConfig, pair: ModelPair, corpus: Corpus, layers: list[int], root: Path, *, shard_tokens: int,
    executor: Executor | None = None,
) -> ActivationStore:
    """Open (collecting if needed; shards computed by ``executor``) the store for ``cfg`` on ``corpus``."""
    return open_store(pair, corpus, layers, root, max_tokens=cfg.store_tokens, dtype=cfg.dtype,  # type: ignore[arg-type]
                      batch_size=cfg.batch_size, shard_tokens=shard_tokens, executor=executor)


def mean_differences(store: ActivationStore, layer: int, k: int) -> dict[str, Any]:
    """Mean diff/base/ft vectors at positions < k, and the mean ft/base norms at positions >= k.

    Args:
        store: a complete activation store holding ``layer``.
        layer: the block index.
        k: first positions averaged separately.

    Returns:
        ``{"diff", "base", "ft"}``: [k, D] float64 means per position; ``counts`` [k]: tokens per
        position; ``norm_ft``, ``norm_base``: mean norms at positions >= k (all positions when no
        text is longer than k).
    """
    d = store.d_model
    sums = {s: np.zeros((k, d)) for s in ("diff", "base", "ft")}
    counts = np.zeros(k)
    norm_ft, norm_base, n_norm = 0.0, 0.0, 0
    pos_all = store.positions()
    for chunk in store.iter_chunks(layer):
        pos = pos_all[chunk.start : chunk.stop]
        for p in range(k):
            m = pos == p
            if m.any():
                sums["base"][p] += chunk.base[m].sum(0, dtype=np.float64)
                sums["ft"][p] += chunk.finetuned[m].sum(0, dtype=np.float64)
                sums["diff"][p] += chunk.diff[m].sum(0, dtype=np.float64)
                counts[p] += m.sum()
        late = pos >= k
        if late.any():
            norm_ft += float(np.linalg.norm(chunk.finetuned[late].astype(np.float64), axis=1).sum())
            norm_base += float(np.linalg.norm(chunk.base[late].astype(np.float64), axis=1).sum())
            n_norm += int(late.sum())
    if n_norm == 0:  # texts too short: fall back to all positions
        for chunk in store.iter_chunks(layer):
            norm_ft += float(np.linalg.norm(chunk.finetuned.astype(np.float64), axis=1).sum())
            norm_base += float(np.linalg.norm(chunk.base.astype(np.float64), axis=1).sum())
            n_norm += chunk.base.shape[0]
    c = np.maximum(counts, 1)[:, None]
    return {"diff": sums["diff"] / c, "base": sums["base"] / c, "ft": sums["ft"] / c, "counts": counts,
            "norm_ft": norm_ft / max(n_norm, 1), "norm_base": norm_base / max(n_norm, 1)}


def sink_free_direction(means: dict[str, Any], position: int | None = None) -> np.ndarray:
    """The mean difference over positions 1..k-1 (token-weighted), or at one ``position`` >= 1, as float64 [D].

    Position 0 is the attention sink: its difference is dominated by the sink's massive
    activations, not by the finetune, so it is never part of the direction (adl's readouts and
    steering leave it out too).

    Args:
        means: :func:`mean_differences`'s output (``diff`` [k, D], ``counts`` [k]).
        position: one position's mean difference instead of the mean over positions 1..k-1.

    Raises:
        ValueError: when ``position`` is 0 or not below k, or when no position >= 1 holds a token.
    """
    diff = np.asarray(means["diff"], dtype=np.float64)
    counts = np.asarray(means["counts"], dtype=np.float64)
    if position is not None:
        if not 1 <= position < diff.shape[0]:
            raise ValueError(f"position must be in 1..{diff.shape[0] - 1} (0 is the attention sink), got {position}")
        one: np.ndarray = diff[position]
        return one
    w = counts[1:]
    if w.sum() <= 0:
        raise ValueError("no token at positions >= 1: the texts are too short for a sink-free direction")
    out: np.ndarray = (diff[1:] * w[:, None]).sum(0) / w.sum()
    return out


def difference_covariance(store: ActivationStore, layer: int, min_position: int = 1) -> np.ndarray:
    """Covariance [D, D] (float64) of single tokens' differences h_ft - h_base at positions >= ``min_position``.

    Massive-activation tokens are left out (:meth:`ActivationStore.kept_mask`).
    """
    d = store.d_model
    s1, s2, n = np.zeros(d), np.zeros((d, d)), 0
    for chunk in store.iter_chunks(layer):
        keep = store.kept_mask(layer, chunk.start, chunk.stop, min_position)
        if keep.any():
            x = chunk.diff[keep].astype(np.float64)
            s1 += x.sum(0)
            s2 += x.T @ x
            n += int(keep.sum())
    if n < 2:
        return np.zeros((d, d))
    mean = s1 / n
    cov: np.ndarray = (s2 - n * np.outer(mean, mean)) / (n - 1)
    sym: np.ndarray = (cov + cov.T) / 2
    return sym


def projected_variance(cov: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """u^T cov u for each unit row ``u`` of ``directions`` [n, D] (or one direction [D])."""
    u = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    out: np.ndarray = np.einsum("nd,de,ne->n", u, cov, u)
    return out


def matched_variance_directions(cov: np.ndarray, target: float, n: int, seed: int) -> np.ndarray:
    """``n`` random unit directions [n, D] whose projected variance under ``cov`` equals ``target`` (seeded).

    Isotropic random directions mostly point where the activations barely vary, so ablating them
    does little whatever the real direction means. Here each direction mixes a random direction in
    the eigenspaces of variance above ``target`` with one in those below it, in the proportion
    that makes u^T cov u = ``target`` exactly (clipped to the covariance's range of variances).
    """
    lam, vecs = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    d = lam.shape[0]
    rng = np.random.default_rng(seed)
    t = float(np.clip(target, lam[0], lam[-1]))
    high, low = lam > t, lam <= t
    out = np.zeros((n, d))
    for i in range(n):
        z = rng.standard_normal(d)
        a, b = np.where(high, z, 0.0), np.where(low, z, 0.0)
        if not high.any() or np.linalg.norm(a) == 0:
            coords = b / np.linalg.norm(b)
        elif np.linalg.norm(b) == 0:
            coords = a / np.linalg.norm(a)
        else:
            a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
            va, vb = float(lam @ a**2), float(lam @ b**2)
            c2 = float(np.clip((t - vb) / (va - vb), 0.0, 1.0)) if va > vb else 1.0
            coords = np.sqrt(c2) * a + np.sqrt(1.0 - c2) * b
        out[i] = vecs @ coords
    return out
