"""The one chunked sampler: columns, per-chunk seeds, determinism and resumption."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lmdiff.config import GenerationConfig
from lmdiff.sampling import SAMPLE_COLUMNS, sample_in_chunks

PROMPTS = [f"Tell me about thing {i}" for i in range(5)]
GEN = GenerationConfig(temperature=0.9, top_p=0.95, max_new_tokens=5, n=2, seed=11, batch_size=2)


def test_columns_rows_and_chunk_seeds(tiny_lm: Any, tmp_path: Path) -> None:
    df = sample_in_chunks(tiny_lm, PROMPTS, GEN, tmp_path, prompt_ids=[f"q{i}" for i in range(5)])
    assert tuple(df.columns) == SAMPLE_COLUMNS
    assert len(df) == 10  # 5 prompts x 2 samples
    assert df["prompt_index"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert df["sample_index"].tolist() == [0, 1] * 5
    assert df["prompt_id"].tolist() == [f"q{i}" for i in range(5) for _ in range(2)]
    assert df["prompt"].tolist() == [p for p in PROMPTS for _ in range(2)]
    assert df["seed"].tolist() == [11, 11, 11, 11, 13, 13, 13, 13, 15, 15]  # seed + the chunk's first prompt
    assert (df["n_tokens"] <= 5).all() and (df["n_tokens"] > 0).all()
    assert sorted(p.name for p in tmp_path.glob("part-*.parquet")) == [f"part-{i:05d}.parquet" for i in range(3)]


def test_default_ids_and_deterministic(tiny_lm: Any, tmp_path: Path) -> None:
    a = sample_in_chunks(tiny_lm, PROMPTS, GEN, tmp_path / "a")
    b = sample_in_chunks(tiny_lm, PROMPTS, GEN, tmp_path / "b")
    assert a["prompt_id"].tolist() == [str(i) for i in range(5) for _ in range(2)]
    pd.testing.assert_frame_equal(a, b)
    other = sample_in_chunks(tiny_lm, PROMPTS, GEN.model_copy(update={"seed": 12}), tmp_path / "c")
    assert other["seed"].tolist()[0] == 12


def test_resume_samples_only_missing_chunks(tiny_lm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = sample_in_chunks(tiny_lm, PROMPTS, GEN, tmp_path)
    (tmp_path / "part-00001.parquet").unlink()  # as if killed while sampling the second chunk
    kept = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("part-*.parquet")}
    calls: list[list[str]] = []
    generate = tiny_lm.generate

    def counting(prompts: Any, config: Any = None, **kw: Any) -> Any:
        calls.append(list(prompts))
        return generate(prompts, config, **kw)

    monkeypatch.setattr(tiny_lm, "generate", counting)
    resumed = sample_in_chunks(tiny_lm, PROMPTS, GEN, tmp_path)
    assert calls == [PROMPTS[2:4]]  # only the missing chunk is sampled again
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("part-*.parquet") if p.name in kept} == kept
    pd.testing.assert_frame_equal(resumed, full)  # the chunk's seed makes the resampled chunk identical


def test_bad_ids_and_no_prompts(tiny_lm: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="2 prompt ids for 5 prompts"):
        sample_in_chunks(tiny_lm, PROMPTS, GEN, tmp_path, prompt_ids=["a", "b"])
    empty = sample_in_chunks(tiny_lm, [], GEN, tmp_path / "empty")
    assert empty.empty and tuple(empty.columns) == SAMPLE_COLUMNS
