"""Synthetic activation stores written directly in the store's format (no model runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmdiff.activations import ActivationStore, RunningStats
from lmdiff.io import write_json


def write_store(path: Path, base: np.ndarray, ft: np.ndarray, seq_len: int = 16, shard_tokens: int = 1024,
                layer: int = 1) -> ActivationStore:
    """A complete store of one layer holding ``base`` and ``ft`` [N, D] as sequences of ``seq_len`` tokens."""
    n, d = base.shape
    n_seq = n // seq_len
    lengths = [seq_len] * n_seq
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.save(path / "tokens.npy", rng.integers(0, 100, size=int(offsets[-1])).astype(np.int32))
    np.save(path / "offsets.npy", offsets)
    per = max(1, shard_tokens // seq_len)
    bounds = [*range(0, n_seq, per), n_seq]
    write_json(path / "meta.json", {"key_hash": f"synthetic-{n}-{d}", "key": None, "layers": [layer],
                                    "dtype": "float32", "shard_tokens": shard_tokens, "shard_seq_bounds": bounds,
                                    "n_sequences": n_seq, "n_tokens": int(offsets[-1]), "d_model": d})
    for i in range(len(bounds) - 1):
        a, b = int(offsets[bounds[i]]), int(offsets[bounds[i + 1]])
        sd = path / f"shard_{i:05d}"
        sd.mkdir(exist_ok=True)
        for side, arr in (("base", base), ("finetuned", ft)):
            np.save(sd / f"{side}_L{layer}.npy", arr[a:b].astype(np.float32))
            st = RunningStats.empty(d)
            st.update(arr[a:b])
            st.save(sd / f"{side}_L{layer}.stats.npz")
            (sd / f"{side}.done").write_text("ok")
        st = RunningStats.empty(d)
        st.update(ft[a:b] - base[a:b])
        st.save(sd / f"diff_L{layer}.stats.npz")
    write_json(path / "complete.json", {"n_shards": len(bounds) - 1, "n_tokens": int(offsets[-1])})
    return ActivationStore(path)


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
