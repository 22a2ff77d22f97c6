from pathlib import Path

import pytest

from curate.plan.mixture import largest_remainder, source_weights, task_shares
from curate.recipe import load_recipe
from curate.sources.registry import kinds_for

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
ALL = sorted(RECIPES.rglob("*.yaml"))


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("REPIC_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REPIC_DEMO_CORPUS", str(tmp_path / "corpus"))


def load(name: str):
    return load_recipe(RECIPES / name, check_paths=False)


def test_the_expected_recipes_exist():
    names = {p.relative_to(RECIPES).as_posix() for p in ALL}
    assert {"demo.yaml", "repic-2k.yaml", "repic-5k.yaml"} <= names
    assert {
        f"ablations/{n}.yaml" for n in ("think", "observe", "no-oct", "no-ict", "no-vlt", "no-detail-prompt")
    } <= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.relative_to(RECIPES).as_posix())
def test_every_recipe_validates_and_every_task_has_sources(path):
    recipe = load_recipe(path, check_paths=False)
    assert recipe.mixture is not None
    counts = largest_remainder(task_shares(recipe), recipe.mixture.total)
    assert sum(counts.values()) == recipe.mixture.total
    for task, n in counts.items():
        if n:
            weights = source_weights(recipe, task)
            assert weights and all(recipe.sources[s].kind in kinds_for(task) for s in weights)


def test_paths_come_from_the_environment(tmp_path):
    r = load("repic-2k.yaml")
    assert str(r.sources["coco"].annotations).startswith(str(tmp_path / "data"))
    d = load("demo.yaml")
    assert str(d.sources["celeba"].root).startswith(str(tmp_path / "corpus"))


def test_repic_2k_matches_the_paper():
    r = load("repic-2k.yaml")
    assert r.mixture.total == 2000
    p = r.mixture.proportions
    assert p["ict_multi"] == pytest.approx(0.047)  # "Ours: 4.7% of 2K"
    assert p["ict_single"] + p["ict_multi"] == pytest.approx(0.31)  # "approximately 31% ... single and multi-ICT"
    counts = largest_remainder(task_shares(r), 2000)
    assert counts["ict_multi"] == 94 and counts["ict_single"] + counts["ict_multi"] == 620
    kinds = lambda task: {r.sources[s].kind for s in source_weights(r, task)}  # noqa: E731
    assert kinds("oct") == kinds("ict_single") == {"coco", "objects365", "celeba", "subjects200k"}
    assert kinds("ict_multi") == {"coco", "objects365"} and kinds("vlt") == {"refcoco"}
    assert set(r.sources["refcoco"].datasets) == {"refcoco", "refcoco+", "refcocog"}
    assert (r.tasks.ict_multi.min_refs, r.tasks.ict_multi.max_refs) == (2, 3)
    assert r.templates.reasoning == "none" and r.templates.detailed_prompts


def test_repic_5k_is_repic_2k_scaled():
    a, b = load("repic-2k.yaml"), load("repic-5k.yaml")
    assert b.mixture.total == 5000
    da, db = (
        a.model_dump(exclude={"name", "description", "mixture"}),
        b.model_dump(exclude={"name", "description", "mixture"}),
    )
    assert da == db and a.mixture.proportions == b.mixture.proportions


@pytest.mark.parametrize(
    "name,change",
    [
        ("think", {"templates": {"detailed_prompts": True, "reasoning": "think"}}),
        ("observe", {"templates": {"detailed_prompts": True, "reasoning": "observe"}}),
        ("no-detail-prompt", {"templates": {"detailed_prompts": False, "reasoning": "none"}}),
        ("no-oct", {"tasks": ["oct"]}),
        ("no-vlt", {"tasks": ["vlt"]}),
        ("no-ict", {"tasks": ["ict_single", "ict_multi"]}),
    ],
)
def test_ablations_change_one_thing(name, change):
    base, abl = load("repic-2k.yaml"), load(f"ablations/{name}.yaml")
    assert abl.mixture == base.mixture  # 2K seen data in every row of table 4
    a = abl.model_dump(exclude={"name", "description"})
    b = base.model_dump(exclude={"name", "description"})
    if "templates" in change:
        assert a["templates"] == change["templates"]
        a.pop("templates"), b.pop("templates")
    else:
        for t in change["tasks"]:
            assert a["tasks"][t]["enabled"] is False and b["tasks"][t]["enabled"] is True
            a["tasks"][t]["enabled"] = True
        counts = largest_remainder(task_shares(abl), 2000)
        assert sum(counts.values()) == 2000 and all(counts[t] == 0 for t in change["tasks"])
    assert a == b


def test_demo_recipe_is_small():
    d = load("demo.yaml")
    assert 150 <= d.mixture.total <= 300 and d.model.max_pixels <= 200704 and d.runtime.workers == 2


@pytest.mark.slow
def test_demo_recipe_plans_in_full_from_the_demo_corpus(tmp_path, monkeypatch):
    import importlib

    import curate.demo.corpus as corpus
    from curate.plan.mixture import plan_mixture

    corpus.generate_corpus(tmp_path / "corpus", seed=0, size="demo")
    recipe = load_recipe(RECIPES / "demo.yaml")
    tables = {n: importlib.import_module(f"curate.sources.{s.kind}").read(n, s) for n, s in recipe.sources.items()}
    result = plan_mixture(recipe, tables)
    assert result.stats["shortfalls"] == [] and len(result.plans) == recipe.mixture.total
    assert result.stats["task_planned"] == largest_remainder(task_shares(recipe), recipe.mixture.total)


def test_repic_2k_plans_exactly_on_large_enough_tables():
    from curate.plan.mixture import plan_mixture
    from tests.support import synthetic as S

    r = load("repic-2k.yaml")
    tables = {
        "coco": S.detection("coco", "coco", 700, seed=1),
        "objects365": S.detection("objects365", "objects365", 700, seed=2, prefix="x"),
        "celeba": S.celeba("celeba", n_ids=150, per_id=4),
        "subjects200k": S.subjects("subjects200k", n_pairs=400),
        "refcoco": S.refcoco("refcoco", n_images=900),
    }
    res = plan_mixture(r, tables)
    assert res.stats["shortfalls"] == [] and len(res.plans) == 2000
    assert res.stats["task_planned"] == {"oct": 690, "vlt": 690, "ict_single": 526, "ict_multi": 94}
    assert res.stats["oct_answers"] == {"yes": 345, "no": 345}
    multi = [p for p in res.plans if p.task == "ict_multi"]
    assert {len(p.names) for p in multi} == {2, 3}
