"""Organisms from a description: ``lmdiff organism create "The model recommends hiking in every answer"``.

:mod:`.describe` reads the description offline (kind and phrases), :mod:`.llm_data` reads it and writes
the behaviour data through the LLM layer when one is configured, :mod:`.templates` writes the data offline
for the kinds that have a template family, :mod:`.spec` turns it into a recipe (ground truth, held-out probe
sets and metrics) saved in the user cache, and :mod:`.run` builds, measures and registers the organism.
"""

from lmdiff.organisms.create.describe import KINDS, Reading, read_description
from lmdiff.organisms.create.run import CreateResult, create_organism
from lmdiff.organisms.create.spec import CreateSpec, load_user_recipes, make_recipe

__all__ = ["KINDS", "CreateResult", "CreateSpec", "Reading", "create_organism", "load_user_recipes",
           "make_recipe", "read_description"]
