import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from curate.errors import UserError
from curate.plan.mixture import largest_remainder, plan_mixture, task_shares
from curate.plan.names import banned_words, check_names
from curate.plan.templates import ICT_QUESTIONS, REASONING
from curate.sources.tables import QUARANTINE_SCHEMA, SourceTables
from tests.support import synthetic as S


def dump(result) -> str:
    return json.dumps([p.to_json() for p in result.plans], sort_keys=True)


def test_largest_remainder_sums_exactly():
    assert largest_remainder({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    counts = largest_remainder({"oct": 0.345, "vlt": 0.345, "ict_single": 0.263, "ict_multi": 0.047}, 2000)
    assert counts == {"oct": 690, "vlt": 690, "ict_single": 526, "ict_multi": 94}
    for total in range(1, 60):
        assert sum(largest_remainder({"x": 0.3, "y": 0.3, "z": 0.4}, total).values()) == total


def test_plan_counts_schema_and_layout():
    res = plan_mixture(S.recipe(total=100), S.all_tables())
    assert len(res.plans) == 100 and res.stats["total_planned"] == 100
    assert res.stats["task_planned"] == {"oct": 45, "vlt": 24, "ict_single": 26, "ict_multi": 5}
    assert res.stats["shortfalls"] == [] and res.stats["excluded_images"] == 0
    assert dict(res.quarantine.schema) == QUARANTINE_SCHEMA
    assert set(res.quarantine["stage"]) == {"plan"}
    for p in res.plans:
        parts = p.messages[0]["content"]
        assert sum(part["type"] == "image" for part in parts) == len(p.images)
        assert parts[-1]["type"] == "text" and all(set(part) == {"type", "text"} for part in parts)
        assert (
            p.images[-1].box is None or p.source == "subjects"
        )  # the query is a whole image (a panel for Subjects200K)
        assert p.template and p.meta["problem"] in parts[-1]["text"]


def test_deterministic_and_independent_of_row_order():
    tables = S.all_tables()
    a = plan_mixture(S.recipe(total=90), tables)
    shuffled = {
        name: SourceTables(
            st.source, st.kind, {k: df.sample(fraction=1.0, shuffle=True, seed=5) for k, df in st.tables.items()}
        )
        for name, st in tables.items()
    }
    b = plan_mixture(S.recipe(total=90), shuffled)
    assert dump(a) == dump(b)
    assert a.quarantine.sort(pl.all()).equals(b.quarantine.sort(pl.all()))
    c = plan_mixture(S.recipe(total=90, seed=1), tables)
    assert dump(c) != dump(a)


def test_no_query_image_is_reused():
    res = plan_mixture(S.recipe(total=150), S.all_tables())
    keys = Counter((p.source, p.images[-1].image_id) for p in res.plans)
    assert max(keys.values()) == 1


def test_query_reuse_allowed_lifts_the_limit():
    tables = {"refcoco": S.refcoco(n_images=10)}
    props = {"vlt": 1.0}
    strict = plan_mixture(S.recipe(total=20, proportions=props, sources=("refcoco",)), tables)
    assert len(strict.plans) == 8  # 8 of the 10 images have train expressions
    loose = plan_mixture(
        S.recipe(total=20, proportions=props, sources=("refcoco",), mixture={"allow_query_reuse": True}), {**tables}
    )
    assert len(loose.plans) == 8  # one pass per planner: reuse is allowed, duplicates are still never invented


def test_oct_balance_and_hard_negatives_per_source():
    res = plan_mixture(
        S.recipe(
            total=200,
            proportions={"oct": 1.0},
            sources=("coco", "objects365", "subjects"),
            tasks={"oct": {"hard_negative_fraction": 0.5}},
        ),
        S.all_tables() | {"subjects": S.subjects(n_pairs=90)},
    )
    by = res.stats["oct_by_source"]
    for source, row in by.items():
        assert abs(row["yes"] - row["no"]) <= 1, source
        assert abs(row["hard"] - row["easy"]) <= 1, source
    answers = res.stats["oct_answers"]
    assert answers["yes"] + answers["no"] == len(res.plans) == 200
    assert abs(answers["yes"] - answers["no"]) <= 1  # odd per-source counts do not all round the same way


def test_shortfall_is_filled_from_other_sources_and_reported():
    tables = S.all_tables() | {"subjects": S.subjects(n_pairs=4)}
    res = plan_mixture(S.recipe(total=50, proportions={"oct": 1.0}, sources=("coco", "subjects")), tables)
    assert len(res.plans) == 50
    (short,) = res.stats["shortfalls"]
    assert short["source"] == "subjects" and short["requested"] == 25 and short["supplied"] <= 4
    assert short["filled_from_other_sources"] == {"coco": 25 - short["supplied"]} and short["unfilled"] == 0
    assert res.stats["planned"]["oct"] == {"coco": 50 - short["supplied"], "subjects": short["supplied"]}
    q = res.quarantine.filter(pl.col("reason") == "plan_shortfall")
    assert q.height == 1 and q["record_id"][0] == "oct:subjects"


def test_unfillable_shortfall_leaves_the_mixture_short_but_says_so():
    res = plan_mixture(
        S.recipe(total=60, proportions={"vlt": 0.5, "oct": 0.5}, sources=("coco", "refcoco")),
        {"coco": S.all_tables()["coco"], "refcoco": S.refcoco(n_images=10)},
    )
    (short,) = res.stats["shortfalls"]
    assert short["task"] == "vlt" and short["unfilled"] == 30 - 8
    assert res.stats["task_planned"]["vlt"] == 8 and len(res.plans) == 38
    assert any("still missing 22" in n for n in res.stats["notes"])


def test_disabled_tasks_are_dropped_and_the_rest_renormalized():
    r = S.recipe(total=60, tasks={"oct": {"enabled": False}})
    shares = task_shares(r)
    assert shares["oct"] == 0 and sum(shares.values()) == pytest.approx(1)
    assert shares["vlt"] == pytest.approx(0.24 / 0.55)
    res = plan_mixture(r, S.all_tables())
    assert len(res.plans) == 60 and not any(p.task == "oct" for p in res.plans)
    assert res.stats["task_planned"] == {"oct": 0, "vlt": 26, "ict_single": 28, "ict_multi": 6}
    with pytest.raises(UserError, match="disabled"):
        task_shares(S.recipe(proportions={"oct": 1.0}, tasks={"oct": {"enabled": False}}))


def test_excluded_images_never_appear():
    tables = S.all_tables()
    excluded = {("coco", f"{i:05d}") for i in range(0, 60, 2)} | {("refcoco", "105"), ("celeba", "000001.jpg")}
    res = plan_mixture(S.recipe(total=120), tables, excluded_images=excluded)
    used = {(r.source, r.image_id) for p in res.plans for r in p.images}
    assert not used & excluded
    assert res.stats["excluded_images"] == len(excluded)
    assert "object_without_image" not in set(res.quarantine["reason"])  # excluded boxes are not bad records


def test_names_follow_the_rules_in_every_example():
    tables = S.all_tables()
    res = plan_mixture(S.recipe(total=150), tables)
    cats = {
        c
        for st in tables.values()
        for t in ("objects", "pairs", "referring")
        if t in st.tables
        for c in st.get(t)["category"]
    }
    banned = banned_words(cats)
    for p in res.plans:
        assert check_names(p.names, banned) == []
        text = p.messages[0]["content"][-1]["text"]
        assert all(n in text for n in p.names)


def test_template_switches():
    res = plan_mixture(
        S.recipe(total=100, templates={"reasoning": "observe", "detailed_prompts": False}), S.all_tables()
    )
    detailed = {q for q, d in ICT_QUESTIONS if d}
    for p in res.plans:
        text = p.messages[0]["content"][-1]["text"]
        assert p.template.endswith("+observe") and REASONING["observe"] in text
        if p.task.startswith("ict"):
            assert not any(q in text for q in detailed)


def test_recipe_mistakes_are_user_errors():
    with pytest.raises(UserError, match="cannot serve oct"):
        plan_mixture(S.recipe(tasks={"oct": {"sources": {"refcoco": 1}}}), S.all_tables())
    only_coco = plan_mixture(S.recipe(total=10, sources=("coco",), proportions={"oct": 1.0}), S.all_tables())
    assert {p.source for p in only_coco.plans} == {"coco"}
    assert any("'refcoco' ignored" in n for n in only_coco.stats["notes"])
    with pytest.raises(UserError, match="every weight is 0"):
        plan_mixture(S.recipe(proportions={"oct": 1.0}, tasks={"oct": {"sources": {"coco": 0}}}), S.all_tables())
    with pytest.raises(UserError, match="no source of the recipe can serve it"):
        plan_mixture(S.recipe(sources=("coco",), proportions={"vlt": 1.0}), {"coco": S.all_tables()["coco"]})


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    import curate.demo.corpus as corpus

    root = tmp_path_factory.mktemp("tiny-corpus")
    corpus.generate_corpus(root, seed=0, size="tiny")
    return root


def test_real_readers_on_the_tiny_demo_corpus(tiny_corpus, monkeypatch):
    import importlib

    from curate.recipe import load_recipe

    monkeypatch.setenv("REPIC_DEMO_CORPUS", str(tiny_corpus))
    recipe = load_recipe(Path(__file__).resolve().parents[3] / "recipes" / "demo.yaml")
    recipe = recipe.model_copy(update={"mixture": recipe.mixture.model_copy(update={"total": 40})})
    tables = {n: importlib.import_module(f"curate.sources.{s.kind}").read(n, s) for n, s in recipe.sources.items()}
    a = plan_mixture(recipe, tables)
    b = plan_mixture(recipe, tables)
    assert dump(a) == dump(b)
    assert {p.task for p in a.plans} == {"oct", "vlt", "ict_single", "ict_multi"}
    unfilled = {s["task"]: s["unfilled"] for s in a.stats["shortfalls"]}
    assert len(a.plans) == 40 - sum(unfilled.values())
    images = {(n, i) for n, st in tables.items() for i in st.images["image_id"]}
    assert all((r.source, r.image_id) in images for p in a.plans for r in p.images)
    assert Counter((p.source, p.images[-1].image_id) for p in a.plans).most_common(1)[0][1] == 1


def test_missing_hard_negatives_are_noted():
    tables = {"subjects": S.subjects(n_pairs=30, categories=[f"Category{i}" for i in range(30)]), "celeba": S.celeba()}
    res = plan_mixture(S.recipe(total=20, proportions={"oct": 1.0}, sources=("subjects", "celeba")), tables)
    assert res.stats["hard_negatives"] == {"subjects": 0, "celeba": 0}
    notes = " ".join(res.stats["notes"])
    assert "subjects: oct: 0 hard negatives of" in notes and "CelebA identities have no category" in notes


def test_coco_and_refcoco_ids_are_one_photo_namespace():
    coco = S.detection("coco", "coco", 40, seed=3)
    ref = S.refcoco(n_images=40)
    ids = sorted(set(coco.images["image_id"]))[:40]  # give RefCOCO the same photo ids as COCO
    mapping = dict(zip(sorted(set(ref.images["image_id"])), ids))
    ref = SourceTables(
        "refcoco", "refcoco", {k: df.with_columns(pl.col("image_id").replace(mapping)) for k, df in ref.tables.items()}
    )
    res = plan_mixture(
        S.recipe(total=60, proportions={"oct": 0.5, "vlt": 0.5}, sources=("coco", "refcoco")),
        {"coco": coco, "refcoco": ref},
    )
    photos = [p.images[-1].image_id for p in res.plans]
    assert len(photos) == len(set(photos))
    assert res.stats["task_planned"]["vlt"] > 0


def test_plans_round_trip_through_json():
    from curate.plan.example import ExamplePlan

    res = plan_mixture(S.recipe(total=40), S.all_tables())
    for p in res.plans:
        saved = json.loads(json.dumps(p.to_json()))
        back = ExamplePlan.from_json(saved)
        assert back == p and back.content_id() == p.content_id() == saved["id"]
        # the saved id is the hash of the plan's content, not just a carried-over string
        assert ExamplePlan.from_json({k: v for k, v in saved.items() if k != "id"}).content_id() == saved["id"]
    assert len({p.content_id() for p in res.plans}) == len(res.plans)


def test_query_reuse_never_duplicates_examples():
    tables = {"celeba": S.celeba(n_ids=3, per_id=2)}  # 6 photos: only 6 distinct positive pairs exist
    res = plan_mixture(
        S.recipe(total=30, proportions={"ict_single": 1.0}, sources=("celeba",), mixture={"allow_query_reuse": True}),
        tables,
    )
    ids = [p.content_id() for p in res.plans]
    assert len(ids) == len(set(ids)) == 6
    queries = Counter(p.images[-1].image_id for p in res.plans)
    assert res.stats["shortfalls"][0]["unfilled"] == 24 and max(queries.values()) == 1
