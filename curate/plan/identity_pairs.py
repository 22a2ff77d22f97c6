"""Reference-query pairs of the identity sources: CelebA (photos of one person) and Subjects200K (the two panels
of one subject). See :mod:`curate.plan.pairs` for the sampler contract and the detection sources' sampler.

* CelebA: reference = a photo of identity X (the aligned image, or the face box crop for in-the-wild images);
  positive query = another photo of X; negative query = a photo of another identity. CelebA has no "same
  category" notion, so its negatives are all ``easy`` (reported in the plan stats).
* Subjects200K: reference = one panel of a pair, positive query = the other panel; negative query = a panel of
  another pair, ``hard`` = same category, ``easy`` = another category. Which panel is the reference is drawn
  per example.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from curate.plan.candidates import STAGE, Cycle, PlanContext
from curate.plan.example import ImageRef
from curate.plan.names import is_person
from curate.plan.pairs import TRIES, Pair, PairSampler, crop
from curate.sources.tables import SourceTables


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
            for _ in range(TRIES):
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
        for _ in range(TRIES):
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
