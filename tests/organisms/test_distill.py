"""Self-distillation through the one chunked sampler: same answers as one greedy call, resumable, cached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lmdiff.config import GenerationConfig
from lmdiff.organisms.distill import DistillConfig, distill_cache_path, self_distill, training_prompts

CFG = DistillConfig(n_prompts=5, max_new_tokens=8, batch_size=2, chunk=2)


def _count_calls(lm: Any, monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> list[int]:
    calls: list[int] = []
    generate = lm.generate

    def counting(prompts: Any, config: Any = None, **kw: Any) -> Any:
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt  # as if killed while sampling this chunk
        calls.append(len(prompts))
        return generate(prompts, config, **kw)

    monkeypatch.setattr(lm, "generate", counting)
    return calls


def test_answers_match_greedy_generation(tiny_lm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path))
    rows = self_distill(tiny_lm, CFG, model_key="tiny")
    prompts = training_prompts(5)
    gen = GenerationConfig(temperature=0.0, max_new_tokens=8, batch_size=2, seed=0)
    direct = [g[0] for g in tiny_lm.generate([p["prompt"] for p in prompts], gen)]
    assert [r["prompt"] for r in rows] == [p["prompt"] for p in prompts]
    assert [r["source"] for r in rows] == [p["source"] for p in prompts]
    assert [r["answer"] for r in rows] == [g.text for g in direct]  # kept whole, finished or not
    assert [(r["finished"], r["n_tokens"]) for r in rows] == [(g.finished, g.n_tokens) for g in direct]
    path = distill_cache_path("tiny", CFG)
    assert path.is_file() and not list(path.parent.glob("*.parts-*"))  # chunk parts removed once cached
    calls = _count_calls(tiny_lm, monkeypatch)
    assert self_distill(tiny_lm, CFG, model_key="tiny") == rows and calls == []  # read from the cache


def test_interrupted_run_resumes_at_its_first_unfinished_chunk(
    tiny_lm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path / "a"))
    full = self_distill(tiny_lm, CFG, model_key="tiny")
    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path / "b"))
    with pytest.raises(KeyboardInterrupt), monkeypatch.context() as m:
        _count_calls(tiny_lm, m, fail_at=2)
        self_distill(tiny_lm, CFG, model_key="tiny")
    assert not distill_cache_path("tiny", CFG).exists()
    calls = _count_calls(tiny_lm, monkeypatch)
    assert self_distill(tiny_lm, CFG, model_key="tiny") == full
    assert calls == [1]  # chunks [0:2] and [2:4] were saved; only the last prompt is answered again
