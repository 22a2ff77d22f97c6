"""The demo recipe's answers are true of the demo corpus: every OCT "yes" query shows the
reference's object instance (or CelebA identity) and no "no" query does, and every ICT
query shows its references. Checked against the generator's TRUTH.json, after indexing
with the real readers and planning with the real planner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.demo.corpus import generate_corpus
from curate.plan.example import ImageRef
from curate.plan.mixture import plan_mixture
from curate.recipe import load_recipe
from curate.sources.index import index_recipe

pytestmark = pytest.mark.slow  # builds tiny models / a demo build per module: ~5-40 s


DEMO_RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "demo.yaml"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    generate_corpus(root / "corpus", seed=0, size="tiny")
    mp = pytest.MonkeyPatch()
    mp.setenv("REPIC_DEMO_CORPUS", str(root / "corpus"))
    try:
        recipe = load_recipe(DEMO_RECIPE)
    finally:
        mp.undo()
    recipe = recipe.model_copy(update={"runtime": recipe.runtime.model_copy(update={"cache_dir": root / "cache"})})
    truth = json.loads((root / "corpus" / "TRUTH.json").read_text())
    return recipe, index_recipe(recipe), truth


class Truth:
    """What an ImageRef shows, according to TRUTH.json: the subject of a reference, the subjects in a query."""

    def __init__(self, truth: dict, kinds: dict[str, str]):
        self.truth, self.kinds = truth, kinds

    def subject(self, ref: ImageRef) -> str:
        kind, t = self.kinds[ref.source], self.truth[self.kinds[ref.source]]
        if kind in ("coco", "objects365"):
            assert ref.object_id is not None and ref.box is not None
            return t["annotations"][ref.object_id]
        if kind == "subjects200k":  # a panel of a pair
            assert ref.object_id in (f"{ref.image_id}/left", f"{ref.image_id}/right")
            return t["pairs"][ref.image_id]
        return str(t["photos"][f"{ref.image_id}.jpg"])  # celeba: an identity

    def shown(self, query: ImageRef) -> set[str]:
        kind, t = self.kinds[query.source], self.truth[self.kinds[query.source]]
        if kind in ("coco", "objects365"):
            assert query.box is None  # the whole image
            return set(t["images"][query.image_id])
        if kind == "subjects200k":
            return {t["pairs"][query.image_id]}
        return {str(t["photos"][f"{query.image_id}.jpg"])}

    def family(self, source: str, iid: str) -> str | None:
        return self.truth[self.kinds[source]].get("instances", {}).get(iid, {}).get("family")


@pytest.mark.parametrize("proportions", [None, {"oct": 1.0}], ids=["demo-shares", "oct-only"])
def test_oct_answers_and_ict_references_match_the_truth(indexed, proportions):
    recipe, tables, truth = indexed
    mixture = recipe.mixture.model_copy(update={"total": 60, **({"proportions": proportions} if proportions else {})})
    result = plan_mixture(recipe.model_copy(update={"mixture": mixture}), tables)
    t = Truth(truth, {name: st.kind for name, st in tables.items()})
    oct_plans = [p for p in result.plans if p.task == "oct"]
    assert {p.source for p in oct_plans} == {"coco", "objects365", "celeba", "subjects200k"}
    assert len(oct_plans) >= (40 if proportions else 25)
    lookalike_negatives = 0
    for p in oct_plans:
        ref, query = p.images
        subject, shown = t.subject(ref), t.shown(query)
        if p.solution == "yes":
            assert subject in shown, (p.source, p.source_ids)
        else:
            assert p.solution == "no" and subject not in shown, (p.source, p.source_ids)
            family = t.family(p.source, subject)
            lookalike_negatives += any(family is not None and t.family(p.source, s) == family for s in shown)
    answers = {a: sum(p.solution == a for p in oct_plans) for a in ("yes", "no")}
    assert answers["yes"] and answers["no"]
    hard = [p for p in oct_plans if p.meta.get("negative") == "hard"]
    assert hard and lookalike_negatives >= 1  # hard negatives exist, some show a look-alike of the reference
    for p in result.plans:
        if p.task == "ict_single":
            assert t.subject(p.images[0]) in t.shown(p.images[1]), (p.source, p.source_ids)
        elif p.task == "ict_multi":
            subjects = [t.subject(r) for r in p.images[:-1]]
            assert len(set(subjects)) == len(subjects) and set(subjects) <= t.shown(p.images[-1])
