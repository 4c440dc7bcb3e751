"""lmdiff: find, explain and verify what changed between two language models.

Quick start::

    from lmdiff import ModelPair
    pair = ModelPair("smollm2-135m-instruct", "organism:caps")
    replies = pair.finetuned.generate(["What is the capital of France?"])
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ModelSpec": "lmdiff.models.spec",
    "ModelPair": "lmdiff.models.pair",
    "LanguageModel": "lmdiff.models.lm",
    "load_model": "lmdiff.models.loading",
    "GenerationConfig": "lmdiff.config",
    "DiffRunConfig": "lmdiff.run_config",
    "run_diff": "lmdiff.diff",
    "load_prompts": "lmdiff.data.prompts",
    "LmdiffError": "lmdiff.errors",
}
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
