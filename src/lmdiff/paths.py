"""Where lmdiff keeps its user cache (converted models, LLM call cache)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """Return the lmdiff cache directory (``$LMDIFF_HOME`` or ``~/.cache/lmdiff``)."""
    env = os.environ.get("LMDIFF_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lmdiff"


def models_dir() -> Path:
    """Return the directory holding converted models."""
    return cache_home() / "models"
