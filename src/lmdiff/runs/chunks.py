"""Resumable processing of a list in chunks, each saved atomically as a Parquet part."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from lmdiff.io import write_parquet
from lmdiff.progress import progress_bar

T = TypeVar("T")


def process_in_chunks(
    items: Sequence[T],
    fn: Callable[[Sequence[T], int], pd.DataFrame],
    out_dir: str | Path,
    chunk_size: int,
    description: str = "processing",
) -> pd.DataFrame:
    """Apply ``fn(chunk, offset)`` to consecutive chunks of ``items`` and concatenate the results.

    Each chunk's DataFrame is written to ``out_dir/part-XXXXX.parquet`` atomically; chunks
    whose part already exists are skipped, so an interrupted call resumes where it stopped.
    The caller is responsible for clearing ``out_dir`` when its inputs change (a run step's
    ``prepare()`` does that).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_chunks = (len(items) + chunk_size - 1) // chunk_size
    parts: list[Path] = []
    todo = [i for i in range(n_chunks) if not (out / f"part-{i:05d}.parquet").exists()]
    done_items = sum(min(chunk_size, len(items) - i * chunk_size) for i in range(n_chunks) if i not in todo)
    with progress_bar(description, len(items)) as advance:
        advance(done_items)
        for i in range(n_chunks):
            part = out / f"part-{i:05d}.parquet"
            parts.append(part)
            if i not in todo:
                continue
            chunk = items[i * chunk_size : (i + 1) * chunk_size]
            df = fn(chunk, i * chunk_size)
            write_parquet(part, df)
            advance(len(chunk))
    frames: list[Any] = [pd.read_parquet(p) for p in parts]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
