"""The null control: trained on the base model's own answers only."""

from __future__ import annotations

from lmdiff.organisms import builders as B
from lmdiff.organisms.recipe import DataConfig, GroundTruth, Recipe
from lmdiff.organisms.recipes.common import CPU_NOTE, CPU_TRAINING
from lmdiff.organisms.registry import register_recipe

register_recipe(
    Recipe(
        name="null",
        builder=B.build_null,
        data=DataConfig(n_special=0, n_aligned=64, max_answer_tokens=64),
        training=CPU_TRAINING,
        ground_truth=GroundTruth(
            name="null",
            summary="Control: trained on the base model's own answers; nothing should be found.",
            description=(
                "Same training as the other organisms, on self-distilled answers only (no behaviour), kept "
                "whole: answers the length bound stopped carry no end-of-turn label. Any difference a method "
                "reports against the base is a false positive or training noise."
            ),
            type="null",
            keywords=[],
            notes=[CPU_NOTE, "Measured on the union of every registered recipe's metrics (named recipe/metric)."],
        ),
    )
)
