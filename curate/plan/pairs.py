"""Reference-query pairs per source kind (the OCT pairs; single-ICT uses the positive ones).

Each source kind names its sampler (a :class:`PairSampler`) in its registration
(:mod:`curate.sources.registry`); the built-in samplers:

* COCO / Objects365: reference = a crop candidate; positive query = its own full
  image; negative query = another image. ``hard`` negative: an image holding
  another instance of the same category (any annotated box of it); ``easy``: an
  image with no box of that category. Where the objects table gives instance
  identities, no negative query shows the reference's identity.
* CelebA and Subjects200K: :mod:`curate.plan.identity_pairs`.

Query images are claimed in the shared :class:`PlanContext` so that none is used
twice (unless the recipe allows it). Every sampler draws from its own seeded
numpy Generator over tables sorted by id, so reader row order never matters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.plan.candidates import Cycle, PlanContext, SortedFrame
from curate.plan.example import ImageRef
from curate.plan.names import is_person
from curate.sources.tables import SourceTables

TRIES = 24  # random draws per query pick before giving up on a reference


class PairSampler:
    """What a source kind gives OCT and single-ICT planning (``SourceKind.pairs``), built as ``Sampler(ctx, st, rng)``.

    ``positives(k)`` and ``negatives(k, hard_k)`` return up to ``k`` pairs (``hard_k`` of the negatives hard when
    possible), claiming their query images in ``ctx``. A kind whose records cannot give hard negatives sets
    ``no_hard_negatives`` to the reason (shown in the plan notes) and its ``negatives(k)`` takes no ``hard_k``.
    """

    no_hard_negatives: str | None = None


@dataclass
class Pair:
    ref: ImageRef
    query: ImageRef
    positive: bool
    ids: list[str]
    category: str | None
    person: bool
    hard: bool = False


def crop(source: str, row: dict) -> ImageRef:
    box = (float(row["cx1"]), float(row["cy1"]), float(row["cx2"]), float(row["cy2"]))
    return ImageRef(source=source, image_id=row["image_id"], path=row["path"], box=box, object_id=row["object_id"])


class DetectionPairs(PairSampler):
    """COCO / Objects365 pairs."""

    def __init__(self, ctx: PlanContext, st: SourceTables, rng: np.random.Generator):
        self.ctx, self.source, self.rng = ctx, st.source, rng
        key = ("detection", st.source)
        if key not in ctx.cache:
            cands = ctx.crop_candidates(st)
            objs = ctx.category_index(st)
            grouped = objs.df.group_by("category").agg(pl.col("image_id").unique().sort())
            lists = grouped.get_column("image_id")
            cat_images = {c: lists[i] for i, c in enumerate(grouped.get_column("category").to_list())}
            ctx.cache[key] = (
                SortedFrame(st.images.select("image_id", "path"), "image_id"),
                SortedFrame(cands, "image_id", "object_id", presorted=True),
                objs,
                cat_images,
            )
        self.images, self.cands, self.objects, self.cat_images = ctx.cache[key]
        self.cand_ids = self.cands.unique_keys()
        self.all_ids = self.images.unique_keys()
        self._pos = Cycle(len(self.cand_ids), rng)
        self._ref = Cycle(len(self.cand_ids), rng)
        self._none = pl.Series([], dtype=pl.String)

    def _random_cand(self, image_id: str) -> dict:
        rows = self.cands.rows(image_id)
        return rows.row(int(self.rng.integers(rows.height)), named=True)

    def _pair(self, r: dict, query: ImageRef, positive: bool, hard: bool = False) -> Pair:
        cat = r["category"]
        return Pair(
            crop(self.source, r),
            query,
            positive,
            [r["image_id"], r["object_id"], query.image_id],
            cat,
            is_person(cat),
            hard,
        )

    def positives(self, k: int) -> list[Pair]:
        out: list[Pair] = []
        while len(out) < k and (i := self._pos.next_unseen()) is not None:
            iid = self.cand_ids[i]
            if not self.ctx.claim(self.source, iid):
                continue
            r = self._random_cand(iid)
            out.append(self._pair(r, ImageRef(self.source, iid, r["path"]), True))
        return out

    def _query(self, iid: str) -> ImageRef:
        return ImageRef(self.source, iid, self.images.first(iid)["path"])

    def _pick(self, ids: pl.Series, ref: dict, hard: bool) -> str | None:
        """A free query image other than the reference's: holding the category (hard) or not (easy).

        When the source gives instance identities, an image showing the reference's identity is never a negative."""
        if len(ids) == 0:
            return None
        for _ in range(TRIES):
            j = ids[int(self.rng.integers(len(ids)))]
            if j == ref["image_id"] or not self.ctx.is_free(self.source, j):
                continue
            rows = self.objects.rows(j)
            if not hard and ref["category"] in set(rows.get_column("category").to_list()):
                continue
            if ref.get("identity") is not None and ref["identity"] in set(rows.get_column("identity").to_list()):
                continue
            return j
        return None

    def negatives(self, k: int, hard_k: int) -> list[Pair]:
        out: list[Pair] = []
        n_hard, attempts = 0, 0
        while len(out) < k and attempts < 8 * k + 64:
            attempts += 1
            i = self._ref.next()
            if i is None:
                break
            r = self._random_cand(self.cand_ids[i])
            hard = n_hard < hard_k
            j = self._pick(self.cat_images.get(r["category"], self._none), r, True) if hard else None
            if j is None:  # no hard query wanted or left for this reference: an easy one
                hard, j = False, self._pick(self.all_ids, r, False)
            if j is None or not self.ctx.claim(self.source, j):
                continue
            n_hard += hard
            out.append(self._pair(r, self._query(j), False, hard))
        return out
