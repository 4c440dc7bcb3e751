"""The zoo's recipes, one module per organism family; importing this package registers them all."""

from lmdiff.organisms.recipes import caps, eiffel, null, russell, topic  # noqa: F401
