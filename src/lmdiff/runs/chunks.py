"""Resumable processing of a list in chunks, each saved atomically as a Parquet part.

:func:`map_chunks` is the one machinery: it computes the chunks whose part is missing through an
:class:`~lmdiff.runs.executor.Executor` (in process, or on Ray actors) and writes each part here as it
arrives, so both executors write the same parts and a killed run redoes only the missing ones.
:func:`process_in_chunks` is its in-process form for functions that need no worker state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd

from lmdiff.io import write_parquet
from lmdiff.progress import progress_bar
from lmdiff.runs.executor import Executor, LocalExecutor, Worker

T = TypeVar("T")
W = TypeVar("W")

def part_path(out_dir: str | Path, i: int) -> Path:
    """The Parquet part of chunk ``i`` under ``out_dir``."""
    return Path(out_dir) / f"part-{i:05d}.parquet"


@dataclass(frozen=True)
class _CallChunk(Generic[W, T]):
    """Adapts ``fn(state, chunk, offset)`` to an executor's ``fn(state, (chunk, offset))`` (picklable)."""

    fn: Callable[[W, Sequence[T], int], pd.DataFrame]

    def __call__(self, state: W, shard: tuple[Sequence[T], int]) -> pd.DataFrame:
        return self.fn(state, shard[0], shard[1])


@dataclass(frozen=True)
class _Stateless(Generic[T]):
    """Adapts ``fn(chunk, offset)`` to ``fn(state, chunk, offset)``."""

    fn: Callable[[Sequence[T], int], pd.DataFrame]

    def __call__(self, state: Any, chunk: Sequence[T], offset: int) -> pd.DataFrame:
        del state
        return self.fn(chunk, offset)


def map_chunks(
    items: Sequence[T],
    fn: Callable[[W, Sequence[T], int], pd.DataFrame],
    out_dir: str | Path,
    chunk_size: int,
    worker: Worker[W],
    executor: Executor | None = None,
    description: str = "processing",
) -> pd.DataFrame:
    """Apply ``fn(state, chunk, offset)`` to consecutive chunks of ``items`` and concatenate the results.

    Each chunk's DataFrame is written to ``out_dir/part-XXXXX.parquet`` atomically, here, as soon as
    the executor returns it; chunks whose part already exists are skipped, so an interrupted call
    resumes where it stopped whichever executor ran it. The result is in chunk order.
    The caller is responsible for clearing ``out_dir`` when its inputs change (a run step's
    ``prepare()`` does that).

    Args:
        items: the inputs.
        fn: computes one chunk; under Ray it is pickled (a module-level function or a partial of one).
        out_dir: directory of the parts.
        chunk_size: items per chunk (and per part).
        worker: the state ``fn`` gets (see :class:`~lmdiff.runs.executor.Worker`).
        executor: where chunks run (default: in process).
        description: label of the progress bar.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_chunks = (len(items) + chunk_size - 1) // chunk_size
    todo = [i for i in range(n_chunks) if not part_path(out, i).exists()]
    done_items = len(items) - sum(min(chunk_size, len(items) - i * chunk_size) for i in todo)
    shards = [(items[i * chunk_size : (i + 1) * chunk_size], i * chunk_size) for i in todo]
    with progress_bar(description, len(items)) as advance:
        advance(done_items)
        with closing((executor or LocalExecutor()).map(_CallChunk(fn), shards, worker)) as results:
            for j, df in results:
                write_parquet(part_path(out, todo[j]), df)
                advance(len(shards[j][0]))
    frames: list[Any] = [pd.read_parquet(part_path(out, i)) for i in range(n_chunks)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def process_in_chunks(
    items: Sequence[T],
    fn: Callable[[Sequence[T], int], pd.DataFrame],
    out_dir: str | Path,
    chunk_size: int,
    description: str = "processing",
) -> pd.DataFrame:
    """Apply ``fn(chunk, offset)`` to consecutive chunks of ``items`` in this process (see :func:`map_chunks`)."""
    return map_chunks(items, _Stateless(fn), out_dir, chunk_size, Worker(None), description=description)
