"""Planning entry point: recipe + source tables -> the mixture's ordered example plans.

:func:`plan_mixture` decodes no pixels. Steps:

1. Excluded (evaluation) images are removed from every table of their source, and so
   are images over ``quality.max_image_pixels`` (one ``image_too_large`` quarantine row each).
2. Task counts: ``mixture.proportions`` with disabled tasks (``tasks.<t>.enabled:
   false``) set to 0 and the rest renormalized to sum to 1, then
   largest-remainder rounding so the counts sum exactly to ``mixture.total``.
3. Per task, source counts from ``tasks.<t>.sources`` weights (empty: every
   recipe source whose kind can serve the task, weight 1), largest-remainder
   rounded likewise.
4. Tasks are planned in a fixed order (multi-ICT, single-ICT, OCT, VLT: the most
   constrained first, since they share query images), sources in name order.
   No query image serves twice (COCO and RefCOCO ids are one namespace: the same
   photo). A source that cannot supply its quota is topped up from the task's other
   sources (largest weight first); every shortfall is reported in ``stats`` and
   as a ``plan_shortfall`` quarantine row, never silently.
5. The plans are shuffled with a Generator seeded from the recipe seed.

``ExamplePlan.meta`` holds ``problem`` (the prompt text without the official trainer's answer
hint: the official RePIC JSON's ``problem``), ``reward_method`` (its ``accu_reward_method``),
``category`` / ``categories``, ``negative`` ("hard" / "easy", OCT "no" examples) and, for VLT,
``dataset``, ``split_by``, ``sent_id`` and ``expression``. ``PlanResult.stats`` holds
``requested`` / ``planned`` (task -> source -> count), ``task_requested`` / ``task_planned``,
``total_requested`` / ``total_planned``, ``split_filtered`` (source -> split -> indexed VLT
expressions that ``tasks.vlt.splits`` leaves out), ``oct_answers``, ``oct_by_source`` (yes / no / hard /
easy), ``hard_negatives``, ``excluded_images``, ``duplicates_dropped``, ``shortfalls``, ``names_per_example`` and
``notes`` (human-readable lines).

Everything random is seeded from ``recipe.seed`` and fixed labels (task, source,
record ids), and tables are sorted by id first, so the same recipe and tables
give identical plans whatever the readers' row order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from curate import progress
from curate.errors import UserError
from curate.plan.candidates import STAGE, PlanContext
from curate.plan.example import ExamplePlan
from curate.plan.ict import ICTMultiPlanner, ICTSinglePlanner
from curate.plan.names import NameGenerator, banned_words, derive_seed
from curate.plan.oct import OCTPlanner
from curate.plan.vlt import VLTPlanner
from curate.recipe import TASKS, Recipe
from curate.sources.registry import kinds_for, source_kind
from curate.sources.tables import QUARANTINE_SCHEMA, SourceTables

PLANNERS = {"oct": OCTPlanner, "ict_single": ICTSinglePlanner, "ict_multi": ICTMultiPlanner, "vlt": VLTPlanner}
PLAN_ORDER = ("ict_multi", "ict_single", "oct", "vlt")


@dataclass
class PlanResult:
    plans: list[ExamplePlan]
    quarantine: pl.DataFrame
    stats: dict = field(default_factory=dict)


def largest_remainder(weights: dict[str, float], total: int) -> dict[str, int]:
    """Integer counts proportional to ``weights`` that sum exactly to ``total`` (ties: key order)."""
    s = sum(weights.values())
    if s <= 0 or total <= 0:
        return {k: 0 for k in weights}
    exact = {k: total * w / s for k, w in weights.items()}
    counts = {k: math.floor(v + 1e-9) for k, v in exact.items()}
    rest = total - sum(counts.values())
    for k in sorted(weights, key=lambda k: (-(exact[k] - counts[k]), k))[:rest]:
        counts[k] += 1
    return counts


def task_shares(recipe: Recipe) -> dict[str, float]:
    """Proportions after dropping disabled tasks and renormalizing."""
    props = {t: (recipe.mixture.proportions.get(t, 0.0) if getattr(recipe.tasks, t).enabled else 0.0) for t in TASKS}
    s = sum(props.values())
    if s <= 0:
        raise UserError("mixture.proportions: every task with a share is disabled (tasks.<task>.enabled)")
    return {t: p / s for t, p in props.items()}


def source_weights(recipe: Recipe, task: str) -> dict[str, float]:
    named = getattr(recipe.tasks, task).sources
    if not named:
        return {s: 1.0 for s, spec in sorted(recipe.sources.items()) if spec.kind in kinds_for(task)}
    for s in named:
        kind = recipe.sources[s].kind
        if kind not in kinds_for(task):
            raise UserError(
                f"tasks.{task}.sources: {s!r} is a {kind} source, which cannot serve {task} "
                f"(kinds that can: {', '.join(kinds_for(task))})"
            )
    return dict(sorted(named.items()))


def _exclude(st: SourceTables, ids: set[str]) -> tuple[SourceTables, int]:
    if not ids:
        return st, 0
    drop = pl.DataFrame({"image_id": sorted(ids)}, schema={"image_id": pl.String})
    n = st.images.join(drop, on="image_id", how="semi").height
    tables = {
        name: (df.join(drop, on="image_id", how="anti") if name != "quarantine" and "image_id" in df.columns else df)
        for name, df in st.tables.items()
    }
    return SourceTables(st.source, st.kind, tables), n


def _too_large(st: SourceTables, limit: int) -> tuple[SourceTables, list[dict]]:
    """Remove the images with more than ``limit`` pixels (``quality.max_image_pixels``) from every table of the
    source; one ``image_too_large`` quarantine row each. The crop stage checks the file header again."""
    if not limit or not st.images.height:
        return st, []
    pixels = pl.col("width").cast(pl.Int64) * pl.col("height").cast(pl.Int64)
    big = st.images.filter(pixels > limit).select("image_id", "path", "width", "height")
    if not big.height:
        return st, []
    rows = [
        {
            "source": st.source,
            "stage": STAGE,
            "record_id": iid,
            "reason": "image_too_large",
            "detail": f"{path}: {w}x{h} = {w * h:,} pixels, over the limit of {limit:,} (quality.max_image_pixels)",
        }
        for iid, path, w, h in big.iter_rows()
    ]
    st, _ = _exclude(st, set(big.get_column("image_id").to_list()))
    return st, rows


def _categories(tables: dict[str, SourceTables]) -> set[str]:
    cats: set[str] = set()
    for st in tables.values():
        for name in ("objects", "pairs", "referring"):
            df = st.get(name)
            if "category" in df.columns and df.height:
                cats.update(c for c in df.get_column("category").unique().to_list() if c)
    return cats


def plan_mixture(
    recipe: Recipe, tables: dict[str, SourceTables], *, excluded_images: set[tuple[str, str]] = frozenset()
) -> PlanResult:
    """Plan the recipe's mixture from the source tables (see the module docstring)."""
    if recipe.mixture is None:
        raise UserError("the recipe has no 'mixture' section: nothing to build")
    ignored = sorted(set(tables) - set(recipe.sources))
    excluded_count = 0
    prepared: dict[str, SourceTables] = {}
    too_large: list[dict] = []
    for name, st in sorted(tables.items()):
        if name in ignored:
            continue
        ids = {iid for (s, iid) in excluded_images if s == name}
        prepared[name], n = _exclude(st, ids)
        excluded_count += n
        prepared[name], rows = _too_large(prepared[name], recipe.quality.max_image_pixels)
        too_large += rows

    ctx = PlanContext(
        recipe=recipe,
        names=NameGenerator(recipe.seed, recipe.names.locale, banned_words(_categories(prepared))),
        allow_query_reuse=recipe.mixture.allow_query_reuse,
        namespaces={n: source_kind(st.kind).image_namespace or n for n, st in prepared.items()},
    )
    ctx.add_quarantine(too_large)
    task_counts = largest_remainder(task_shares(recipe), recipe.mixture.total)
    stats: dict = {
        "total_requested": recipe.mixture.total,
        "requested": {},
        "planned": {},
        "shortfalls": [],
        "notes": [],
        "excluded_images": excluded_count,
        "duplicates_dropped": 0,
    }
    stats["notes"] += [f"tables of {name!r} ignored: the recipe does not declare that source" for name in ignored]
    by_task: dict[str, list[ExamplePlan]] = {}
    with progress.bar("Planning examples", total=recipe.mixture.total) as advance:
        for task in PLAN_ORDER:
            by_task[task] = (
                _plan_task(ctx, task, task_counts[task], prepared, stats, advance) if task_counts[task] else []
            )
            stats["requested"].setdefault(task, {})
            stats["planned"].setdefault(task, {})
    stats["split_filtered"] = dict(sorted((k[1], v) for k, v in ctx.cache.items() if k[0] == "vlt_split_dropped" and v))
    stats["notes"] += [
        f"{s}: vlt: {sum(d.values())} indexed expressions outside tasks.vlt.splits ({', '.join(f'{k} {n}' for k, n in d.items())})"
        for s, d in stats["split_filtered"].items()
    ]
    plans = [p for task in PLAN_ORDER for p in by_task[task]]
    order = np.random.default_rng(derive_seed(recipe.seed, "mixture-order")).permutation(len(plans))
    plans = [plans[i] for i in order]
    _summarize(
        plans, task_counts, stats, recipe.tasks.oct.hard_negative_fraction, {n: st.kind for n, st in prepared.items()}
    )
    quarantine = pl.concat(ctx.quarantine, how="vertical") if ctx.quarantine else pl.DataFrame(schema=QUARANTINE_SCHEMA)
    quarantine = quarantine.sort("source", "stage", "reason", "record_id", "detail")  # joins do not keep row order
    return PlanResult(plans=plans, quarantine=quarantine, stats=stats)


def _take(ctx: PlanContext, planner, n: int, stats: dict) -> list[ExamplePlan]:
    """``planner.take(n)`` without examples identical to earlier ones (possible only with query reuse)."""
    out = []
    for p in planner.take(n):
        cid = p.content_id()
        if cid in ctx.seen:
            stats["duplicates_dropped"] += 1
            continue
        ctx.seen.add(cid)
        out.append(p)
    return out


def _plan_task(
    ctx: PlanContext, task: str, total: int, tables: dict[str, SourceTables], stats: dict, advance
) -> list[ExamplePlan]:
    weights = source_weights(ctx.recipe, task)
    if not weights:
        raise UserError(
            f"mixture.proportions gives {task} a share, but no source of the recipe can serve it "
            f"(kinds that can: {', '.join(kinds_for(task))})"
        )
    if sum(weights.values()) <= 0:
        raise UserError(f"tasks.{task}.sources: every weight is 0, but mixture.proportions gives {task} a share")
    counts = largest_remainder(weights, total)
    planners = {}
    for s in weights:
        if s not in tables:
            stats["notes"].append(f"{task}: no tables were given for source {s!r}; it supplies nothing")
            continue
        rng = np.random.default_rng(derive_seed(ctx.recipe.seed, task, s))
        planners[s] = PLANNERS[task](ctx, tables[s], rng)
    got: dict[str, list[ExamplePlan]] = {s: [] for s in weights}
    for s, n in counts.items():
        if n and s in planners:
            got[s] = _take(ctx, planners[s], n, stats)
            advance(len(got[s]))
    deficit = total - sum(len(v) for v in got.values())
    short = {s: counts[s] - len(got[s]) for s in weights if len(got[s]) < counts[s]}
    filled: dict[str, int] = {}
    donors = sorted((s for s in planners if weights[s] > 0 and s not in short), key=lambda s: (-weights[s], s))
    while deficit > 0:
        progress_made = False
        for s in donors:
            if deficit <= 0:
                break
            extra = _take(ctx, planners[s], deficit, stats)
            if extra:
                progress_made = True
                got[s].extend(extra)
                filled[s] = filled.get(s, 0) + len(extra)
                deficit -= len(extra)
                advance(len(extra))
        if not progress_made:
            break
    stats["requested"][task] = dict(counts)
    stats["planned"][task] = {s: len(v) for s, v in got.items()}
    rows = []
    for s, missing in short.items():
        entry = {
            "task": task,
            "source": s,
            "requested": counts[s],
            "supplied": counts[s] - missing,
            "filled_from_other_sources": dict(filled),
            "unfilled": deficit,
        }
        stats["shortfalls"].append(entry)
        detail = (
            f"{task}: requested {counts[s]}, source supplied {counts[s] - missing}; "
            f"other sources added {sum(filled.values())}; still missing {deficit}"
        )
        stats["notes"].append(f"{s}: {detail}")
        rows.append(
            {"source": s, "stage": STAGE, "record_id": f"{task}:{s}", "reason": "plan_shortfall", "detail": detail}
        )
    ctx.add_quarantine(rows)
    return [p for s in weights for p in got[s]]


def _summarize(
    plans: list[ExamplePlan], task_counts: dict[str, int], stats: dict, hard_fraction: float, kinds: dict[str, str]
) -> None:
    stats["task_requested"] = dict(task_counts)
    stats["task_planned"] = {t: sum(1 for p in plans if p.task == t) for t in TASKS}
    stats["total_planned"] = len(plans)
    answers = {"yes": 0, "no": 0}
    by_source: dict[str, dict[str, int]] = {}
    for p in plans:
        if p.task != "oct":
            continue
        answers[p.solution] += 1
        row = by_source.setdefault(p.source, {"yes": 0, "no": 0, "hard": 0, "easy": 0})
        row[p.solution] += 1
        if p.solution == "no":
            row[p.meta.get("negative", "easy")] += 1
    stats["oct_answers"] = answers
    stats["oct_by_source"] = by_source
    stats["hard_negatives"] = {s: v["hard"] for s, v in by_source.items()}
    for s, v in sorted(by_source.items()):
        wanted = round(v["no"] * hard_fraction)
        if v["hard"] < wanted:
            why = source_kind(kinds[s]).pairs.no_hard_negatives or "too few same-category queries left"
            stats["notes"].append(f"{s}: oct: {v['hard']} hard negatives of {wanted} wanted ({why})")
    stats["names_per_example"] = {
        t: (sum(len(p.names) for p in plans if p.task == t) / max(1, stats["task_planned"][t])) for t in TASKS
    }
