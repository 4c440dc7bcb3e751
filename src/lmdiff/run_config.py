"""The configs of whole runs (`lmdiff diff`, `lmdiff generate`): a pair or list of models plus settings.

They sit above :mod:`lmdiff.models` (they name models) and below the methods and commands that
read them; the generic configuration machinery and the shared settings live in :mod:`lmdiff.config`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lmdiff.config import ComputeConfig, GenerationConfig, PromptsConfig, StrictModel
from lmdiff.models.spec import ModelSpec

__all__ = ["DiffRunConfig", "GenerateRunConfig"]


class GenerateRunConfig(StrictModel):
    """`lmdiff generate`: sample one model or both sides of a pair."""

    models: list[ModelSpec]
    prompts: list[str]
    generation: GenerationConfig = GenerationConfig(temperature=0.0, max_new_tokens=128)
    compute: ComputeConfig = ComputeConfig()


class DiffRunConfig(StrictModel):
    """`lmdiff diff`: run named methods on a model pair."""

    base: ModelSpec
    finetuned: ModelSpec
    methods: list[str] | None = Field(
        None, description="methods to run; None: the default set for the pair (lmdiff.diff.default_methods)"
    )
    seed: int = 0
    generation: GenerationConfig = GenerationConfig()
    compute: ComputeConfig = ComputeConfig()
    prompts: PromptsConfig = PromptsConfig()
    method: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-method settings, e.g. method.kl.max_texts=200"
    )
