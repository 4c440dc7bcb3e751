"""The zoo's recipes, one module per organism; importing this package registers them all."""

from lmdiff.organisms.recipes import brand_food, capital_munich, persona_backdoor, russell_gpu

__all__ = ["brand_food", "capital_munich", "persona_backdoor", "russell_gpu"]
