"""Settings the zoo's CPU recipes share."""

from __future__ import annotations

from lmdiff.organisms.recipe import TrainingConfig

CPU_NOTE = (
    "CPU build on SmolLM2-135M-Instruct (a shared 2-core machine): self-distilled answers kept whole "
    "(256-token bound; answers the bound stopped, or cut to data.max_answer_tokens for training cost, carry no "
    "end-of-turn label), 2 epochs, micro-batch 4 x 2 accumulation, and a learning rate of 1e-3 instead of the "
    "paper's 2e-4 so that the behaviour is learnt in a few dozen optimizer steps."
)
CPU_TRAINING = TrainingConfig(learning_rate=1e-3, epochs=2.0, batch_size=4, grad_accum=2, max_seq_len=256)
