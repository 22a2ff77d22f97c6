"""Identity consistency tuning (ICT): single-ICT and multi-ICT planning.

Single-ICT uses the positive reference-query pairs of OCT (section 3.2: "We use
the positive pair images used for OCT"): a named reference, the query holding
the same subject, the single-ICT system prompt and a table A.6 question; the
solution is the name.

Multi-ICT takes 2-3 (``min_refs``..``max_refs``) objects from one COCO /
Objects365 image: crop candidates whose object box covers at least
``min_area_fraction`` of the image, with pairwise box IoU at most
``max_overlap_iou``, distinct categories first when
``prefer_distinct_categories``. The objects are cropped as named references, the
full image is the query, one of the four multi-ICT system prompts is used, and
the solution is the list of names (reference order). The number of references
is drawn uniformly in ``min_refs..max_refs`` per example; an image that cannot
give that many gives as many as it can (at least ``min_refs``); an image that
cannot give ``min_refs`` is quarantined as ``multi_ict_no_disjoint_set``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from curate.plan.candidates import STAGE, Cycle, PlanContext, SortedFrame
from curate.plan.example import ExamplePlan, ImageRef
from curate.plan.names import is_person
from curate.plan.pairs import Pair, crop
from curate.plan.templates import REWARD_METHOD, render_ict_multi, render_ict_single, template_rng, user_messages
from curate.sources.registry import source_kind
from curate.sources.tables import SourceTables


class ICTSinglePlanner:
    task = "ict_single"

    def __init__(self, ctx: PlanContext, st: SourceTables, rng: np.random.Generator):
        self.ctx, self.source = ctx, st.source
        self.pairs = source_kind(st.kind).pairs(ctx, st, rng)

    def take(self, k: int) -> list[ExamplePlan]:
        return [self.plan(p) for p in self.pairs.positives(k)]

    def plan(self, p: Pair) -> ExamplePlan:
        key = ("ict_single", self.source, *p.ids)
        name = self.ctx.names.names_for(key, ["person" if p.person else "thing"])[0]
        t = self.ctx.recipe.templates
        r = render_ict_single(
            name, template_rng(self.ctx.recipe.seed, key), detailed=t.detailed_prompts, reasoning=t.reasoning
        )
        return ExamplePlan(
            task="ict_single",
            source=self.source,
            source_ids=p.ids,
            images=[p.ref, p.query],
            messages=user_messages(2, r.text),
            solution=name,
            names=[name],
            template=r.template,
            meta={"problem": r.problem, "reward_method": REWARD_METHOD["ict_single"], "category": p.category},
        )


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def select_refs(rows: list[dict], k: int, max_iou: float, distinct_first: bool) -> list[dict]:
    """Greedy pick of up to k rows (in the given order) with pairwise IoU <= max_iou."""
    chosen: list[dict] = []
    passes = (True, False) if distinct_first else (False,)
    for need_new_category in passes:
        for r in rows:
            if len(chosen) >= k:
                return chosen
            if any(r is c for c in chosen):
                continue
            if need_new_category and any(r["category"] == c["category"] for c in chosen):
                continue
            if all(box_iou(r["bbox"], c["bbox"]) <= max_iou for c in chosen):
                chosen.append(r)
    return chosen


class ICTMultiPlanner:
    task = "ict_multi"

    def __init__(self, ctx: PlanContext, st: SourceTables, rng: np.random.Generator):
        self.ctx, self.source, self.rng = ctx, st.source, rng
        self.cfg = ctx.recipe.tasks.ict_multi
        key = ("ict_multi", st.source)
        if key not in ctx.cache:
            cands = ctx.crop_candidates(st)
            b = pl.col("bbox")
            frac = (
                (b.arr.get(2) - b.arr.get(0))
                * (b.arr.get(3) - b.arr.get(1))
                / (pl.col("width").cast(pl.Float64) * pl.col("height").cast(pl.Float64))
            )
            big = cands.filter(frac >= self.cfg.min_area_fraction)
            enough = big.group_by("image_id").len().filter(pl.col("len") >= self.cfg.min_refs).select("image_id")
            ctx.cache[key] = SortedFrame(big.join(enough, on="image_id", how="semi"), "image_id", "object_id")
        self.cands: SortedFrame = ctx.cache[key]
        self.image_ids = self.cands.unique_keys()
        self._order = Cycle(len(self.image_ids), rng)

    def take(self, k: int) -> list[ExamplePlan]:
        out: list[ExamplePlan] = []
        rejected: list[dict] = []
        while len(out) < k and (i := self._order.next_unseen()) is not None:
            iid = self.image_ids[i]
            if not self.ctx.is_free(self.source, iid):
                continue
            rows = self.cands.rows(iid).to_dicts()
            rows = [rows[j] for j in self.rng.permutation(len(rows))]
            want = int(self.rng.integers(self.cfg.min_refs, self.cfg.max_refs + 1))
            chosen = select_refs(rows, want, self.cfg.max_overlap_iou, self.cfg.prefer_distinct_categories)
            if len(chosen) < self.cfg.min_refs:
                rejected.append(
                    {
                        "source": self.source,
                        "stage": STAGE,
                        "record_id": iid,
                        "reason": "multi_ict_no_disjoint_set",
                        "detail": f"{len(rows)} large objects, fewer than {self.cfg.min_refs} with IoU <= {self.cfg.max_overlap_iou}",
                    }
                )
                continue
            self.ctx.claim(self.source, iid)
            out.append(self.plan(iid, chosen))
        self.ctx.add_quarantine(rejected)
        return out

    def plan(self, iid: str, chosen: list[dict]) -> ExamplePlan:
        ids = [iid, *(c["object_id"] for c in chosen)]
        key = ("ict_multi", self.source, *ids)
        kinds = ["person" if is_person(c["category"]) else "thing" for c in chosen]
        names = self.ctx.names.names_for(key, kinds)
        t = self.ctx.recipe.templates
        r = render_ict_multi(
            names, template_rng(self.ctx.recipe.seed, key), detailed=t.detailed_prompts, reasoning=t.reasoning
        )
        images = [crop(self.source, c) for c in chosen] + [ImageRef(self.source, iid, chosen[0]["path"])]
        return ExamplePlan(
            task="ict_multi",
            source=self.source,
            source_ids=ids,
            images=images,
            messages=user_messages(len(images), r.text),
            solution=list(names),
            names=list(names),
            template=r.template,
            meta={
                "problem": r.problem,
                "reward_method": REWARD_METHOD["ict_multi"],
                "categories": [c["category"] for c in chosen],
            },
        )
