"""Dictionaries learnt from the activation store: streamed batches, BatchTopK SAEs and crosscoders, SAELens I/O.

Modules: :mod:`.stream` (shuffled batches shard by shard, reproducible from a step), :mod:`.modules`
(the BatchTopK dictionary, one or two sides), :mod:`.train` (Adam, k annealing, AuxK, atomic
checkpoints and resume, metrics and plots), :mod:`.saelens` (SAELens' on-disk format, both
ways), :mod:`.examples` (per-unit top activations over the store), :mod:`.scaling` (a
crosscoder's decoder-norm tags and latent scaling).

The package reads the store and nothing that runs a model, so it sits beside :mod:`lmdiff.interp`
in the layers: methods combine the two (a dictionary's directions, read out by interp's lens
and steering).
"""

from lmdiff.dictionaries.modules import BatchTopK
from lmdiff.dictionaries.stream import ActivationStream
from lmdiff.dictionaries.train import TrainedDictionary, TrainSettings, train_dictionary

__all__ = ["ActivationStream", "BatchTopK", "TrainSettings", "TrainedDictionary", "train_dictionary"]
