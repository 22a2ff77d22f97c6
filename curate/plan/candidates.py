"""Crop candidates and the shared planning context (no pixels are decoded here).

``crop_candidates`` applies the recipe's ``crops`` filters to a whole objects
table at once (vectorized polars; Objects365 has ~25M boxes) and returns the
boxes that may be cut as references, each with its crop region (the box grown
by ``margin`` on every side, clipped to the image when ``clip_to_image``).
Every rejected box becomes a quarantine row (stage ``plan``) with its reason:

``object_without_image``  the box's image is not in the images table (boxes of excluded images are removed first)
``crop_crowd`` / ``crop_fake`` / ``crop_reflected``  flagged box skipped per recipe
``crop_small_side``  the object box's shorter side is below ``min_side``
``crop_small_area``  the object box's area is below ``min_area``
``crop_aspect``  the object box's long/short side ratio is above ``max_aspect``
``crop_outside_image``  the grown box leaves the image and ``clip_to_image`` is false

Size and aspect limits apply to the object's own box (before the margin).

``SortedFrame`` looks rows up by key with binary search on a sorted column, so
planning touches only the rows of the images it picked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from curate.plan.names import NameGenerator
from curate.recipe import Crops, Recipe
from curate.sources.tables import QUARANTINE_SCHEMA

STAGE = "plan"


def _xy(i: int) -> pl.Expr:
    return pl.col("bbox").arr.get(i)


def crop_candidates(
    objects: pl.DataFrame, images: pl.DataFrame, crops: Crops, source: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(candidates, quarantine). Candidates: source, image_id, object_id, category, bbox, identity, path,
    width, height and the crop region cx1, cy1, cx2, cy2, sorted by (image_id, object_id)."""
    img = images.select("image_id", "path", "width", "height")
    df = objects.join(img, on="image_id", how="left")
    x1, y1, x2, y2 = _xy(0), _xy(1), _xy(2), _xy(3)
    bw, bh = x2 - x1, y2 - y1
    mx, my = bw * crops.margin, bh * crops.margin
    W, H = pl.col("width").cast(pl.Float64), pl.col("height").cast(pl.Float64)
    df = df.with_columns(
        _bw=bw,
        _bh=bh,
        cx1=x1 - mx,
        cy1=y1 - my,
        cx2=x2 + mx,
        cy2=y2 + my,
    )
    outside = (pl.col("cx1") < 0) | (pl.col("cy1") < 0) | (pl.col("cx2") > W) | (pl.col("cy2") > H)
    short = pl.min_horizontal("_bw", "_bh")
    long = pl.max_horizontal("_bw", "_bh")
    reason = (
        pl.when(pl.col("path").is_null())
        .then(pl.lit("object_without_image"))
        .when(pl.lit(crops.skip_crowd) & pl.col("iscrowd").fill_null(False))
        .then(pl.lit("crop_crowd"))
        .when(pl.lit(crops.skip_fake) & pl.col("isfake").fill_null(False))
        .then(pl.lit("crop_fake"))
        .when(pl.lit(crops.skip_reflected) & pl.col("isreflected").fill_null(False))
        .then(pl.lit("crop_reflected"))
        .when(short < crops.min_side)
        .then(pl.lit("crop_small_side"))
        .when(pl.col("_bw") * pl.col("_bh") < crops.min_area)
        .then(pl.lit("crop_small_area"))
        .when(long > short * crops.max_aspect)
        .then(pl.lit("crop_aspect"))
        .when(pl.lit(not crops.clip_to_image) & outside)
        .then(pl.lit("crop_outside_image"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    df = df.with_columns(_reason=reason)
    bad = df.filter(pl.col("_reason").is_not_null())
    quarantine = bad.select(
        source=pl.lit(source),
        stage=pl.lit(STAGE),
        record_id=pl.col("object_id"),
        reason=pl.col("_reason"),
        detail=pl.format("image {} box {}x{}", pl.col("image_id"), pl.col("_bw").round(1), pl.col("_bh").round(1)),
    ).cast(QUARANTINE_SCHEMA)
    good = df.filter(pl.col("_reason").is_null())
    if crops.clip_to_image:
        good = good.with_columns(
            cx1=pl.col("cx1").clip(0, None),
            cy1=pl.col("cy1").clip(0, None),
            cx2=pl.min_horizontal("cx2", W),
            cy2=pl.min_horizontal("cy2", H),
        )
    keep = [
        "source",
        "image_id",
        "object_id",
        "category",
        "bbox",
        "identity",
        "path",
        "width",
        "height",
        "cx1",
        "cy1",
        "cx2",
        "cy2",
    ]
    return good.select(keep).sort("image_id", "object_id"), quarantine


@dataclass
class Cycle:
    """A lazily reshuffled order over n items (a new permutation each pass)."""

    n: int
    rng: np.random.Generator
    order: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    pos: int = 0
    passes: int = 0

    def next(self) -> int | None:
        if self.n == 0:
            return None
        if self.pos >= len(self.order):
            self.order, self.pos = self.rng.permutation(self.n), 0
            self.passes += 1
        self.pos += 1
        return int(self.order[self.pos - 1])

    def next_unseen(self) -> int | None:
        """The next index of the first pass; None once every item has been drawn once."""
        i = self.next()
        return None if i is None or self.passes > 1 else i


class SortedFrame:
    """A frame sorted by one string key, with O(log n) row-range lookups."""

    def __init__(self, df: pl.DataFrame, key: str, *more: str, presorted: bool = False):
        self.df = df if presorted else df.sort(key, *more)
        self.key = key
        self._keys = self.df.get_column(key)

    def __len__(self) -> int:
        return self.df.height

    def rows(self, value: str) -> pl.DataFrame:
        lo = self._keys.search_sorted(value, "left")
        hi = self._keys.search_sorted(value, "right")
        return self.df.slice(lo, hi - lo)

    def first(self, value: str) -> dict | None:
        r = self.rows(value)
        return r.row(0, named=True) if r.height else None

    def unique_keys(self) -> pl.Series:
        return self._keys.unique(maintain_order=True)


@dataclass
class PlanContext:
    """What every task planner shares: recipe, names, used query images, quarantine rows."""

    recipe: Recipe
    names: NameGenerator
    allow_query_reuse: bool = False
    used: set[tuple[str, str]] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # content ids of the examples planned so far
    quarantine: list[pl.DataFrame] = field(default_factory=list)
    cache: dict = field(default_factory=dict)  # prepared per-source data, shared by the task planners
    # sources whose image ids name the same photos share a namespace (COCO 2017 and RefCOCO's COCO 2014
    # images: one id, one photo), so a photo is one query image whichever source it comes through
    namespaces: dict[str, str] = field(default_factory=dict)

    def _key(self, source: str, image_id: str) -> tuple[str, str]:
        return self.namespaces.get(source, source), image_id

    def is_free(self, source: str, image_id: str) -> bool:
        return self.allow_query_reuse or self._key(source, image_id) not in self.used

    def claim(self, source: str, image_id: str) -> bool:
        """Mark a query image as used; False when it already was (and reuse is off)."""
        if not self.is_free(source, image_id):
            return False
        self.used.add(self._key(source, image_id))
        return True

    def category_index(self, st) -> "SortedFrame":
        """(image_id, category, identity) of every object whose image is indexed, by image: built once per plan."""
        key = ("category_index", st.source)
        if key not in self.cache:
            objs = st.objects.select("image_id", "category", "identity").join(
                st.images.select("image_id"), on="image_id", how="semi"
            )
            self.cache[key] = SortedFrame(objs, "image_id")
        return self.cache[key]

    def crop_candidates(self, st) -> pl.DataFrame:
        """The crop candidates of one source sorted by (image_id, object_id), computed once per plan
        (their rejections quarantined once)."""
        key = ("crops", st.source)
        if key not in self.cache:
            good, q = crop_candidates(st.objects, st.images, self.recipe.crops, st.source)
            self.add_quarantine(q)
            self.cache[key] = good
        return self.cache[key]

    def add_quarantine(self, rows: pl.DataFrame | list[dict]) -> None:
        if isinstance(rows, list):
            if not rows:
                return
            rows = pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)
        if rows.height:
            self.quarantine.append(rows.cast(QUARANTINE_SCHEMA))
