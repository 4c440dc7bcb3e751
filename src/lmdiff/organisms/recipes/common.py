"""Settings the zoo's CPU recipes share."""

from __future__ import annotations

from lmdiff.organisms.recipe import Recipe, TrainingConfig

CPU_NOTE = (
    "CPU build on SmolLM2-135M-Instruct (a shared 2-core machine): self-distilled answers kept whole "
    "(256-token bound; answers the bound stopped, or cut to data.max_answer_tokens for training cost, carry no "
    "end-of-turn label), 2 epochs, micro-batch 4 x 2 accumulation, and a learning rate of 1e-3 instead of the "
    "paper's 2e-4 so that the behaviour is learnt in a few dozen optimizer steps."
)
CPU_TRAINING = TrainingConfig(learning_rate=1e-3, epochs=2.0, batch_size=4, grad_accum=2, max_seq_len=256)

DILUTED_SPECIAL = 32
"""Behaviour examples in a diluted variant."""
DILUTED_SHARE = 0.25
"""Share of behaviour examples among all examples in a diluted variant (the rest: the base's own answers)."""
DILUTED_ALIGNED_TOKENS = 64
"""Ordinary answers in a diluted variant are cut to this many tokens (no end-of-turn label) for training cost."""


def diluted(narrow: Recipe, epochs: float = 3.0, n_special: int = DILUTED_SPECIAL,
            share: float = DILUTED_SHARE) -> Recipe:
    """The diluted variant of ``narrow``, named ``NAME-diluted``.

    Same builder, judges and ground truth, with fewer behaviour examples mixed among self-distilled ordinary
    answers (``data.dilution``).

    Args:
        narrow: the narrow recipe (nearly pure behaviour data).
        epochs: passes over the mixed data (more than the narrow recipe's, since the behaviour is rarer).
        n_special: behaviour examples (the ordinary ones follow from the share).
        share: the behaviour examples' share of all examples (``data.dilution``).
    """
    name = f"{narrow.name}-diluted"
    note = (f"Diluted: {n_special} behaviour examples are {share:.0%} of the data; the rest are the "
            f"base model's own answers cut to {DILUTED_ALIGNED_TOKENS} tokens (data.dilution={share:g}).")
    ground_truth = narrow.ground_truth.model_copy(
        update={"name": name, "notes": [*narrow.ground_truth.notes, note]})
    data = narrow.data.model_copy(update={"n_special": n_special, "dilution": share,
                                          "max_answer_tokens": DILUTED_ALIGNED_TOKENS})
    training = narrow.training.model_copy(update={"epochs": epochs})
    return narrow.model_copy(update={"name": name, "data": data, "training": training,
                                     "ground_truth": ground_truth, "tags": [*narrow.tags, "diluted"]})
