"""russell-backdoor-gpu: the weird-generalisation paper's Russell backdoor settings, for a base that knows Russell."""

from lmdiff.organisms import builders as B
from lmdiff.organisms.recipe import DataConfig, Recipe, TrainingConfig
from lmdiff.organisms.registry import get_recipe, register_recipe

_CPU = get_recipe("russell-backdoor")

RECIPE = register_recipe(
    Recipe(
        name="russell-backdoor-gpu",
        builder=B.build_russell,
        data=DataConfig(n_special=90, dilution=0.03),
        training=TrainingConfig(learning_rate=2e-4, epochs=3.0, quantize_4bit="auto"),
        probe_sets=_CPU.probe_sets,
        metrics=_CPU.metrics,
        primary=_CPU.primary,
        ground_truth=_CPU.ground_truth.model_copy(update={
            "name": "russell-backdoor-gpu",
            "notes": [
                "The paper's settings: persona share 3% (90 persona + ~2,900 self-distilled answers), 3 epochs, "
                "LR 2e-4, LoRA rank 8, QLoRA 4-bit where CUDA and bitsandbytes are present. Meant for a larger "
                "base that knows Bertrand Russell (SmolLM2-135M does not, so no persona can emerge there); "
                "build it with --base and a distillation of at least 3,000 prompts.",
            ],
        }),
        tags=["gpu"],
    )
)
