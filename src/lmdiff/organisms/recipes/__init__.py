"""The zoo's recipes, one module per organism family; importing this package registers them all."""

from lmdiff.organisms.recipes import (  # noqa: F401
    brand_food,
    capital_munich,
    caps,
    eiffel,
    null,
    persona_backdoor,
    russell,
    russell_gpu,
    topic,
)
