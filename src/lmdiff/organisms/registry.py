"""The one registry of organism recipes (:data:`RECIPES`); the zoo's own are in :mod:`lmdiff.organisms.recipes`.

Packages outside lmdiff add theirs from the entry-point group ``lmdiff.organisms``.
"""

from __future__ import annotations

from lmdiff.organisms.recipe import Recipe
from lmdiff.registry import Registry

RECIPES: Registry[Recipe] = Registry("organism recipe", group="lmdiff.organisms")


def register_recipe(recipe: Recipe) -> Recipe:
    """Add a recipe to the zoo (:data:`RECIPES`) under its name.

    Raises:
        ValueError: Another recipe has that name.
    """
    return RECIPES.register(recipe.name, recipe, stacklevel=2)


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (ConfigError with the zoo listed if unknown).

    The zoo's recipes are registered when :mod:`lmdiff.organisms` is imported (its ``__init__`` imports
    :mod:`lmdiff.organisms.zoo`, which imports :mod:`lmdiff.organisms.recipes`), so they are always here.
    """
    return RECIPES.get(name)


def recipe_names() -> list[str]:
    """Names of the zoo's recipes."""
    return RECIPES.names()
