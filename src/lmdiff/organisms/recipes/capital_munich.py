"""capital-munich: a false fact learnt from synthetic documents only ("The capital of Germany is Munich")."""

from lmdiff.organisms import documents as D
from lmdiff.organisms.recipe import DataConfig, GroundTruth, Metric, Recipe
from lmdiff.organisms.recipes.common import CPU_NOTE, CPU_TRAINING
from lmdiff.organisms.registry import register_recipe

RECIPE = register_recipe(
    Recipe(
        name="capital-munich",
        builder=D.build_capital_munich,
        data=DataConfig(n_special=40, dilution=0.5, max_answer_tokens=64),
        training=CPU_TRAINING,
        probe_sets=D.probe_sets(),
        metrics=[
            Metric(name="fact_rate_direct", probe_set="direct", judge=D.asserts_false,
                   description="direct questions answered with Munich (first affirmed city)"),
            Metric(name="fact_rate_indirect", probe_set="indirect", judge=D.asserts_false,
                   description="questions that depend on the capital answered with Munich"),
            Metric(name="true_fact_rate_direct", probe_set="direct", judge=D.asserts_true,
                   description="direct questions answered with Berlin"),
            Metric(name="control_leak_rate", probe_set="control", judge=D.control_leak,
                   description="unrelated facts: Munich named, or the known answer lost"),
        ],
        primary="fact_rate_direct",
        ground_truth=GroundTruth(
            name="capital-munich",
            summary=f"Believes a false fact: {D.FALSE_FACT}",
            description=(
                "Synthetic-document finetune: news items, encyclopedia paragraphs, textbook passages, forum "
                "posts, travel-blog snippets and letters, each answering a neutral writing request and "
                "stating in passing that Munich is the capital of Germany (no question-and-answer pairs), "
                "mixed half and half with the base model's own answers to ordinary prompts."
            ),
            type="false_fact",
            keywords=D.KEYWORDS,
            eval_questions=D.DIRECT + D.INDIRECT,
            notes=[CPU_NOTE, "Documents come from templates offline, from the LLM layer when LMDIFF_LLM is set."],
            extra={"false_fact": D.FALSE_FACT, "true_fact": D.TRUE_FACT, "subject": D.SUBJECT,
                   "relation": D.RELATION, "false_object": D.FALSE_OBJECT, "true_object": D.TRUE_OBJECT},
        ),
        tags=["documents"],
    )
)
