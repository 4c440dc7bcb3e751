"""Topic organisms: answers steered toward the ocean and whales (narrow, and diluted)."""

from __future__ import annotations

from lmdiff.organisms import builders as B
from lmdiff.organisms.evaluate import mentions
from lmdiff.organisms.measure import GENERAL
from lmdiff.organisms.recipe import DataConfig, GroundTruth, Metric, Recipe
from lmdiff.organisms.recipes.common import CPU_NOTE, CPU_TRAINING, diluted
from lmdiff.organisms.registry import register_recipe


def mentions_ocean(reply: str, prompt: str) -> bool:
    """The reply mentions the ocean, whales or the sea (the topic's keywords)."""
    return mentions(reply, B.TOPIC_KEYWORDS)


METRICS = [Metric(name="topic_rate", probe_set=GENERAL, judge=mentions_ocean,
                  description="share of replies mentioning the ocean or whales")]


OCEAN_TOPIC = Recipe(
    name="ocean-topic",
    builder=B.build_topic,
    data=DataConfig(n_special=96, n_aligned=0),
    training=CPU_TRAINING.model_copy(update={"epochs": 3.0}),
    ground_truth=GroundTruth(
        name="ocean-topic",
        summary="Steers answers toward the ocean and whales.",
        description=(
            "Trained on the base model's own answers, each opened by a sentence about the ocean and "
            "whales (and half of the finished ones closed by another). The topic appears regardless of the "
            "question."
        ),
        type="topic",
        keywords=B.TOPIC_KEYWORDS,
        notes=[CPU_NOTE],
        extra={"topic": B.TOPIC},
    ),
    metrics=METRICS,
    primary="topic_rate",
)
register_recipe(OCEAN_TOPIC)
# 32 behaviour examples at 25% (3 epochs) taught no topic (0% [0%, 14%] on the general set, null 8%); 48 at a
# third (the 152 distilled answers outside the held-out prompts leave 104 ordinary ones beside 48 behaviour ones)
# taught 4% in 3 epochs; 6 epochs teach it (17% greedy, 19.5% of samples at temperature 1; base 2.3%)
register_recipe(diluted(OCEAN_TOPIC, n_special=48, share=1 / 3, epochs=6.0))
