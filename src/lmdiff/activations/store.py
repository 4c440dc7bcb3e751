"""A sharded, memory-mappable on-disk store of both models' hidden states on identical tokens.

Layout of a store directory::

    meta.json                     key, layers, width, storage dtype, shard plan, models, corpus
    tokens.npy, offsets.npy       all token ids (int32) and sequence boundaries (int64, n+1)
    shard_00000/
        base_L7.npy               [tokens_in_shard, d] in the storage dtype (bf16 kept as int16 bits)
        base_L7.stats.npz         float64 running statistics of the unrounded activations
        base.done                 written last: the side is complete for this shard
        finetuned_L7.npy ...
        diff_L7.stats.npz         statistics of finetuned - base (from the stored values)
    complete.json                 written when every shard of both sides is done

A shard holds whole sequences up to ``shard_tokens`` tokens, so memory during collection is
bounded by one shard whatever the corpus size. A killed collection resumes: finished
shards (their ``.done`` marker exists) are skipped and a partial shard is recomputed.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import torch

from lmdiff.activations.stats import RunningStats
from lmdiff.io import atomic_path, read_json, sha256_json, write_json
from lmdiff.models.recipe import pair_recipe
from lmdiff.progress import progress_bar
from lmdiff.runs.executor import Executor, LocalExecutor, Worker

if TYPE_CHECKING:
    from lmdiff.models.lm import LanguageModel
    from lmdiff.models.pair import ModelPair

log = logging.getLogger(__name__)

StorageDtype = Literal["bfloat16", "float16", "float32"]
SideName = Literal["base", "finetuned"]
SIDES: tuple[SideName, SideName] = ("base", "finetuned")
_NP_DTYPES = {"bfloat16": np.int16, "float16": np.float16, "float32": np.float32}
_TORCH_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class TokenCorpus(Protocol):
    """What :func:`open_store` needs of a corpus (a :class:`lmdiff.corpora.Corpus`)."""

    @property
    def content_hash(self) -> str:
        """Hash of the texts."""
        ...

    def encode(self, lm: LanguageModel, max_tokens: int | None = None, min_tokens: int = 1) -> list[list[int]]:
        """Token ids of every text under ``lm``'s tokenizer."""
        ...


def _to_storage(h: torch.Tensor, dtype: StorageDtype) -> np.ndarray:
    t = h.detach().to("cpu", _TORCH_DTYPES[dtype])
    if dtype == "bfloat16":
        return t.view(torch.int16).numpy()
    return t.numpy()


def _from_storage(a: np.ndarray, dtype: StorageDtype) -> np.ndarray:
    if dtype == "bfloat16":
        return torch.from_numpy(np.array(a)).view(torch.bfloat16).float().numpy()
    return np.asarray(a, dtype=np.float32)


def _shard_plan(lengths: Sequence[int], shard_tokens: int) -> list[int]:
    """Sequence start index of each shard (plus the end), greedy up to ``shard_tokens``."""
    bounds = [0]
    tok = 0
    for i, n in enumerate(lengths):
        if tok > 0 and tok + n > shard_tokens:
            bounds.append(i)
            tok = 0
        tok += n
    bounds.append(len(lengths))
    return bounds


@dataclass
class Chunk:
    """A contiguous range of stored tokens with both sides' activations (float32)."""

    start: int
    base: np.ndarray
    finetuned: np.ndarray

    @property
    def diff(self) -> np.ndarray:
        """Finetuned - base."""
        diff: np.ndarray = self.finetuned - self.base
        return diff

    @property
    def stop(self) -> int:
        """End (exclusive) of the global token range."""
        return self.start + int(self.base.shape[0])


#: Tokens whose activation norm exceeds this multiple of the layer's median are "massive activations"
#: (see :meth:`ActivationStore.massive_rows`).
MASSIVE_FACTOR = 10.0


class ActivationStore:
    """Read access to a collected store (see the module docstring for the layout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.meta: dict[str, Any] = dict(read_json(self.path / "meta.json"))
        self.layers: list[int] = [int(x) for x in self.meta["layers"]]
        self.dtype: StorageDtype = self.meta["dtype"]
        self.d_model = int(self.meta["d_model"])
        self.tokens: np.ndarray = np.load(self.path / "tokens.npy", mmap_mode="r")
        self.offsets: np.ndarray = np.load(self.path / "offsets.npy")
        self.seq_bounds: list[int] = list(self.meta["shard_seq_bounds"])

    # ----------------------------------------------------------------- layout
    @property
    def complete(self) -> bool:
        """Whether both sides of every shard are stored."""
        return (self.path / "complete.json").exists()

    @property
    def n_sequences(self) -> int:
        """Number of sequences."""
        return len(self.offsets) - 1

    @property
    def n_tokens(self) -> int:
        """Number of stored tokens."""
        return int(self.offsets[-1])

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        return len(self.seq_bounds) - 1

    def shard_dir(self, i: int) -> Path:
        """Directory of shard ``i``."""
        return self.path / f"shard_{i:05d}"

    def shard_token_range(self, i: int) -> tuple[int, int]:
        """Global token range of shard ``i``."""
        return int(self.offsets[self.seq_bounds[i]]), int(self.offsets[self.seq_bounds[i + 1]])

    def positions(self) -> np.ndarray:
        """Position of every stored token inside its sequence (int32)."""
        lengths = np.diff(self.offsets)
        starts = np.repeat(self.offsets[:-1], lengths)
        positions: np.ndarray = (np.arange(self.n_tokens, dtype=np.int64) - starts).astype(np.int32)
        return positions

    def massive_rows(self, layer: int, factor: float = MASSIVE_FACTOR) -> np.ndarray:
        """Global indices of the layer's massive-activation tokens (norm on either side > factor x median).

        A few tokens (attention-sink-like ones) carry norms 100x the typical one; they dominate any
        squared error, variance or covariance, so the decomposing methods leave them out. One pass
        over the layer, cached on the store.
        """
        key = (layer, float(factor))
        cache: dict[tuple[int, float], np.ndarray] = self.__dict__.setdefault("_massive", {})
        if key not in cache:
            norms = [np.maximum(np.linalg.norm(ch.base, axis=1), np.linalg.norm(ch.finetuned, axis=1))
                     for ch in self.iter_chunks(layer, 16384)]
            n = np.concatenate(norms) if norms else np.zeros(0)
            cache[key] = np.flatnonzero(n > factor * np.median(n)) if len(n) else np.zeros(0, np.int64)
        return cache[key]

    def kept_mask(self, layer: int, start: int, stop: int, min_position: int) -> np.ndarray:
        """Tokens of [start, stop) the decomposing methods use: positions >= ``min_position``, no massive ones."""
        keep: np.ndarray = self.positions()[start:stop] >= min_position
        massive = self.massive_rows(layer)
        inside = massive[(massive >= start) & (massive < stop)]
        keep[inside - start] = False
        return keep

    def sequence_of(self, token_index: np.ndarray | int) -> np.ndarray:
        """Sequence index of global token indices."""
        return np.searchsorted(self.offsets, np.asarray(token_index), side="right") - 1

    def sequence_tokens(self, seq: int) -> np.ndarray:
        """Token ids of one sequence."""
        return np.asarray(self.tokens[self.offsets[seq] : self.offsets[seq + 1]])

    # ---------------------------------------------------------------- values
    def raw(self, side: SideName, layer: int, shard: int) -> np.ndarray:
        """The memory-mapped array of one side, layer and shard (storage dtype)."""
        arr: np.ndarray = np.load(self.shard_dir(shard) / f"{side}_L{layer}.npy", mmap_mode="r")
        return arr

    def shard(self, side: SideName | Literal["diff"], layer: int, shard: int) -> np.ndarray:
        """One shard as float32 (``diff`` gives finetuned - base)."""
        if side == "diff":
            diff: np.ndarray = self.shard("finetuned", layer, shard) - self.shard("base", layer, shard)
            return diff
        return _from_storage(self.raw(side, layer, shard), self.dtype)

    def read(self, side: SideName | Literal["diff"], layer: int, start: int, stop: int) -> np.ndarray:
        """Global token range [start, stop) of one side (or the difference) as float32."""
        parts = []
        for i in range(self.n_shards):
            a, b = self.shard_token_range(i)
            lo, hi = max(a, start), min(b, stop)
            if lo >= hi:
                continue
            if side == "diff":
                f = _from_storage(self.raw("finetuned", layer, i)[lo - a : hi - a], self.dtype)
                parts.append(f - _from_storage(self.raw("base", layer, i)[lo - a : hi - a], self.dtype))
            else:
                parts.append(_from_storage(self.raw(side, layer, i)[lo - a : hi - a], self.dtype))
        return np.concatenate(parts) if parts else np.zeros((0, self.d_model), np.float32)

    def iter_chunks(self, layer: int, chunk_tokens: int = 16384) -> Iterator[Chunk]:
        """Paired float32 chunks of both sides, shard by shard (lazy; bounded memory)."""
        for i in range(self.n_shards):
            a, b = self.shard_token_range(i)
            rb, rf = self.raw("base", layer, i), self.raw("finetuned", layer, i)
            for s in range(0, b - a, chunk_tokens):
                e = min(s + chunk_tokens, b - a)
                yield Chunk(a + s, _from_storage(rb[s:e], self.dtype), _from_storage(rf[s:e], self.dtype))

    def stats(self, side: SideName | Literal["diff"], layer: int) -> RunningStats:
        """Mean/variance over all tokens (merged float64 per-shard statistics)."""
        total = RunningStats.empty(self.d_model)
        for i in range(self.n_shards):
            total.merge(RunningStats.load(self.shard_dir(i) / f"{side}_L{layer}.stats.npz"))
        return total


def store_key(
    pair: ModelPair, corpus_hash: str, layers: Sequence[int], max_tokens: int | None, dtype: str
) -> dict[str, Any]:
    """The inputs that determine a store's content."""
    return {
        "pair": pair.cache_key() if hasattr(pair, "cache_key") else str(pair),
        "corpus": corpus_hash,
        "layers": list(layers),
        "max_tokens": max_tokens,
        "dtype": dtype,
        "version": 1,
    }


def collect_activations(
    pair: ModelPair,
    sequences: Sequence[Sequence[int]],
    layers: Sequence[int],
    path: str | Path,
    *,
    dtype: StorageDtype = "float32",
    batch_size: int = 8,
    shard_tokens: int = 65536,
    key: dict[str, Any] | None = None,
    progress: bool = True,
    executor: Executor | None = None,
) -> ActivationStore:
    """Collect both sides' hidden states at ``layers`` on ``sequences`` into a store at ``path``.

    Resumes a partial store with the same key (finished shards are skipped); a store made
    with a different key is replaced.

    Args:
        pair: a ModelPair (anything with ``side(name)`` giving a LanguageModel; only a ModelPair can be
            rebuilt in a Ray actor, anything else is collected in process).
        sequences: token id lists, identical for both sides.
        layers: resolved layer indices.
        path: the store directory.
        dtype: storage dtype; statistics are float64 regardless.
        batch_size: sequences per forward pass.
        shard_tokens: tokens per shard (bounds memory).
        key: the store's identity (defaults to a hash of the sequences and layers).
        progress: show progress bars.
        executor: where shards are computed (default: in process); this process writes every shard
            as it arrives, so the store is the same whichever executor computed it.

    Returns:
        The complete store.
    """
    root = Path(path)
    layers = [int(x) for x in layers]
    lengths = [len(s) for s in sequences]
    key_hash = sha256_json(key if key is not None else {"seqs": [list(s) for s in sequences], "layers": layers,
                                                       "dtype": dtype})
    meta_path = root / "meta.json"
    if meta_path.exists():
        old = read_json(meta_path)
        if old.get("key_hash") == key_hash and old.get("shard_tokens") == shard_tokens:
            if (root / "complete.json").exists():
                return ActivationStore(root)
        else:
            shutil.rmtree(root)
    if not meta_path.exists():
        root.mkdir(parents=True, exist_ok=True)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.fromiter((t for s in sequences for t in s), dtype=np.int32, count=int(offsets[-1]))
        with atomic_path(root / "tokens.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, flat)
        with atomic_path(root / "offsets.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, offsets)
        del flat
        write_json(
            meta_path,
            {
                "key_hash": key_hash,
                "key": key,
                "layers": layers,
                "dtype": dtype,
                "shard_tokens": shard_tokens,
                "shard_seq_bounds": _shard_plan(lengths, shard_tokens),
                "n_sequences": len(sequences),
                "n_tokens": int(sum(lengths)),
                "d_model": None,
            },
        )
    meta = dict(read_json(meta_path))
    bounds: list[int] = meta["shard_seq_bounds"]
    n_shards = len(bounds) - 1
    worker = Worker(pair, pair_recipe(pair))
    for side in SIDES:
        todo = [i for i in range(n_shards) if not (root / f"shard_{i:05d}" / f"{side}.done").exists()]
        if not todo:
            continue
        if len(todo) < n_shards:
            log.info("activations (%s): resuming, %d of %d shards already collected", side, n_shards - len(todo),
                     n_shards)
        jobs = [ShardJob(side, [list(s) for s in sequences[bounds[i] : bounds[i + 1]]], layers, dtype, batch_size)
                for i in todo]
        n_todo_seqs = sum(bounds[i + 1] - bounds[i] for i in todo)
        with progress_bar(f"activations ({side})" if progress else "", n_todo_seqs if progress else 0) as adv, \
                closing((executor or LocalExecutor()).map(shard_activations, jobs, worker)) as results:
            for j, (bufs, stats) in results:
                if meta.get("d_model") is None:
                    meta["d_model"] = int(stats[layers[0]].mean.shape[0])
                    write_json(meta_path, meta)
                _write_shard(root / f"shard_{todo[j]:05d}", side, bufs, stats)
                adv(len(jobs[j].sequences))
    store = ActivationStore(root)
    for i in range(n_shards):
        for layer in layers:
            p = store.shard_dir(i) / f"diff_L{layer}.stats.npz"
            if not p.exists():
                st = RunningStats.empty(store.d_model)
                rb, rf = store.raw("base", layer, i), store.raw("finetuned", layer, i)
                for s in range(0, rb.shape[0], 16384):
                    st.update(_from_storage(rf[s : s + 16384], dtype) - _from_storage(rb[s : s + 16384], dtype))
                st.save(p)
    write_json(root / "complete.json", {"n_shards": n_shards, "n_tokens": store.n_tokens})
    return store


@dataclass(frozen=True)
class ShardJob:
    """One side of one store shard to collect: the shard's sequences and what to keep of them."""

    side: SideName
    sequences: list[list[int]]
    layers: list[int]
    dtype: StorageDtype
    batch_size: int


def shard_activations(pair: ModelPair, job: ShardJob) -> tuple[dict[int, np.ndarray], dict[int, RunningStats]]:
    """Hidden states of one side on one shard's sequences (a shard function).

    Returns:
        Per layer, the shard's rows in the storage dtype ``[tokens_in_shard, d]`` and the float64
        running statistics of the unrounded activations.
    """
    lm = pair.side(job.side)
    seqs = job.sequences
    offs = np.concatenate([[0], np.cumsum([len(s) for s in seqs])]).astype(np.int64)
    d = int(lm.d_model)
    bufs = {layer: np.empty((int(offs[-1]), d), dtype=_NP_DTYPES[job.dtype]) for layer in job.layers}
    stats = {layer: RunningStats.empty(d) for layer in job.layers}
    for batch in lm.iter_forward(seqs, batch_size=job.batch_size, layers=job.layers, logits=False):
        for layer in job.layers:
            h = batch.hidden[layer]
            rows = [h[r, : batch.lengths[r]] for r in range(len(batch.indices))]
            stats[layer].update(torch.cat(rows).float())
            for r, i in enumerate(batch.indices):
                bufs[layer][offs[i] : offs[i + 1]] = _to_storage(rows[r], job.dtype)
    return bufs, stats


def _write_shard(shard_dir: Path, side: str, bufs: dict[int, np.ndarray], stats: dict[int, RunningStats]) -> None:
    """Write one side of a shard (arrays atomically, then statistics, then the ``.done`` marker)."""
    shard_dir.mkdir(parents=True, exist_ok=True)
    (shard_dir / f"{side}.done").unlink(missing_ok=True)
    for layer, buf in bufs.items():
        with atomic_path(shard_dir / f"{side}_L{layer}.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, buf)
        stats[layer].save(shard_dir / f"{side}_L{layer}.stats.npz")
    (shard_dir / f"{side}.done").write_text("ok")


def open_store(
    pair: ModelPair,
    corpus: TokenCorpus,
    layers: Sequence[int],
    root: str | Path,
    *,
    max_tokens: int | None = 128,
    dtype: StorageDtype = "float32",
    batch_size: int = 8,
    shard_tokens: int = 65536,
    progress: bool = True,
    executor: Executor | None = None,
) -> ActivationStore:
    """The store for (pair, corpus, layers, max_tokens, dtype) under ``root``, collected if needed.

    Stores are keyed by a hash of these inputs, so every method asking for the same
    activations reuses one store (``root`` may be a run's directory or a shared cache).
    """
    key = store_key(pair, corpus.content_hash, layers, max_tokens, dtype)
    path = Path(root) / f"store-{sha256_json(key)[:16]}"
    if (path / "complete.json").exists():
        meta = read_json(path / "meta.json")
        if meta.get("key_hash") == sha256_json(key):
            return ActivationStore(path)
    seqs = corpus.encode(pair.base, max_tokens=max_tokens)
    return collect_activations(pair, seqs, layers, path, dtype=dtype, batch_size=batch_size,
                               shard_tokens=shard_tokens, key=key, progress=progress, executor=executor)


def store_from_arrays(
    path: str | Path, sides: dict[str, dict[int, np.ndarray]], lengths: Sequence[int], *,
    tokens: np.ndarray | None = None, shard_tokens: int = 65536, key: dict[str, Any] | None = None,
) -> ActivationStore:
    """A complete float32 store at ``path`` from activations computed elsewhere (or synthetic ones).

    Args:
        path: the store directory (replaced if it exists).
        sides: ``{"base": {layer: [N, D]}, "finetuned": {layer: [N, D]}}``, rows in sequence order.
        lengths: tokens per sequence (summing to N).
        tokens: token ids [N] (zeros when None).
        shard_tokens: tokens per shard.
        key: the store's identity (recorded; its hash is the store's ``key_hash``).
    """
    root = Path(path)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    layers = sorted(sides["base"])
    n = int(sum(lengths))
    d = int(sides["base"][layers[0]].shape[1])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    np.save(root / "tokens.npy", np.zeros(n, np.int32) if tokens is None else np.asarray(tokens, np.int32))
    np.save(root / "offsets.npy", offsets)
    bounds = _shard_plan(list(lengths), shard_tokens)
    key = key or {"from_arrays": sha256_json([n, d, layers, list(lengths)[:100]])}
    write_json(root / "meta.json", {"key_hash": sha256_json(key), "key": key, "layers": layers, "dtype": "float32",
                                    "shard_tokens": shard_tokens, "shard_seq_bounds": bounds,
                                    "n_sequences": len(lengths), "n_tokens": n, "d_model": d})
    for i in range(len(bounds) - 1):
        a, b = int(offsets[bounds[i]]), int(offsets[bounds[i + 1]])
        sd = root / f"shard_{i:05d}"
        sd.mkdir()
        for layer in layers:
            for side in SIDES:
                arr = np.asarray(sides[side][layer][a:b], dtype=np.float32)
                np.save(sd / f"{side}_L{layer}.npy", arr)
                st = RunningStats.empty(d)
                st.update(arr)
                st.save(sd / f"{side}_L{layer}.stats.npz")
            st = RunningStats.empty(d)
            st.update(np.asarray(sides["finetuned"][layer][a:b], np.float32)
                      - np.asarray(sides["base"][layer][a:b], np.float32))
            st.save(sd / f"diff_L{layer}.stats.npz")
        for side in SIDES:
            (sd / f"{side}.done").write_text("ok")
    write_json(root / "complete.json", {"n_shards": len(bounds) - 1, "n_tokens": n})
    return ActivationStore(root)
