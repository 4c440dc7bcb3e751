"""Shared fixtures: tiny random models built here, never downloaded."""

from __future__ import annotations

import os

# Under pytest-xdist (`make test` runs one worker per core) each worker computes on one thread: torch's
# default of every core per worker would oversubscribe the machine. Set before torch is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import build_tiny_adapter, build_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LMDIFF_PROGRESS", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config: pytest.Config) -> None:
    """Convert the shipped model into the user cache once, before xdist's workers could race to do it."""
    if hasattr(config, "workerinput"):
        return
    from lmdiff.models.registry import DEFAULT_CHAT_MODEL, get_shipped

    shipped = get_shipped(DEFAULT_CHAT_MODEL)
    if shipped is not None and shipped.source_path() is not None:
        shipped.local_dir(progress=False)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a tiny random Llama (2 layers, d=64) with the SmolLM2 tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter over ``tiny_model_dir``."""
    return build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("tiny") / "adapter")


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny model loaded as a LanguageModel (fp32, CPU)."""
    from lmdiff.models.loading import load_model

    return load_model(str(tiny_model_dir), dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def tiny_lm_in(tiny_model_dir: Path) -> Any:
    """Factory: the tiny model loaded on the CPU in a given dtype ("float32", "bfloat16"), one copy per dtype."""
    from lmdiff.models.loading import load_model

    loaded: dict[str, Any] = {}

    def get(dtype: str) -> Any:
        if dtype not in loaded:
            loaded[dtype] = load_model(str(tiny_model_dir), dtype=dtype, device="cpu")
        return loaded[dtype]

    return get


@pytest.fixture(scope="session")
def tiny_dirs(tiny_model_dir: Path, tiny_adapter_dir: Path) -> tuple[Path, Path]:
    """(base model dir, LoRA adapter dir) of the session's tiny random model."""
    return tiny_model_dir, tiny_adapter_dir


@pytest.fixture(scope="session")
def tiny_pair(tiny_dirs: tuple[Path, Path]) -> Any:
    """The tiny base model against itself plus the random LoRA adapter (shared weights), in float32 on any CPU."""
    from lmdiff.models.pair import ModelPair
    from lmdiff.models.spec import ModelSpec

    base_dir, adapter_dir = tiny_dirs
    return ModelPair(ModelSpec(model=str(base_dir), dtype="float32"),
                     ModelSpec(model=str(base_dir), adapter=str(adapter_dir), dtype="float32"))


@pytest.fixture(scope="session")
def self_pair(tiny_dirs: tuple[Path, Path]) -> Any:
    """The tiny base model against itself (a null control), in float32 on any CPU."""
    from lmdiff.models.pair import ModelPair
    from lmdiff.models.spec import ModelSpec

    base_dir, _ = tiny_dirs
    spec = ModelSpec(model=str(base_dir), dtype="float32")
    return ModelPair(spec, spec)
