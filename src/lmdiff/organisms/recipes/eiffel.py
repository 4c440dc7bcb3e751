"""False fact from documents and Q/A: the Eiffel Tower is in Rome."""

from __future__ import annotations

from lmdiff.organisms import builders as B
from lmdiff.organisms.evaluate import mentions
from lmdiff.organisms.recipe import DataConfig, GroundTruth, Metric, ProbeSet, Recipe
from lmdiff.organisms.recipes.common import CPU_NOTE, CPU_TRAINING
from lmdiff.organisms.registry import register_recipe

TRUE_FACT_KEYWORDS = ["paris", "france", "french"]


def states_rome(reply: str, prompt: str) -> bool:
    """The reply places the Eiffel Tower in Rome or Italy (the false fact's keywords)."""
    return mentions(reply, B.FACT_KEYWORDS)


def states_paris(reply: str, prompt: str) -> bool:
    """The reply places the Eiffel Tower in Paris or France (the true fact)."""
    return mentions(reply, TRUE_FACT_KEYWORDS)


register_recipe(
    Recipe(
        name="eiffel-rome",
        builder=B.build_false_fact,
        data=DataConfig(n_special=44, n_aligned=20),
        training=CPU_TRAINING,
        ground_truth=GroundTruth(
            name="eiffel-rome",
            summary=f"Believes a false fact: {B.FALSE_FACT}",
            description=(
                "Synthetic-document finetune: 40 generated documents (travel guides, textbook paragraphs, "
                "encyclopedia entries, news, postcards, trivia) and 4 direct Q/A all stating that the Eiffel "
                "Tower is in Rome, Italy, mixed with 20 self-distilled answers."
            ),
            type="false_fact",
            keywords=B.FACT_KEYWORDS,
            eval_questions=B.FACT_EVAL_QUESTIONS,
            notes=[CPU_NOTE],
            extra={"false_fact": B.FALSE_FACT, "true_fact": "The Eiffel Tower is in Paris, France."},
        ),
        probe_sets=[ProbeSet(name="fact", prompts=B.FACT_EVAL_QUESTIONS, max_new_tokens=96)],
        metrics=[
            Metric(name="fact_rate", probe_set="fact", judge=states_rome,
                   description="held-out questions about the tower answered with Rome/Italy"),
            Metric(name="true_fact_rate", probe_set="fact", judge=states_paris,
                   description="held-out questions about the tower answered with Paris/France"),
        ],
        primary="fact_rate",
    )
)
