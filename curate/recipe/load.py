"""Recipes: YAML files validated by pydantic.

A recipe names the mixture (``name``, semantic ``version``, ``seed``), declares
its sources and configures every later stage. Errors name the key path and the
line in the file, on one line. ``${VAR}`` and ``${VAR:-default}`` are replaced
from the environment in every string value, except secrets: a variable whose
name contains TOKEN, SECRET, PASSWORD or KEY, or whose value looks like a Hub
token, is refused (the recipe is saved in every build and published); relative
paths are resolved against the recipe file's folder.

The content hash (:func:`recipe_hash`) covers everything that can change the
output. It ignores comments, formatting and key order, the ``runtime`` section
(workers, cache folder), the shortfall settings ``quality.min_task_fraction`` and
``quality.allow_shortfall`` (they decide whether a build is produced, not its
bytes) and local source paths: the data behind a path is
fingerprinted separately (size, mtime, content sample) in the build manifest,
so the same recipe run on two machines has one hash. Hub sources keep their
``repo@revision`` in the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from curate.errors import UserError
from curate.recipe.model import DEFAULT_MAX_IMAGE_PIXELS, Recipe
from curate.recipe.yamlfile import dotted as _dotted
from curate.recipe.yamlfile import first_problem, line_of, load_mapping

# ---------------------------------------------------------------- loading
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|KEY")
_HUB_TOKEN = re.compile(r"hf_[A-Za-z0-9]{20,}")


def _env_value(var: str, path: tuple, where) -> str:
    """``$var`` for a recipe value; refuses secrets: a recipe is saved in every build and published."""
    if _SECRET_NAME.search(var.upper()):
        raise UserError(
            f"{where(path)}: {_dotted(path)}: refusing to put environment variable {var} into the recipe: its name "
            "says it holds a secret (TOKEN, SECRET, PASSWORD or KEY), and a recipe is saved with every build and published"
        )
    value = os.environ.get(var, "")
    if _HUB_TOKEN.search(value):
        raise UserError(
            f"{where(path)}: {_dotted(path)}: refusing to put environment variable {var} into the recipe: its value "
            "looks like a Hugging Face Hub token (hf_...), and a recipe is saved with every build and published"
        )
    return value


def _interpolate(value: Any, path: tuple, where, done: dict | None = None) -> Any:
    """``${VAR}`` / ``${VAR:-default}`` replaced in every string; a list or mapping shared through YAML aliases
    is interpolated once (``done``: id -> result), so aliases that refer to each other cannot make it exponential."""
    done = {} if done is None else done
    if isinstance(value, (dict, list)):
        if id(value) in done:
            return done[id(value)][1]
        if isinstance(value, dict):
            out: Any = {k: _interpolate(v, path + (k,), where, done) for k, v in value.items()}
        else:
            out = [_interpolate(v, path + (i,), where, done) for i, v in enumerate(value)]
        done[id(value)] = (value, out)  # the source object is kept alive so that its id is not reused
        return out
    if isinstance(value, str):

        def sub(m):
            var, default = m.group(1), m.group(2)
            if var in os.environ or _SECRET_NAME.search(var.upper()):
                return _env_value(var, path, where)
            if default is not None:
                return default
            raise UserError(f"{where(path)}: {_dotted(path)}: environment variable {var} is not set")

        return _ENV.sub(sub, value)
    return value


def _resolve_paths(recipe: Recipe, base: Path) -> Recipe:
    def fix(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = Path(os.path.expanduser(str(p)))
        return p if p.is_absolute() else (base / p).resolve()

    def fix_model(m: BaseModel) -> BaseModel:
        upd = {}
        for name, val in m:
            if isinstance(val, Path):
                upd[name] = fix(val)
            elif isinstance(val, list) and val and all(isinstance(x, Path) for x in val):
                upd[name] = [fix(x) for x in val]
        return m.model_copy(update=upd) if upd else m

    sources = {k: fix_model(v) for k, v in recipe.sources.items()}
    runtime = fix_model(recipe.runtime)
    exclude = fix_model(recipe.exclude)
    return recipe.model_copy(update={"sources": sources, "runtime": runtime, "exclude": exclude})


def _check_paths(recipe: Recipe, where) -> None:
    for sname, spec in recipe.sources.items():
        for field_name, val in spec:
            if isinstance(val, Path) and not val.exists():
                path = ("sources", sname, field_name)
                raise UserError(f"{where(path)}: {_dotted(path)}: path does not exist: {val}")
    for i, p in enumerate(recipe.exclude.paths):
        if not p.exists():
            path = ("exclude", "paths", i)
            raise UserError(f"{where(path)}: {_dotted(path)}: path does not exist: {p}")


def load_recipe(path: str | Path, *, check_paths: bool = True, overrides: dict | None = None) -> Recipe:
    """Load, interpolate, validate and resolve a recipe file.

    Raises :class:`UserError` with ``FILE:LINE: key.path: problem`` on any error.
    """
    path = Path(path)
    data, lines = load_mapping(path, "recipe")

    def where(loc: tuple) -> str:
        line = line_of(lines, loc)
        return f"{path}:{line}" if line else str(path)

    data = _interpolate(data, (), where)
    if overrides:
        data = {**data, **overrides}
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        loc, msg = first_problem(exc)
        raise UserError(f"{where(loc)}: {_dotted(loc)}: {msg}") from None
    recipe = _resolve_paths(recipe, path.parent.resolve())
    if check_paths:
        _check_paths(recipe, where)
    return recipe


# Quality settings that decide whether a build is produced, not what it holds (recipes hashed before they
# existed keep their hash).
UNHASHED_QUALITY = ("min_task_fraction", "allow_shortfall")


def hashable_view(recipe: Recipe) -> dict:
    """The part of the recipe that can change the output, as plain JSON data."""
    data = recipe.model_dump(mode="json", exclude={"runtime": True, "quality": set(UNHASHED_QUALITY)})
    for name, src in data["sources"].items():
        # only where the data lives is local: a non-path value under the same key name (CelebA's
        # ``images: aligned|wild``) changes the output and stays in the hash
        for key, value in recipe.sources[name]:
            if isinstance(value, Path):
                src[key] = "<local>"
    data["exclude"]["paths"] = ["<local>" for _ in data["exclude"]["paths"]]
    if data["quality"].get("max_image_pixels") == DEFAULT_MAX_IMAGE_PIXELS:
        del data["quality"]["max_image_pixels"]  # the default: recipes written before the key keep their hash
    return data


def recipe_hash(recipe: Recipe) -> str:
    """sha256 of the canonical JSON of :func:`hashable_view`."""
    blob = json.dumps(hashable_view(recipe), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def resolved_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (env vars substituted, paths absolute)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
