"""Shuffled training batches streamed from an activation store, shard by shard, reproducible from a step index.

The store is never loaded whole: an epoch visits the shards in a seeded order, cut into blocks of
``buffer_tokens`` stored tokens; one block at a time is read, its rows (tokens at positions
``>= min_position``, massive activations left out: :meth:`ActivationStore.kept_mask`) are
permuted with a seed of (seed, epoch, block) and cut into batches (a
block's last partial batch is dropped). The plan of blocks depends only on the store's layout,
so :meth:`ActivationStream.batches` can start at any step without reading what comes before:
a training run resumed at step k sees exactly the batches an uninterrupted run sees.

Views: ``diff`` (finetuned - base) and ``base``/``finetuned`` give rows [N, 1, D]; ``paired``
gives [N, 2, D] (base, finetuned). A paired stream may carry a control that breaks the pairing's
meaning while keeping its statistics: ``swap`` exchanges the two sides of a random half of the
tokens (the labels "base" and "finetuned" no longer mean anything), ``shuffle`` pairs each base
row with the finetuned row of another token of the same block.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lmdiff.activations import ActivationStore

View = Literal["diff", "paired", "base", "finetuned"]
Control = Literal["none", "swap", "shuffle"]


@dataclass(frozen=True)
class Block:
    """One buffer's worth of stored tokens: global token ranges [start, stop), each inside one shard."""

    epoch: int
    index: int
    ranges: tuple[tuple[int, int], ...]


def read_view(store: ActivationStore, layer: int, view: View, start: int, stop: int) -> np.ndarray:
    """Rows [N, S, D] (float32) of the global token range [start, stop) in ``view`` (S = 2 for paired)."""
    if view == "paired":
        return np.stack([store.read("base", layer, start, stop), store.read("finetuned", layer, start, stop)], 1)
    return store.read(view, layer, start, stop)[:, None, :]


def positions_of(store: ActivationStore, start: int, stop: int) -> np.ndarray:
    """Position inside its sequence of each global token in [start, stop)."""
    idx = np.arange(start, stop, dtype=np.int64)
    seq = np.searchsorted(store.offsets, idx, side="right") - 1
    pos: np.ndarray = idx - store.offsets[seq]
    return pos



class ActivationStream:
    """Shuffled batches of one layer's activations (see the module docstring)."""

    def __init__(
        self, store: ActivationStore, layer: int, view: View, *, batch_size: int, buffer_tokens: int = 65536,
        seed: int = 0, min_position: int = 1, control: Control = "none",
    ) -> None:
        if layer not in store.layers:
            raise ValueError(f"layer {layer} is not in the store (it holds {store.layers})")
        if control != "none" and view != "paired":
            raise ValueError("a swap or shuffle control needs the paired view")
        self.store, self.layer, self.view = store, layer, view
        self.batch_size, self.buffer_tokens = int(batch_size), int(buffer_tokens)
        self.seed, self.min_position, self.control = int(seed), int(min_position), control
        self.n_sides = 2 if view == "paired" else 1
        self._kept_cache: dict[tuple[int, int], int] = {}

    @property
    def d_model(self) -> int:
        """Width of one side's rows."""
        return self.store.d_model

    def blocks(self, epoch: int) -> list[Block]:
        """The blocks of one epoch: shards in a seeded order, cut every ``buffer_tokens`` stored tokens."""
        order = np.random.default_rng([self.seed, epoch, 0]).permutation(self.store.n_shards)
        out: list[Block] = []
        cur: list[tuple[int, int]] = []
        room = self.buffer_tokens
        for shard in order:
            a, b = self.store.shard_token_range(int(shard))
            while a < b:
                take = min(room, b - a)
                cur.append((a, a + take))
                a += take
                room -= take
                if room == 0:
                    out.append(Block(epoch, len(out), tuple(cur)))
                    cur, room = [], self.buffer_tokens
        if cur:
            out.append(Block(epoch, len(out), tuple(cur)))
        return out

    def kept_tokens(self, block: Block) -> int:
        """How many tokens of ``block`` are trained on (positions >= ``min_position``), without reading values."""
        n = 0
        for a, b in block.ranges:
            if (a, b) not in self._kept_cache:
                self._kept_cache[(a, b)] = int(self.store.kept_mask(self.layer, a, b, self.min_position).sum())
            n += self._kept_cache[(a, b)]
        return n

    def tokens_per_epoch(self) -> int:
        """Training tokens an epoch yields (whole batches only)."""
        return sum(self.kept_tokens(b) // self.batch_size for b in self.blocks(0)) * self.batch_size

    def read_block(self, block: Block) -> np.ndarray:
        """The block's kept rows [N, S, D], permuted (and controlled) with the block's seed."""
        parts = []
        for a, b in block.ranges:
            rows = read_view(self.store, self.layer, self.view, a, b)
            parts.append(rows[self.store.kept_mask(self.layer, a, b, self.min_position)])
        x = np.concatenate(parts) if parts else np.zeros((0, self.n_sides, self.d_model), np.float32)
        rng = np.random.default_rng([self.seed, block.epoch, block.index + 1])
        x = x[rng.permutation(len(x))]
        if self.control == "swap":
            flip = rng.random(len(x)) < 0.5
            x[flip] = x[flip][:, ::-1]
        elif self.control == "shuffle":
            x[:, 1] = x[rng.permutation(len(x)), 1]
        return np.ascontiguousarray(x)

    def batches(self, start_step: int = 0, n_steps: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """(step, batch [B, S, D]) from ``start_step`` on, epoch after epoch, until ``n_steps`` (None: forever).

        Blocks wholly before ``start_step`` are skipped without being read.
        """
        if self.tokens_per_epoch() == 0:
            raise ValueError(f"the store holds fewer than one batch ({self.batch_size}) of tokens at positions >= "
                             f"{self.min_position}")
        step, epoch = 0, 0
        while True:
            for block in self.blocks(epoch):
                nb = self.kept_tokens(block) // self.batch_size
                if step + nb <= start_step:
                    step += nb
                    continue
                x = self.read_block(block)
                for i in range(nb):
                    if n_steps is not None and step >= n_steps:
                        return
                    if step >= start_step:
                        yield step, x[i * self.batch_size : (i + 1) * self.batch_size]
                    step += 1
            epoch += 1

    def sample(self, n_tokens: int) -> np.ndarray:
        """The first ``n_tokens`` rows of the first epoch (e.g. to estimate a normalisation scale)."""
        out, got = [], 0
        for block in self.blocks(0):
            x = self.read_block(block)
            out.append(x[: n_tokens - got])
            got += len(out[-1])
            if got >= n_tokens:
                break
        return np.concatenate(out) if out else np.zeros((0, self.n_sides, self.d_model), np.float32)
