"""A small real run directory for the dashboard's tests: run_diff with kl and diff_mining on the tiny pair."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def runs_root(tiny_dirs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs directory holding one finished run, ``tiny`` (kl with its heatmap examples, diff_mining, findings)."""
    from lmdiff.config import validate
    from lmdiff.diff import run_diff
    from lmdiff.run_config import DiffRunConfig

    base_dir, adapter_dir = tiny_dirs
    cfg = validate(DiffRunConfig, {
        "base": {"model": str(base_dir), "dtype": "float32"},
        "finetuned": {"model": str(base_dir), "adapter": str(adapter_dir), "dtype": "float32"},
        "methods": ["kl", "diff_mining"],
        "method": {"kl": {"corpus": "generic", "max_texts": 4, "max_tokens": 16},
                   "diff_mining": {"max_texts": 4, "positions": 8}},
    })
    root = tmp_path_factory.mktemp("dash") / "runs"
    run_diff(cfg, root / "tiny")
    return root


@pytest.fixture(scope="session")
def tiny_loaded(tiny_pair):  # type: ignore[no-untyped-def]
    """The session's tiny LoRA pair, wrapped as the dashboard holds a loaded pair."""
    from lmdiff.dashboard.live import LoadedPair

    return LoadedPair(tiny_pair)
