"""VLT planning: RefCOCO / RefCOCO+ / RefCOCOg referring expressions with their boxes.

Candidates are the ``referring`` rows whose ``split`` is selected by ``tasks.vlt.splits``
(the same rule as a RefCOCO source's ``splits``, :func:`curate.sources.refcoco.wants_split`:
a name selects that split, and ``test`` selects every ``test*`` split: test, testA, testB, testC)
and whose image is in the images table (others are quarantined as
``expression_without_image``; blank expressions as ``expression_empty``). Images
are drawn uniformly (one expression per query image, drawn uniformly among the
image's expressions of every dataset of the source), so no query image is used
twice. The prompt is a table A.5 template with the expression in the ``<name>``
slot; the solution is the box ``[x1, y1, x2, y2]`` in the query image's SOURCE
frame (materialization maps it to the model frame). VLT examples have no names.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from curate.plan.candidates import STAGE, Cycle, PlanContext, SortedFrame
from curate.plan.example import ExamplePlan, ImageRef
from curate.plan.templates import REWARD_METHOD, render_vlt, template_rng, user_messages
from curate.sources.tables import SourceTables


def split_selected(splits: list[str]) -> pl.Expr:
    """``split`` is selected by ``splits`` (``test`` selects every ``test*`` split), as a RefCOCO source's ``splits``."""
    col = pl.col("split")
    return col.is_in(splits) | (pl.lit("test" in splits) & col.fill_null("").str.starts_with("test"))


def split_dropped(st: SourceTables, splits: list[str]) -> dict[str, int]:
    """Indexed referring rows that ``splits`` leaves out, by split (null splits as ``(none)``)."""
    ref = st.get("referring").filter(~split_selected(splits).fill_null(False))
    counts = ref.group_by(pl.col("split").fill_null("(none)")).len().sort("split").rows()
    return dict(counts)


def vlt_candidates(st: SourceTables, splits: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    ref = st.get("referring").filter(split_selected(splits).fill_null(False))
    ref = ref.join(st.images.select("image_id", "path"), on="image_id", how="left")
    reason = (
        pl.when(pl.col("path").is_null())
        .then(pl.lit("expression_without_image"))
        .when(pl.col("expression").fill_null("").str.strip_chars() == "")
        .then(pl.lit("expression_empty"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    ref = ref.with_columns(_reason=reason)
    q = ref.filter(pl.col("_reason").is_not_null()).select(
        source=pl.lit(st.source),
        stage=pl.lit(STAGE),
        record_id=pl.col("sent_id"),
        reason=pl.col("_reason"),
        detail=pl.format("{} ref {} image {}", pl.col("dataset"), pl.col("ref_id"), pl.col("image_id")),
    )
    good = ref.filter(pl.col("_reason").is_null()).drop("_reason").sort("image_id", "dataset", "ref_id", "sent_id")
    return good, q


class VLTPlanner:
    task = "vlt"

    def __init__(self, ctx: PlanContext, st: SourceTables, rng: np.random.Generator):
        self.ctx, self.source, self.rng = ctx, st.source, rng
        key = ("vlt", st.source)
        if key not in ctx.cache:
            splits = ctx.recipe.tasks.vlt.splits
            good, q = vlt_candidates(st, splits)
            ctx.add_quarantine(q)
            dropped = split_dropped(st, splits)
            ctx.cache[("vlt_split_dropped", st.source)] = dropped  # plan stats ``split_filtered``
            ctx.add_quarantine(
                [
                    {
                        "source": st.source,
                        "stage": STAGE,
                        "record_id": f"vlt:{st.source}:{split}",
                        "reason": "split_not_in_task",
                        "detail": f"{n} indexed expressions of split {split} are outside tasks.vlt.splits {splits}",
                    }
                    for split, n in dropped.items()
                ]
            )
            ctx.cache[key] = SortedFrame(good, "image_id", "dataset", "ref_id", "sent_id")
        self.refs: SortedFrame = ctx.cache[key]
        self.image_ids = self.refs.unique_keys()
        self._order = Cycle(len(self.image_ids), rng)

    def take(self, k: int) -> list[ExamplePlan]:
        out: list[ExamplePlan] = []
        while len(out) < k and (i := self._order.next_unseen()) is not None:
            iid = self.image_ids[i]
            if not self.ctx.claim(self.source, iid):
                continue
            rows = self.refs.rows(iid)
            out.append(self.plan(rows.row(int(self.rng.integers(rows.height)), named=True)))
        return out

    def plan(self, r: dict) -> ExamplePlan:
        ds = r["dataset"]  # ref and sentence ids are unique within one dataset only: qualify them
        ids = [r["image_id"], f"{ds}/{r['ref_id']}", f"{ds}/{r['sent_id']}"]
        key = ("vlt", self.source, *ids)
        rendered = render_vlt(
            r["expression"], template_rng(self.ctx.recipe.seed, key), self.ctx.recipe.templates.reasoning
        )
        box = [float(v) for v in r["bbox"]]
        return ExamplePlan(
            task="vlt",
            source=self.source,
            source_ids=[str(x) for x in ids],
            images=[ImageRef(self.source, r["image_id"], r["path"])],
            messages=user_messages(1, rendered.text),
            solution=box,
            names=[],
            template=rendered.template,
            meta={
                "problem": rendered.problem,
                "reward_method": REWARD_METHOD["vlt"],
                "dataset": ds,
                "sent_id": r["sent_id"],
                "split_by": r["split_by"],
                "category": r["category"],
                "expression": r["expression"],
            },
        )
