"""Models: specs, the shipped registry, loading, the batched operations and pairs.

Names are imported lazily so that ``lmdiff.config`` can use :class:`ModelSpec` without
pulling in torch-heavy modules (and without an import cycle).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ForwardBatch": "lmdiff.models.lm",
    "Generation": "lmdiff.models.lm",
    "LanguageModel": "lmdiff.models.lm",
    "load_model": "lmdiff.models.loading",
    "ModelPair": "lmdiff.models.pair",
    "TokenizerCheck": "lmdiff.models.pair",
    "SHIPPED": "lmdiff.models.registry",
    "ShippedModel": "lmdiff.models.registry",
    "get_shipped": "lmdiff.models.registry",
    "ModelSpec": "lmdiff.models.spec",
    "register_prefix": "lmdiff.models.spec",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
