"""Synthetic activation stores written directly in the store's format (no model runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmdiff.activations import ActivationStore, store_from_arrays


def write_store(path: Path, base: np.ndarray, ft: np.ndarray, seq_len: int = 16, shard_tokens: int = 1024,
                layer: int = 1) -> ActivationStore:
    """A complete store of one layer holding ``base`` and ``ft`` [N, D] as sequences of ``seq_len`` tokens."""
    n = (len(base) // seq_len) * seq_len
    tokens = np.random.default_rng(0).integers(0, 100, size=n)
    sides = {"base": {layer: base[:n]}, "finetuned": {layer: ft[:n]}}
    return store_from_arrays(path, sides, [seq_len] * (n // seq_len), tokens=tokens, shard_tokens=shard_tokens)


def sparse_features(n: int, d: int, n_feat: int, active: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows: sparse non-negative combinations of ``n_feat`` random unit directions (and the directions)."""
    rng = np.random.default_rng(seed)
    dirs = rng.standard_normal((n_feat, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    on = rng.random((n, n_feat)) < active / n_feat
    coef = on * rng.exponential(1.0, (n, n_feat))
    x = coef @ dirs + 0.02 * rng.standard_normal((n, d))
    return x.astype(np.float32), dirs


@pytest.fixture
def planted_store(tmp_path: Path) -> tuple[ActivationStore, np.ndarray]:
    """Base: sparse features; finetuned: base plus a planted feature on 10% of tokens. Returns (store, planted dir)."""
    base, _ = sparse_features(8192, 32, 48, 3.0, seed=1)
    rng = np.random.default_rng(2)
    planted = rng.standard_normal(32)
    planted /= np.linalg.norm(planted)
    on = (rng.random(len(base)) < 0.1) * rng.uniform(2.0, 4.0, len(base))
    ft = base + on[:, None] * planted[None, :]
    return write_store(tmp_path / "store", base, ft.astype(np.float32)), planted


@pytest.fixture
def self_store(tmp_path: Path) -> ActivationStore:
    """Both sides identical."""
    base, _ = sparse_features(8192, 32, 48, 3.0, seed=3)
    return write_store(tmp_path / "self", base, base.copy())
