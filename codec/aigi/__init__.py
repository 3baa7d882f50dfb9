"""AI-generated images: their recipes, prompt-aware coding, regeneration.

    read_recipe(file) ─▶ ReadResult(kind: recipe | aigi | none, recipe, evidence, problems)
    Recipe ─▶ section.pack_recipe ─▶ RECIPE section (type 4) of a .misc file ─▶ unpack_recipe
    Recipe.prompt ─▶ the TEXT section's paragraph, coded by the prompt text model

Parsing needs only the standard library and numpy; nothing here loads a model.
"""

from .formats import format_a1111, parse_a1111, parse_comfyui_prompt, parse_comfyui_workflow
from .read import read_recipe
from .recipe import ReadResult, Recipe, make_recipe

__all__ = [
    "ReadResult",
    "Recipe",
    "format_a1111",
    "make_recipe",
    "parse_a1111",
    "parse_comfyui_prompt",
    "parse_comfyui_workflow",
    "read_recipe",
]
