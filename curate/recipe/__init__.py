"""Recipes: the pydantic model (:mod:`curate.recipe.model`), YAML loading with line-numbered errors
(:mod:`curate.recipe.load`, :mod:`curate.recipe.yamlfile`), ``${VAR}`` interpolation and the content hash.

Each source kind's entry model (``sources.<name>``) lives in its source module and is registered in
:mod:`curate.sources.registry` (e.g. ``curate.sources.coco.CocoSource``)."""

from curate.recipe.load import hashable_view, load_recipe, recipe_hash, resolved_yaml
from curate.recipe.model import (
    HUB_REF,
    NAME,
    SEMVER,
    TASKS,
    Box,
    Crops,
    Exclude,
    ICTMultiTask,
    ICTSingleTask,
    Mixture,
    ModelFrame,
    Names,
    OCTTask,
    Output,
    Quality,
    Recipe,
    Runtime,
    SourceSpec,
    SourceSpecBase,
    Tasks,
    Templates,
    VLTTask,
)

__all__ = [
    "Box",
    "Crops",
    "Exclude",
    "HUB_REF",
    "ICTMultiTask",
    "ICTSingleTask",
    "Mixture",
    "ModelFrame",
    "NAME",
    "Names",
    "OCTTask",
    "Output",
    "Quality",
    "Recipe",
    "Runtime",
    "SEMVER",
    "SourceSpec",
    "SourceSpecBase",
    "TASKS",
    "Tasks",
    "Templates",
    "VLTTask",
    "hashable_view",
    "load_recipe",
    "recipe_hash",
    "resolved_yaml",
]
