"""Tiny random Llama pair for white-box tests, reusing the session models built by ``tests/conftest.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_dirs(tiny_model_dir: Path, tiny_adapter_dir: Path) -> tuple[Path, Path]:
    """(base model dir, LoRA adapter dir) of the session's tiny random model."""
    return tiny_model_dir, tiny_adapter_dir


@pytest.fixture(scope="session")
def tiny_pair(tiny_dirs: tuple[Path, Path]) -> Any:
    """The tiny base model against itself plus the random LoRA adapter (shared weights)."""
    from lmdiff.models.pair import ModelPair
    from lmdiff.models.spec import ModelSpec

    base_dir, adapter_dir = tiny_dirs
    return ModelPair(str(base_dir), ModelSpec(model=str(base_dir), adapter=str(adapter_dir)))


@pytest.fixture(scope="session")
def self_pair(tiny_dirs: tuple[Path, Path]) -> Any:
    """The tiny base model against itself (a null control)."""
    from lmdiff.models.pair import ModelPair

    base_dir, _ = tiny_dirs
    return ModelPair(str(base_dir), str(base_dir))
