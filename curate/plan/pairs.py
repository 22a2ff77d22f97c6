"""Reference-query pairs per source kind (the OCT pairs; single-ICT uses the positive ones).

Each source kind names its sampler (a :class:`PairSampler`) in its registration
(:mod:`curate.sources.registry`); the built-in samplers:

* COCO / Objects365: reference = a crop candidate; positive query = its own full
  image; negative query = another image. ``hard`` negative: an image holding
  another instance of the same category (any annotated box of it); ``easy``: an
  image with no box of that category. Where the objects table gives instance
  identities, no negative query shows the reference's identity.
* CelebA: reference = a photo of identity X (the aligned image, or the face box
  crop for in-the-wild images); positive query = another photo of X; negative
  query = a photo of another identity. CelebA has no "same category" notion, so
  its negatives are all ``easy`` (reported in the plan stats).
* Subjects200K: reference = one panel of a pair, positive query = the other panel;
  negative query = a panel of another pair, ``hard`` = same category, ``easy`` =
  another category. Which panel is the reference is drawn per example.

Query images are claimed in the shared :class:`PlanContext` so that none is used
twice (unless the recipe allows it). Every sampler draws from its own seeded
numpy Generator over tables sorted by id, so reader row order never matters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.plan.candidates import STAGE, Cycle, PlanContext, SortedFrame
from curate.plan.example import ImageRef
from curate.plan.names import is_person
from curate.sources.tables import SourceTables

_TRIES = 24  # random draws per query pick before giving up on a reference


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
        for _ in range(_TRIES):
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


class CelebAPairs(PairSampler):
    """CelebA identity pairs (aligned images, or face-box crops of in-the-wild images)."""

    no_hard_negatives = "CelebA identities have no category to share"

    def __init__(self, ctx: PlanContext, st: SourceTables, rng: np.random.Generator):
        self.ctx, self.source, self.rng = ctx, st.source, rng
        key = ("celeba", st.source)
        if key not in ctx.cache:
            ident = (
                st.get("identities")
                .join(st.images.select("image_id", "path"), on="image_id", how="inner")
                .sort("image_id")
            )
            faces: dict[str, dict] = {}
            if st.objects.height:
                cands = ctx.crop_candidates(st)
                faces = {
                    r["image_id"]: r
                    for r in cands.unique("image_id", keep="first", maintain_order=True).iter_rows(named=True)
                }
            by_id: dict[str, list[str]] = {}
            for iid, ident_id in ident.select("image_id", "identity").iter_rows():
                by_id.setdefault(ident_id, []).append(iid)
            ctx.cache[key] = (
                dict(ident.select("image_id", "path").iter_rows()),
                dict(ident.select("image_id", "identity").iter_rows()),
                by_id,
                faces,
                bool(st.objects.height),
            )
        self.path, self.identity, self.by_id, self.faces, self.wild = ctx.cache[key]
        self.multi = sorted(i for i, imgs in self.by_id.items() if len(imgs) >= 2)
        self.ref_ids = sorted(self.faces) if self.wild else sorted(self.identity)
        self.all_ids = sorted(self.identity)
        self._pos = Cycle(len(self.multi), rng)
        self._pass_hits = 0

    def _ref(self, iid: str) -> ImageRef | None:
        if self.wild:
            return crop(self.source, self.faces[iid]) if iid in self.faces else None
        return ImageRef(self.source, iid, self.path[iid])

    def _pair(self, a: str, b: str, positive: bool) -> Pair:
        return Pair(self._ref(a), ImageRef(self.source, b, self.path[b]), positive, [a, b], None, True)

    def positives(self, k: int) -> list[Pair]:
        out: list[Pair] = []
        while len(out) < k:
            passes = self._pos.passes
            i = self._pos.next()
            if i is None:
                break
            if self._pos.passes != passes:  # a new pass: stop when the last one found nothing
                if passes > 0 and self._pass_hits == 0:
                    break
                self._pass_hits = 0
            imgs = self.by_id[self.multi[i]]
            refs = [a for a in imgs if self._ref(a) is not None]
            free = [b for b in imgs if self.ctx.is_free(self.source, b)]
            pick = None
            for j in self.rng.permutation(len(free)):
                others = [a for a in refs if a != free[j]]
                if others:
                    pick = (others[int(self.rng.integers(len(others)))], free[j])
                    break
            if pick is None:
                continue
            self.ctx.claim(self.source, pick[1])
            self._pass_hits += 1
            out.append(self._pair(pick[0], pick[1], True))
        return out

    def negatives(self, k: int) -> list[Pair]:
        out: list[Pair] = []
        attempts = 0
        while len(out) < k and attempts < 8 * k + 64 and self.ref_ids:
            attempts += 1
            a = self.ref_ids[int(self.rng.integers(len(self.ref_ids)))]
            for _ in range(_TRIES):
                b = self.all_ids[int(self.rng.integers(len(self.all_ids)))]
                if self.identity[b] != self.identity[a] and self.ctx.claim(self.source, b):
                    out.append(self._pair(a, b, False))
                    break
        return out


class SubjectsPairs(PairSampler):
    """Subjects200K panel pairs."""

    def __init__(self, ctx: PlanContext, st: SourceTables, rng: np.random.Generator):
        self.ctx, self.source, self.rng = ctx, st.source, rng
        key = ("subjects", st.source)
        if key not in ctx.cache:
            boxes = st.objects.select("object_id", "bbox")
            pairs = (
                st.get("pairs")
                .join(st.images.select("image_id", "path"), on="image_id", how="left")
                .join(boxes.rename({"object_id": "left_object_id", "bbox": "left"}), on="left_object_id", how="left")
                .join(boxes.rename({"object_id": "right_object_id", "bbox": "right"}), on="right_object_id", how="left")
                .sort("pair_id")
            )
            bad = pairs.filter(pl.col("path").is_null() | pl.col("left").is_null() | pl.col("right").is_null())
            ctx.add_quarantine(
                bad.select(
                    source=pl.lit(st.source),
                    stage=pl.lit(STAGE),
                    record_id=pl.col("pair_id"),
                    reason=pl.lit("pair_incomplete"),
                    detail=pl.format("image {}", pl.col("image_id")),
                )
            )
            rows = pairs.filter(
                pl.col("path").is_not_null() & pl.col("left").is_not_null() & pl.col("right").is_not_null()
            ).to_dicts()
            by_cat: dict[str, list[int]] = {}
            for i, r in enumerate(rows):
                by_cat.setdefault(r["category"] or "", []).append(i)
            ctx.cache[key] = (rows, by_cat)
        self.rows, self.by_cat = ctx.cache[key]
        self._pos = Cycle(len(self.rows), rng)

    def _panel(self, r: dict, side: str) -> ImageRef:
        return ImageRef(
            self.source,
            r["image_id"],
            r["path"],
            box=tuple(float(v) for v in r[side]),
            object_id=r[f"{side}_object_id"],
        )

    def _side(self) -> tuple[str, str]:
        return ("left", "right") if self.rng.random() < 0.5 else ("right", "left")

    def positives(self, k: int) -> list[Pair]:
        out: list[Pair] = []
        while len(out) < k and (i := self._pos.next_unseen()) is not None:
            r = self.rows[i]
            if not self.ctx.claim(self.source, r["image_id"]):
                continue
            a, b = self._side()
            ids = [r["pair_id"], r[f"{a}_object_id"], r[f"{b}_object_id"]]
            out.append(
                Pair(
                    self._panel(r, a),
                    self._panel(r, b),
                    True,
                    ids,
                    r["category"],
                    is_person(r["category"]),
                )
            )
        return out

    def negatives(self, k: int, hard_k: int) -> list[Pair]:
        out: list[Pair] = []
        n_hard, attempts = 0, 0
        while len(out) < k and attempts < 8 * k + 64 and len(self.rows) > 1:
            attempts += 1
            p = self.rows[int(self.rng.integers(len(self.rows)))]
            hard = n_hard < hard_k
            q = self._pick(p, True) if hard else None
            if q is None:  # no hard query wanted or left for this pair: an easy one
                hard, q = False, self._pick(p, False)
            if q is None:
                continue
            self.ctx.claim(self.source, q["image_id"])
            a, _ = self._side()
            b, _ = self._side()
            ids = [p["pair_id"], p[f"{a}_object_id"], q["pair_id"], q[f"{b}_object_id"]]
            n_hard += hard
            out.append(
                Pair(
                    self._panel(p, a),
                    self._panel(q, b),
                    False,
                    ids,
                    p["category"],
                    is_person(p["category"]),
                    hard,
                )
            )
        return out

    def _pick(self, p: dict, hard: bool) -> dict | None:
        """A free pair of the same category (hard) or of another category (easy)."""
        same = self.by_cat.get(p["category"] or "", [])
        for _ in range(_TRIES):
            q = (
                self.rows[same[int(self.rng.integers(len(same)))]]
                if hard
                else self.rows[int(self.rng.integers(len(self.rows)))]
            )
            if (
                q["pair_id"] != p["pair_id"]
                and (hard or q["category"] != p["category"])
                and self.ctx.is_free(self.source, q["image_id"])
            ):
                return q
        return None
