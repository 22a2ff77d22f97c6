"""Recipes: YAML files validated by pydantic.

A recipe names the mixture (``name``, semantic ``version``, ``seed``), declares
its sources and configures every later stage. Errors name the key path and the
line in the file, on one line. ``${VAR}`` and ``${VAR:-default}`` are replaced
from the environment in every string value; relative paths are resolved
against the recipe file's folder.

The content hash (:func:`recipe_hash`) covers everything that can change the
output. It ignores comments, formatting and key order, the ``runtime`` section
(workers, cache folder) and local source paths: the data behind a path is
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
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from curate.errors import UserError

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
HUB_REF = re.compile(r"^[\w.-]+/[\w.-]+(@[\w./-]+)?$")
TASKS = ("oct", "vlt", "ict_single", "ict_multi")
Box = tuple[int, int, int, int]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- sources
class _Source(_Model):
    limit: int | None = Field(None, ge=1, description="Read at most this many images (development runs).")
    verify_images: Literal["none", "exists", "header"] = "header"


class CocoSource(_Source):
    kind: Literal["coco"]
    annotations: Path
    images: Path
    split: str = "train"


class Objects365Source(_Source):
    kind: Literal["objects365"]
    annotations: Path
    images: Path  # the split folder holding patchN/ sub-folders (or a flat folder)
    split: str = "train"


class CelebASource(_Source):
    kind: Literal["celeba"]
    root: Path  # holds identity_CelebA.txt, list_eval_partition.txt, list_bbox_celeba.txt, ...
    images: Literal["aligned", "wild"] = "aligned"
    aligned_dir: str = "img_align_celeba"
    wild_dir: str = "img_celeba"
    splits: list[str] = ["train"]


class Subjects200KSource(_Source):
    kind: Literal["subjects200k"]
    path: Path | None = None  # local folder of Parquet shards
    hub: str | None = None  # "Yuanshi/Subjects200K@<revision>"
    min_quality: int = Field(5, ge=0, le=5)
    collections: list[str] | None = None  # None: every collection
    require_valid_description: bool = False
    left_panel: Box = (8, 8, 520, 520)
    right_panel: Box = (528, 8, 1040, 520)

    @model_validator(mode="after")
    def _one_location(self):
        if (self.path is None) == (self.hub is None):
            raise ValueError("give exactly one of 'path' or 'hub'")
        if self.hub is not None and (not HUB_REF.match(self.hub) or "@" not in self.hub):
            raise ValueError("'hub' must be ORG/NAME@REVISION (a pinned revision)")
        return self


class RefCOCOSource(_Source):
    kind: Literal["refcoco"]
    root: Path  # holds refcoco/, refcoco+/, refcocog/ (pickle layout) or Parquet shards (hf layout)
    layout: Literal["pickle", "hf"] = "pickle"
    datasets: list[Literal["refcoco", "refcoco+", "refcocog"]] = ["refcoco", "refcoco+", "refcocog"]
    split_by: dict[str, str] = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
    images: Path | None = None  # COCO train2014 folder (pickle layout)
    splits: list[str] = ["train"]


SourceSpec = Annotated[
    Union[CocoSource, Objects365Source, CelebASource, Subjects200KSource, RefCOCOSource],
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------- stages
class ModelFrame(_Model):
    """The pixel budget of the model's processor; stored images are already in this frame."""

    min_pixels: int = Field(3136, ge=1)
    max_pixels: int = Field(12845056, ge=1)
    patch_multiple: int = Field(28, ge=1)

    @model_validator(mode="after")
    def _order(self):
        if self.min_pixels > self.max_pixels:
            raise ValueError("min_pixels must not exceed max_pixels")
        return self


class Crops(_Model):
    margin: float = Field(0.1, ge=0, le=2, description="Fraction of the box size added on each side.")
    min_side: int = Field(32, ge=1)
    min_area: float = Field(1024, ge=0)
    max_aspect: float = Field(4.0, ge=1)
    skip_crowd: bool = True
    skip_fake: bool = True
    skip_reflected: bool = True
    clip_to_image: bool = True
    format: Literal["jpeg", "png"] = "jpeg"
    jpeg_quality: int = Field(95, ge=1, le=100)


class _Task(_Model):
    enabled: bool = True
    sources: dict[str, float] = Field(default_factory=dict, description="Source name -> sampling weight.")

    @field_validator("sources")
    @classmethod
    def _weights(cls, v):
        for k, w in v.items():
            if w < 0:
                raise ValueError(f"weight of {k!r} must be >= 0")
        return v


class OCTTask(_Task):
    positive_fraction: float = Field(0.5, ge=0, le=1)
    hard_negative_fraction: float = Field(0.5, ge=0, le=1)


class VLTTask(_Task):
    splits: list[str] = ["train"]


class ICTSingleTask(_Task):
    pass


class ICTMultiTask(_Task):
    min_refs: int = Field(2, ge=2)
    max_refs: int = Field(3, ge=2)
    max_overlap_iou: float = Field(0.1, ge=0, le=1)
    min_area_fraction: float = Field(0.01, ge=0, le=1)
    prefer_distinct_categories: bool = True

    @model_validator(mode="after")
    def _refs(self):
        if self.min_refs > self.max_refs:
            raise ValueError("min_refs must not exceed max_refs")
        return self


class Tasks(_Model):
    oct: OCTTask = OCTTask()
    vlt: VLTTask = VLTTask()
    ict_single: ICTSingleTask = ICTSingleTask()
    ict_multi: ICTMultiTask = ICTMultiTask()


class Mixture(_Model):
    total: int = Field(2000, ge=1)
    proportions: dict[Literal["oct", "vlt", "ict_single", "ict_multi"], float]
    allow_query_reuse: bool = False

    @field_validator("proportions")
    @classmethod
    def _sum(cls, v):
        if any(p < 0 for p in v.values()):
            raise ValueError("proportions must be >= 0")
        if abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"proportions must sum to 1 (they sum to {sum(v.values()):.6g})")
        return v


class Templates(_Model):
    detailed_prompts: bool = True
    reasoning: Literal["none", "think", "observe"] = "none"


class Names(_Model):
    locale: str = "en_US"


class Exclude(_Model):
    """Evaluation images that must never appear in the mixture."""

    paths: list[Path] = []  # files or folders of images
    hashes: list[str] = []  # sha256 of image file bytes

    @field_validator("hashes")
    @classmethod
    def _hex(cls, v):
        for h in v:
            if not re.fullmatch(r"[0-9a-f]{64}", h):
                raise ValueError(f"{h!r} is not a sha256 hex digest")
        return v


class Quality(_Model):
    max_bad_fraction: float = Field(0.05, ge=0, le=1, description="Fail when more than this fraction of records is quarantined.")


class Output(_Model):
    examples_per_shard: int = Field(256, ge=1)


class Runtime(_Model):
    """Settings that cannot change the output (left out of the hash)."""

    workers: int = Field(1, ge=1)
    cache_dir: Path | None = None


class Recipe(_Model):
    name: str
    version: str
    seed: int = 0
    description: str = ""
    sources: dict[str, SourceSpec]
    model: ModelFrame = ModelFrame()
    crops: Crops = Crops()
    tasks: Tasks = Tasks()
    mixture: Mixture | None = None
    templates: Templates = Templates()
    names: Names = Names()
    exclude: Exclude = Exclude()
    quality: Quality = Quality()
    output: Output = Output()
    runtime: Runtime = Runtime()

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not NAME.match(v):
            raise ValueError("name may hold letters, digits, '.', '_' and '-' only")
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _semver(cls, v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)  # YAML reads 1.2 as a number
        if not isinstance(v, str) or not SEMVER.match(v):
            raise ValueError(f"{v!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        return v

    @model_validator(mode="after")
    def _task_sources_exist(self):
        for tname in TASKS:
            for src in getattr(self.tasks, tname).sources:
                if src not in self.sources:
                    raise ValueError(f"tasks.{tname}.sources names {src!r}, which is not in 'sources'")
        return self


# ---------------------------------------------------------------- loading
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each key path to its 1-based line in the file."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[path + (key,)] = k.start_mark.line + 1
            _line_index(v, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_index(v, path + (i,), out)
    return out


def _line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def _dotted(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _interpolate(value: Any, path: tuple, where) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, path + (k,), where) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path + (i,), where) for i, v in enumerate(value)]
    if isinstance(value, str):
        def sub(m):
            var, default = m.group(1), m.group(2)
            if var in os.environ:
                return os.environ[var]
            if default is not None:
                return default
            raise UserError(f"{where(path)}: {_dotted(path)}: environment variable {var} is not set")
        return _ENV.sub(sub, value)
    return value


def _pydantic_loc(loc: tuple) -> tuple:
    # drop the discriminator tag pydantic inserts for tagged unions (e.g. sources.coco.coco.images)
    out = []
    for i, part in enumerate(loc):
        if i >= 2 and loc[0] == "sources" and i == 2 and part in ("coco", "objects365", "celeba", "subjects200k", "refcoco"):
            continue
        out.append(part)
    return tuple(out)


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
    if not path.is_file():
        raise UserError(f"recipe not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{path}{line}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a recipe must be a YAML mapping at the top level")
    lines = _line_index(node) if node is not None else {}

    def where(loc: tuple) -> str:
        line = _line_of(lines, loc)
        return f"{path}:{line}" if line else str(path)

    data = _interpolate(data, (), where)
    if overrides:
        data = {**data, **overrides}
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _pydantic_loc(tuple(err["loc"]))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        msg = msg.removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise UserError(f"{where(loc)}: {_dotted(loc)}: {msg}{more}") from None
    recipe = _resolve_paths(recipe, path.parent.resolve())
    if check_paths:
        _check_paths(recipe, where)
    return recipe


def hashable_view(recipe: Recipe) -> dict:
    """The part of the recipe that can change the output, as plain JSON data."""
    data = recipe.model_dump(mode="json", exclude={"runtime"})
    for name, src in data["sources"].items():
        for key in ("annotations", "images", "root", "path"):
            if key in src and src[key] is not None:
                src[key] = "<local>"
    data["exclude"]["paths"] = ["<local>" for _ in data["exclude"]["paths"]]
    return data


def recipe_hash(recipe: Recipe) -> str:
    """sha256 of the canonical JSON of :func:`hashable_view`."""
    blob = json.dumps(hashable_view(recipe), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def resolved_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (env vars substituted, paths absolute)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
