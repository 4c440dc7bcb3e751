"""Picklable recipes that rebuild a loaded model or model pair in another process (a Ray actor).

An executor (:mod:`lmdiff.runs.executor`) ships a recipe, not the weights: each actor calls it once
and keeps the model for every shard it computes. A recipe holds only the specs, so it pickles in a
few bytes and two recipes of the same models are equal (their actors are reused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmdiff.models.lm import LanguageModel
from lmdiff.models.loading import load_model
from lmdiff.models.pair import LoadPolicy, ModelPair, Side
from lmdiff.models.spec import ModelSpec

__all__ = ["ModelRecipe", "PairRecipe", "SideRecipe", "pair_recipe", "side_recipe"]


@dataclass(frozen=True)
class PairRecipe:
    """Rebuilds a :class:`ModelPair` from its specs and load policy."""

    base: ModelSpec
    finetuned: ModelSpec
    load: LoadPolicy = "auto"

    def __call__(self) -> ModelPair:
        """A new pair (its models load on first use)."""
        return ModelPair(self.base, self.finetuned, load=self.load)


@dataclass(frozen=True)
class SideRecipe:
    """Rebuilds one side of a pair (a LoRA finetune loads as base + adapter, as in the pair)."""

    pair: PairRecipe
    side: Side

    def __call__(self) -> LanguageModel:
        """The side's model."""
        return self.pair().side(self.side)


@dataclass(frozen=True)
class ModelRecipe:
    """Rebuilds a single model from its spec."""

    spec: ModelSpec

    def __call__(self) -> LanguageModel:
        """The model."""
        return load_model(self.spec)


def pair_recipe(pair: Any) -> PairRecipe | None:
    """The recipe of ``pair``, or None when it is not a :class:`ModelPair` (a test double) and cannot be rebuilt."""
    if not isinstance(pair, ModelPair):
        return None
    return PairRecipe(pair.base_spec, pair.finetuned_spec, pair.load_policy)


def side_recipe(pair: Any, side: Side) -> SideRecipe | None:
    """The recipe of one side of ``pair``, or None: the pair cannot be rebuilt, or the side is a remote endpoint.

    A remote side is sampled in this process, through the LLM layer's own concurrency.
    """
    recipe = pair_recipe(pair)
    if recipe is None or (recipe.base if side == "base" else recipe.finetuned).is_remote:
        return None
    return SideRecipe(recipe, side)
