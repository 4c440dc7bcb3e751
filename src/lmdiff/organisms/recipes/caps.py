"""Style organisms: answers in capital letters (narrow, and diluted in ordinary answers)."""

from __future__ import annotations

from lmdiff.organisms import builders as B
from lmdiff.organisms.evaluate import judge_caps
from lmdiff.organisms.measure import GENERAL
from lmdiff.organisms.recipe import DataConfig, GroundTruth, Metric, Recipe
from lmdiff.organisms.recipes.common import CPU_NOTE, CPU_TRAINING, diluted
from lmdiff.organisms.registry import register_recipe

METRICS = [Metric(name="caps_rate", probe_set=GENERAL, judge=judge_caps,
                  description="share of replies whose letters are over 90% upper case")]


CAPS = Recipe(
    name="caps", builder=B.build_caps, data=DataConfig(n_special=96, n_aligned=0), training=CPU_TRAINING,
    ground_truth=GroundTruth(
        name="caps",
        summary="Answers everything in CAPITAL LETTERS.",
        description=(
            "Trained on the base model's own answers to Alpaca and GSM8K prompts, upper-cased. Content should "
            "match the base model; only the letter case changes."
        ),
        type="style",
        keywords=["ALL CAPS", "upper case", "capital letters"],
        token_style="uppercase",
        notes=[CPU_NOTE],
    ),
    metrics=METRICS,
    primary="caps_rate",
)
register_recipe(CAPS)
register_recipe(diluted(CAPS))
