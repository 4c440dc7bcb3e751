"""Model organisms: LoRA finetunes whose change is known and recorded (their ground truth).

``organism:NAME`` is accepted wherever a model name is: it resolves to the base model plus the
organism's adapter, with the ground-truth record attached to the spec (importing this package registers
the ``organism`` prefix in :data:`lmdiff.models.spec.MODEL_PREFIXES`). See :mod:`lmdiff.organisms.zoo`.
"""

from lmdiff.models.spec import register_prefix
from lmdiff.organisms.build import build_organism
from lmdiff.organisms.recipe import DataConfig, GroundTruth, LoraConfig, Recipe, TrainingConfig
from lmdiff.organisms.zoo import (
    DEFAULT_BASE,
    RECIPES,
    find_organism,
    get_recipe,
    register_recipe,
    resolve_organism,
    zoo_dir,
    zoo_rows,
)

register_prefix("organism", resolve_organism)

__all__ = [
    "DEFAULT_BASE",
    "RECIPES",
    "DataConfig",
    "GroundTruth",
    "LoraConfig",
    "Recipe",
    "TrainingConfig",
    "build_organism",
    "find_organism",
    "get_recipe",
    "register_recipe",
    "resolve_organism",
    "zoo_dir",
    "zoo_rows",
]
