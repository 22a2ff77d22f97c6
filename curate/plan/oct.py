"""OCT planning: yes/no examples from the reference-query pairs of :mod:`curate.plan.pairs`.

Per source, the share of positives is ``tasks.oct.positive_fraction`` and the
share of hard negatives among the negatives ``tasks.oct.hard_negative_fraction``;
both are kept cumulatively, so a planner called again (to fill another
source's shortfall) stays balanced. The prompt is the OCT system prompt with
the reference's name and a table A.4 question; the answer is "yes" or "no".
"""

from __future__ import annotations

import math

import numpy as np

from curate.plan.candidates import PlanContext
from curate.plan.example import ExamplePlan
from curate.plan.pairs import Pair
from curate.plan.templates import REWARD_METHOD, render_oct, template_rng, user_messages
from curate.sources.registry import source_kind
from curate.sources.tables import SourceTables


class OCTPlanner:
    """Plans OCT examples from one source, keeping yes/no and hard/easy shares cumulative across calls."""

    task = "oct"

    def __init__(self, ctx: PlanContext, st: SourceTables, rng: np.random.Generator):
        self.ctx, self.source = ctx, st.source
        self.pairs = source_kind(st.kind).pairs(ctx, st, rng)
        self.cfg = ctx.recipe.tasks.oct
        self.n_yes = self.n_no = self.n_hard = 0
        # exact halves (e.g. 12.5 positives of 25) round up for every other OCT source, down for the rest,
        # so the mixture as a whole stays balanced too (sources are planned in name order)
        n = ctx.cache["oct_planners"] = ctx.cache.get("oct_planners", -1) + 1
        self._round = (lambda x: math.floor(x + 0.5)) if n % 2 == 0 else (lambda x: math.ceil(x - 0.5))

    def take(self, k: int) -> list[ExamplePlan]:
        done = self.n_yes + self.n_no
        want_yes = min(k, max(0, self._round((done + k) * self.cfg.positive_fraction) - self.n_yes))
        pos = self.pairs.positives(want_yes)
        want_no = k - len(pos) if len(pos) == want_yes else k - want_yes
        if self.pairs.no_hard_negatives is None:
            want_hard = max(0, self._round((self.n_no + want_no) * self.cfg.hard_negative_fraction) - self.n_hard)
            neg = self.pairs.negatives(want_no, min(want_hard, want_no))
        else:
            neg = self.pairs.negatives(want_no)
        self.n_yes += len(pos)
        self.n_no += len(neg)
        self.n_hard += sum(p.hard for p in neg)
        return [self.plan(p) for p in pos + neg]

    def plan(self, p: Pair) -> ExamplePlan:
        answer = "yes" if p.positive else "no"
        key = ("oct", self.source, *p.ids, answer)
        name = self.ctx.names.names_for(key, ["person" if p.person else "thing"])[0]
        r = render_oct(name, template_rng(self.ctx.recipe.seed, key), self.ctx.recipe.templates.reasoning)
        meta = {"problem": r.problem, "reward_method": REWARD_METHOD["oct"], "category": p.category}
        if not p.positive:
            meta["negative"] = "hard" if p.hard else "easy"
        return ExamplePlan(
            task="oct",
            source=self.source,
            source_ids=p.ids,
            images=[p.ref, p.query],
            messages=user_messages(2, r.text),
            solution=answer,
            names=[name],
            template=r.template,
            meta=meta,
        )
