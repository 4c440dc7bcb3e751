from __future__ import annotations

import numpy as np
import pytest

from lmdiff.activations import ActivationStore, RunningStats, collect_activations, open_store
from lmdiff.corpora import Corpus, load_corpus


def _seqs(pair, n=12, max_tokens=24):
    corpus = load_corpus("generic", limit=n)
    return corpus.encode(pair.base, max_tokens=max_tokens)


def test_running_stats_merge_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(1000, 5)).astype(np.float32)
    st = RunningStats.empty(5)
    for i in range(0, 1000, 137):
        st.update(x[i : i + 137])
    assert st.count == 1000
    np.testing.assert_allclose(st.mean, x.astype(np.float64).mean(0), rtol=1e-10)
    np.testing.assert_allclose(st.var, x.astype(np.float64).var(0), rtol=1e-9)


def test_store_layout_and_stats(tiny_pair, tmp_path):
    seqs = _seqs(tiny_pair)
    store = collect_activations(tiny_pair, seqs, [0, 1], tmp_path / "s", shard_tokens=60, batch_size=4,
                                progress=False)
    assert store.complete and store.n_shards > 1
    assert store.n_tokens == sum(len(s) for s in seqs)
    np.testing.assert_array_equal(store.sequence_tokens(3), np.array(seqs[3]))
    for layer in (0, 1):
        base = store.read("base", layer, 0, store.n_tokens).astype(np.float64)
        ft = store.read("finetuned", layer, 0, store.n_tokens).astype(np.float64)
        st = store.stats("base", layer)
        np.testing.assert_allclose(st.mean, base.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.var, base.var(0), rtol=1e-4, atol=1e-6)
        sd = store.stats("diff", layer)
        np.testing.assert_allclose(sd.mean, (ft - base).mean(0), rtol=1e-5, atol=1e-6)
        assert np.abs(ft - base).max() > 1e-4  # the adapter changes activations
    # stored activations equal a direct hidden_states call
    direct = tiny_pair.finetuned.hidden_states([seqs[5]], [1])[0][1].numpy()
    a, b = store.offsets[5], store.offsets[6]
    np.testing.assert_allclose(store.read("finetuned", 1, a, b), direct, atol=1e-4)
    chunks = list(store.iter_chunks(1, chunk_tokens=50))
    assert sum(c.base.shape[0] for c in chunks) == store.n_tokens
    # shards are capped by tokens (bounded memory)
    for i in range(store.n_shards):
        lo, hi = store.shard_token_range(i)
        assert hi - lo <= max(60, max(len(s) for s in seqs))


def test_bf16_storage(tiny_pair, tmp_path):
    seqs = _seqs(tiny_pair, n=4)
    store = collect_activations(tiny_pair, seqs, [1], tmp_path / "b", dtype="bfloat16", progress=False)
    ref = collect_activations(tiny_pair, seqs, [1], tmp_path / "f", dtype="float32", progress=False)
    a = store.read("base", 1, 0, store.n_tokens)
    b = ref.read("base", 1, 0, ref.n_tokens)
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-2)
    # statistics are computed from the unrounded values
    np.testing.assert_allclose(store.stats("base", 1).mean, ref.stats("base", 1).mean, rtol=1e-5, atol=1e-6)


def test_kill_and_resume(tiny_pair, tmp_path, monkeypatch):
    import lmdiff.activations.store as mod

    seqs = _seqs(tiny_pair)
    calls = {"n": 0}
    real = mod.shard_activations

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "shard_activations", flaky)
    with pytest.raises(KeyboardInterrupt):
        collect_activations(tiny_pair, seqs, [1], tmp_path / "r", shard_tokens=60, progress=False)
    done_before = sorted(p.parent.name for p in (tmp_path / "r").glob("shard_*/base.done"))
    assert len(done_before) == 2
    mtimes = {n: (tmp_path / "r" / n / "base_L1.npy").stat().st_mtime_ns for n in done_before}
    counted = {"n": 0}

    def counting(*args, **kwargs):
        counted["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "shard_activations", counting)
    store = collect_activations(tiny_pair, seqs, [1], tmp_path / "r", shard_tokens=60, progress=False)
    assert counted["n"] == 2 * store.n_shards - 2
    for n, t in mtimes.items():
        assert (tmp_path / "r" / n / "base_L1.npy").stat().st_mtime_ns == t
    ref = collect_activations(tiny_pair, seqs, [1], tmp_path / "ref", shard_tokens=60, progress=False)
    np.testing.assert_allclose(store.read("diff", 1, 0, store.n_tokens), ref.read("diff", 1, 0, ref.n_tokens),
                               atol=1e-6)


def test_open_store_reuses(tiny_pair, tmp_path):
    corpus = Corpus("t", ("hello world, this is a test", "another text about cats"))
    s1 = open_store(tiny_pair, corpus, [1], tmp_path, max_tokens=8, progress=False)
    s2 = open_store(tiny_pair, corpus, [1], tmp_path, max_tokens=8, progress=False)
    assert s1.path == s2.path and isinstance(s2, ActivationStore)
    assert len(list(tmp_path.glob("store-*"))) == 1


def test_self_pair_diff_is_zero(self_pair, tmp_path):
    seqs = _seqs(self_pair, n=3)
    store = collect_activations(self_pair, seqs, [1], tmp_path / "z", progress=False)
    assert np.abs(store.read("diff", 1, 0, store.n_tokens)).max() == 0.0


def test_store_from_arrays_reads_back(tmp_path):
    import numpy as np

    from lmdiff.activations import store_from_arrays

    rng = np.random.default_rng(0)
    base = rng.standard_normal((100, 8)).astype(np.float32)
    ft = base + 1
    st = store_from_arrays(tmp_path / "s", {"base": {3: base}, "finetuned": {3: ft}}, [10] * 10, shard_tokens=30)
    assert st.complete and st.n_shards == 4 and st.layers == [3] and st.n_tokens == 100
    np.testing.assert_array_equal(st.read("base", 3, 5, 95), base[5:95])
    np.testing.assert_allclose(st.stats("diff", 3).mean, np.ones(8), atol=1e-6)


def test_massive_activation_tokens_are_left_out_of_the_decompositions(tmp_path):
    from lmdiff.activations import store_from_arrays
    from lmdiff.dictionaries import ActivationStream
    from lmdiff.interp.directions import difference_covariance

    rng = np.random.default_rng(0)
    base = rng.standard_normal((64, 8)).astype(np.float32)
    ft = base + 0.1 * rng.standard_normal((64, 8)).astype(np.float32)
    clean = store_from_arrays(tmp_path / "clean", {"base": {0: base}, "finetuned": {0: ft}}, [16] * 4)
    ft_massive = ft.copy()
    ft_massive[21] *= 500.0  # one sink-like token, as real models have at a few positions
    store = store_from_arrays(tmp_path / "massive", {"base": {0: base}, "finetuned": {0: ft_massive}}, [16] * 4)
    assert store.massive_rows(0).tolist() == [21] and clean.massive_rows(0).tolist() == []
    keep = store.kept_mask(0, 16, 32, min_position=1)
    assert not keep[0] and not keep[5] and keep.sum() == 14  # position 0 and the massive token
    rows = np.concatenate([b for _, b in ActivationStream(store, 0, "finetuned", batch_size=4).batches(0, 14)])
    assert np.abs(rows).max() < 100  # never trained on
    cov_clean, cov = difference_covariance(clean, 0), difference_covariance(store, 0)
    # the clean store's covariance uses one more token (the one the massive store drops), so they differ a little
    assert np.abs(cov - cov_clean).max() < 0.05 * np.abs(cov_clean).max()
