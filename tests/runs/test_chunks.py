"""Resumable chunked processing (lmdiff.runs.chunks): resume after partial chunks, atomic parts."""

from __future__ import annotations

import pandas as pd
import pytest

from lmdiff.runs.chunks import process_in_chunks


def _double(calls: list[int], fail_at: int | None = None):
    def fn(chunk, offset):
        calls.append(offset)
        if offset == fail_at:
            raise RuntimeError("killed mid-chunk")
        return pd.DataFrame({"i": [offset + k for k in range(len(chunk))], "v": [x * 2 for x in chunk]})

    return fn


def test_resume_after_partial_chunks_computes_only_the_missing_ones(tmp_path):
    items = list(range(7))
    calls: list[int] = []
    with pytest.raises(RuntimeError):
        process_in_chunks(items, _double(calls, fail_at=6), tmp_path, chunk_size=3)
    assert calls == [0, 3, 6]
    parts = sorted(p.name for p in tmp_path.iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet"]  # the failed chunk left nothing behind
    mtimes = {p: (tmp_path / p).stat().st_mtime_ns for p in parts}
    calls.clear()
    df = process_in_chunks(items, _double(calls), tmp_path, chunk_size=3)
    assert calls == [6]  # only the last (short) chunk ran
    assert df["i"].tolist() == items and df["v"].tolist() == [2 * x for x in items]
    assert all((tmp_path / p).stat().st_mtime_ns == t for p, t in mtimes.items())


def test_a_missing_middle_chunk_is_recomputed_in_order(tmp_path):
    items = list(range(6))
    process_in_chunks(items, _double([]), tmp_path, chunk_size=2)
    (tmp_path / "part-00001.parquet").unlink()
    calls: list[int] = []
    df = process_in_chunks(items, _double(calls), tmp_path, chunk_size=2)
    assert calls == [2] and df["i"].tolist() == items


def test_parts_are_written_atomically(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    def broken_write_table(table, where, *args, **kwargs):  # a crash in the middle of writing a part
        with open(where, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write_table)
    with pytest.raises(OSError):
        process_in_chunks([1, 2], _double([]), tmp_path, chunk_size=2)
    monkeypatch.undo()
    assert not list(tmp_path.glob("part-*.parquet"))  # no half-written part counts as done
    assert not list(tmp_path.glob(".*.tmp"))  # and the temporary file is cleaned up
    calls: list[int] = []
    assert process_in_chunks([1, 2], _double(calls), tmp_path, chunk_size=2)["v"].tolist() == [2, 4]
    assert calls == [0]


def test_empty_items_give_an_empty_frame(tmp_path):
    assert process_in_chunks([], _double([]), tmp_path, chunk_size=4).empty
