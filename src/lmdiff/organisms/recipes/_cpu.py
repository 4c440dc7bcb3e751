"""Training settings shared by the CPU recipes of this package (as the zoo's CPU recipes use)."""

from lmdiff.organisms.recipe import TrainingConfig

CPU_TRAINING = TrainingConfig(learning_rate=1e-3, epochs=3.0, batch_size=4, grad_accum=2, max_seq_len=192)
CPU_NOTE = (
    "CPU build on SmolLM2-135M-Instruct: a few dozen behaviour examples, 3 epochs, micro-batch 4 x 2 "
    "accumulation, learning rate 1e-3 instead of the paper's 2e-4 so that the behaviour is learnt in a few "
    "dozen optimizer steps."
)
