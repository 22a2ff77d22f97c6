"""The recipe model: pydantic classes for every section of a recipe file.

Loading, interpolation, path resolution and hashing live in :mod:`curate.recipe`,
which re-exports these classes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, SerializeAsAny, field_validator, model_validator
from pydantic_core import PydanticCustomError

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
HUB_REF = re.compile(r"^[\w.-]+/[\w.-]+(@[\w./-]+)?$")
TASKS = ("oct", "vlt", "ict_single", "ict_multi")
Box = tuple[int, int, int, int]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- sources
class SourceSpecBase(_Model):
    """Settings every source has; each source kind's module subclasses it with ``kind: Literal["<kind>"]``
    and its own fields (:mod:`curate.sources.registry`)."""

    limit: int | None = Field(None, ge=1, description="Read at most this many images (development runs).")
    verify_images: Literal["none", "exists", "header"] = "header"


def validate_source_spec(value):
    """Validate one ``sources.<name>`` entry with the spec model of its registered ``kind``."""
    if isinstance(value, SourceSpecBase):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError(
            "model_attributes_type", "Input should be a valid dictionary or object to extract fields from"
        )
    from curate.sources.registry import source_kinds  # the source modules import this one

    kinds = source_kinds()
    if "kind" not in value:
        raise PydanticCustomError("union_tag_not_found", "Unable to extract tag using discriminator 'kind'")
    tag = value["kind"]
    kind = kinds.get(tag) if isinstance(tag, str) else None
    if kind is None:
        raise PydanticCustomError(
            "union_tag_invalid",
            "Input tag '{tag}' found using 'kind' does not match any of the expected tags: {expected_tags}",
            {"tag": str(tag), "expected_tags": ", ".join(repr(k) for k in kinds)},
        )
    return kind.spec.model_validate(value)


SourceSpec = Annotated[SerializeAsAny[SourceSpecBase], PlainValidator(validate_source_spec)]


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


# Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS, about 89.5 MP), spelled out so that the model
# does not import Pillow; curate.imageio checks that they agree.
DEFAULT_MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3


class Quality(_Model):
    max_bad_fraction: float = Field(
        0.05, ge=0, le=1, description="Fail when more than this fraction of records is quarantined."
    )
    max_image_pixels: int = Field(
        DEFAULT_MAX_IMAGE_PIXELS,
        ge=0,
        description="Source images with more pixels (width x height, from the header) are quarantined as "
        "image_too_large instead of being decoded; 0: no limit.",
    )
    # The two shortfall settings decide whether a build is produced, never its bytes: left out of the hash.
    min_task_fraction: float = Field(
        0.9, ge=0, le=1, description="Fail when a task gets less than this fraction of the examples it asked for."
    )
    allow_shortfall: bool = Field(False, description="Build even when a task falls below min_task_fraction.")


class Output(_Model):
    examples_per_shard: int = Field(256, ge=1)


class Runtime(_Model):
    """Settings that cannot change the output (left out of the hash)."""

    workers: int = Field(1, ge=1)
    cache_dir: Path | None = None
    executor: Literal["local", "ray"] = "local"  # where crop and shard jobs run (docs/cluster.md)
    ray_address: str | None = None  # executor ray: the cluster to use (None: RAY_ADDRESS, else a private local Ray)


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
