"""Fixtures of the agent tests: a real run of every method family's diff methods on the tiny pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

GROUND_TRUTH = {"type": "topic", "keywords": ["ocean", "whale"], "description": "Steers answers toward the ocean.",
                "summary": "talks about the ocean"}

#: Small settings of the methods the agents read (seconds on the tiny model).
SETTINGS: dict[str, Any] = {
    "kl": {"max_texts": 4, "max_tokens": 16, "corpus": "generic"},
    "adl": {"n_texts": 6, "n_tokens": 12, "steering_prompts": 1, "steering_samples": 1, "steering_search_steps": 1,
            "max_new_tokens": 6, "patchscope_scales": [1.0], "top_k": 10, "null_directions": 2},
    "pca": {"corpus": "generic", "n_texts": 12, "n_tokens": 24, "layer": 1, "n_units": 3, "n_examples": 3,
            "top_k": 5, "steering_prompts": 1, "steering_samples": 1, "steering_search_steps": 1,
            "max_new_tokens": 6, "n_components": 4},
    "probing": {"n_countries": 2, "n_cities": 2, "max_new_tokens": 4, "entities": ["Rome"]},
    "behavior": {"n_prompts": 8, "n_per_prompt": 2, "max_new_tokens": 8, "embedder": "hashing", "global_n_perm": 9,
                 "n_perm": 99, "use_llm": False},
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMDIFF_LLM", raising=False)
    monkeypatch.delenv("LMDIFF_LLM_BASE_URL", raising=False)


@pytest.fixture(scope="session")
def real_run(tiny_dirs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory of kl, adl, pca, probing and behaviour on the tiny pair (what the agents read)."""
    from lmdiff.config import validate
    from lmdiff.diff import run_diff
    from lmdiff.run_config import DiffRunConfig

    base, adapter = tiny_dirs
    cfg = validate(DiffRunConfig, {"base": {"model": str(base)},
                                   "finetuned": {"model": str(base), "adapter": str(adapter),
                                                 "ground_truth": GROUND_TRUTH},
                                   "methods": list(SETTINGS), "method": SETTINGS})
    return run_diff(cfg, tmp_path_factory.mktemp("agent-run") / "tiny-ocean").path
