"""Hidden states of both models on identical tokens: a sharded on-disk store with float64 statistics."""

from lmdiff.activations.stats import RunningStats
from lmdiff.activations.store import (
    ActivationStore,
    Chunk,
    collect_activations,
    open_store,
    store_from_arrays,
    store_key,
)

__all__ = ["ActivationStore", "Chunk", "RunningStats", "collect_activations", "open_store", "store_from_arrays",
           "store_key"]
