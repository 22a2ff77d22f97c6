import numpy as np
import polars as pl
import pytest

from curate.plan.candidates import PlanContext, crop_candidates
from curate.plan.ict import ICTMultiPlanner, ICTSinglePlanner, box_iou, select_refs
from curate.plan.names import NameGenerator
from curate.plan.oct import OCTPlanner
from curate.plan.vlt import VLTPlanner
from curate.recipe import Crops
from curate.sources.tables import SourceTables, from_rows
from tests.support import synthetic as S


def ctx_for(**sections) -> PlanContext:
    r = S.recipe(**sections)
    return PlanContext(recipe=r, names=NameGenerator(r.seed, "en_US"))


def rng(i=0):
    return np.random.default_rng(i)


def obj(oid, box, **kw):
    return {
        "source": "c",
        "image_id": "1",
        "object_id": oid,
        "category": "cup",
        "bbox": box,
        "area": 0.0,
        "iscrowd": False,
        "isfake": False,
        "isreflected": False,
        **kw,
    }


def test_crop_filters_quarantine_every_rejection_with_its_reason():
    images = from_rows("images", [{"source": "c", "image_id": "1", "path": "p", "width": 200, "height": 100}])
    objects = from_rows(
        "objects",
        [
            obj("ok", [50, 20, 110, 80]),
            obj("crowd", [10, 10, 90, 90], iscrowd=True),
            obj("fake", [10, 10, 90, 90], isfake=True),
            obj("mirror", [10, 10, 90, 90], isreflected=True),
            obj("thin", [10, 10, 20, 90]),  # 10 px wide
            obj("long", [0, 40, 190, 80]),  # 190 x 40: aspect 4.75
            obj("edge", [0, 0, 60, 60]),  # grows past the image
            {**obj("orphan", [10, 10, 90, 90]), "image_id": "missing"},
        ],
    )
    good, q = crop_candidates(objects, images, Crops(margin=0.1, min_side=32, max_aspect=4.0), "c")
    reasons = dict(zip(q["record_id"], q["reason"]))
    assert reasons == {
        "crowd": "crop_crowd",
        "fake": "crop_fake",
        "mirror": "crop_reflected",
        "thin": "crop_small_side",
        "long": "crop_aspect",
        "orphan": "object_without_image",
    }
    assert set(q["stage"]) == {"plan"}
    rows = {r["object_id"]: r for r in good.iter_rows(named=True)}
    assert (rows["ok"]["cx1"], rows["ok"]["cy1"], rows["ok"]["cx2"], rows["ok"]["cy2"]) == pytest.approx(
        (44, 14, 116, 86)
    )
    assert (rows["edge"]["cx1"], rows["edge"]["cy1"]) == (0, 0)  # clipped
    _, q2 = crop_candidates(objects, images, Crops(margin=0.1, clip_to_image=False), "c")
    assert "crop_outside_image" in set(q2["reason"])


def categories_of(st: SourceTables, image_id: str) -> set[str]:
    return set(st.objects.filter(pl.col("image_id") == image_id)["category"])


@pytest.mark.parametrize("kind", ["coco", "objects365"])
def test_detection_oct_pairs(kind):
    st = S.detection(kind, kind, 60, seed=4)
    ctx = ctx_for(tasks={"oct": {"hard_negative_fraction": 0.5}})
    plans = OCTPlanner(ctx, st, rng()).take(40)
    assert len(plans) == 40
    yes = [p for p in plans if p.solution == "yes"]
    no = [p for p in plans if p.solution == "no"]
    assert len(yes) == len(no) == 20
    for p in plans:
        ref, query = p.images
        assert ref.box is not None and query.box is None and ref.object_id
        cat = p.meta["category"]
        if p.solution == "yes":
            assert query.image_id == ref.image_id
        else:
            assert query.image_id != ref.image_id  # never the reference's own instance
            if p.meta["negative"] == "hard":
                assert cat in categories_of(st, query.image_id)
            else:
                assert cat not in categories_of(st, query.image_id)
    assert sum(p.meta.get("negative") == "hard" for p in no) == 10


def test_celeba_oct_pairs_follow_identities():
    st = S.celeba(n_ids=10, per_id=4)
    ident = dict(zip(st.get("identities")["image_id"], st.get("identities")["identity"]))
    plans = OCTPlanner(ctx_for(), st, rng()).take(20)
    assert len(plans) == 20
    for p in plans:
        ref, query = p.images
        assert ref.image_id != query.image_id and ref.box is None
        assert (ident[ref.image_id] == ident[query.image_id]) == (p.solution == "yes")
        assert p.meta.get("negative", "easy") == "easy"


def test_subjects_oct_pairs_and_hard_negatives():
    st = S.subjects(n_pairs=30)
    pair_cat = dict(zip(st.get("pairs")["image_id"], st.get("pairs")["category"]))
    plans = OCTPlanner(ctx_for(tasks={"oct": {"hard_negative_fraction": 1.0}}), st, rng()).take(20)
    for p in plans:
        ref, query = p.images
        assert ref.box is not None and query.box is not None and ref.object_id != query.object_id
        if p.solution == "yes":
            assert ref.image_id == query.image_id
        else:
            assert ref.image_id != query.image_id and pair_cat[ref.image_id] == pair_cat[query.image_id]
    assert sum(p.solution == "no" for p in plans) == 10


def test_single_ict_uses_positive_pairs_and_answers_with_the_name():
    st = S.detection("coco", "coco", 30, seed=5)
    plans = ICTSinglePlanner(ctx_for(), st, rng()).take(10)
    assert len(plans) == 10
    for p in plans:
        ref, query = p.images
        assert ref.image_id == query.image_id and p.solution == p.names[0]
        text = p.messages[0]["content"][-1]["text"]
        assert f"named {p.names[0]}." in text and text.startswith("You are a captioning expert.")


def test_multi_ict_references_are_large_distinct_and_low_overlap():
    st = S.detection("coco", "coco", 40, seed=6)
    ctx = ctx_for(
        tasks={"ict_multi": {"max_overlap_iou": 0.1, "min_area_fraction": 0.03, "min_refs": 2, "max_refs": 3}}
    )
    plans = ICTMultiPlanner(ctx, st, rng()).take(15)
    assert len(plans) == 15
    sizes = set()
    boxes = {r["object_id"]: r["bbox"] for r in st.objects.iter_rows(named=True)}
    for p in plans:
        refs, query = p.images[:-1], p.images[-1]
        sizes.add(len(refs))
        assert 2 <= len(refs) <= 3 and query.box is None
        assert all(r.image_id == query.image_id for r in refs)
        assert p.solution == p.names and len(set(p.names)) == len(refs)
        assert len({r.object_id for r in refs}) == len(refs)
        b = [boxes[r.object_id] for r in refs]
        assert all(box_iou(b[i], b[j]) <= 0.1 for i in range(len(b)) for j in range(i + 1, len(b)))
        assert all((x2 - x1) * (y2 - y1) >= 0.03 * 640 * 480 for x1, y1, x2, y2 in b)
    assert sizes == {2, 3}


def test_select_refs_prefers_distinct_categories_then_overlap_limit():
    rows = [
        {"category": "a", "bbox": [0, 0, 10, 10]},
        {"category": "a", "bbox": [20, 0, 30, 10]},
        {"category": "b", "bbox": [1, 1, 10, 10]},
        {"category": "c", "bbox": [40, 0, 50, 10]},
    ]
    picked = select_refs(rows, 3, 0.1, True)
    assert [r["category"] for r in picked] == ["a", "c", "a"]  # "b" overlaps the first box
    assert [r["category"] for r in select_refs(rows, 3, 0.1, False)] == ["a", "a", "c"]


def test_vlt_one_expression_per_image_from_the_chosen_splits():
    st = S.refcoco(n_images=40)
    ctx = ctx_for(tasks={"vlt": {"splits": ["train"]}})
    plans = VLTPlanner(ctx, st, rng()).take(100)
    ref = st.get("referring")
    train_images = set(ref.filter(pl.col("split") == "train")["image_id"])
    assert len(plans) == len(train_images)  # no image twice, val images never used
    for p in plans:
        (q,) = p.images
        assert q.image_id in train_images and q.box is None and p.names == []
        assert p.source_ids[2] == f"{p.meta['dataset']}/{p.meta['sent_id']}"
        row = ref.filter((pl.col("sent_id") == p.meta["sent_id"]) & (pl.col("dataset") == p.meta["dataset"])).row(
            0, named=True
        )
        assert p.solution == list(row["bbox"]) and row["expression"] in p.messages[0]["content"][-1]["text"]


def test_query_images_are_claimed_across_planners():
    st = S.detection("coco", "coco", 20, seed=7)
    ctx = ctx_for()
    a = OCTPlanner(ctx, st, rng(1)).take(100)
    b = ICTSinglePlanner(ctx, st, rng(2)).take(100)
    queries = [p.images[-1].image_id for p in a + b]
    assert len(queries) == len(set(queries))
    assert len(queries) <= 20 + 20 // 6  # every image of the source at most once


def test_negatives_fall_back_to_easy_when_no_hard_query_exists():
    st = S.subjects(n_pairs=20, categories=[f"Category{i}" for i in range(20)])  # no two pairs share a category
    plans = OCTPlanner(ctx_for(tasks={"oct": {"hard_negative_fraction": 1.0}}), st, rng()).take(12)
    no = [p for p in plans if p.solution == "no"]
    assert len(plans) == 12 and len(no) == 6
    assert all(p.meta["negative"] == "easy" for p in no)


def test_detection_negatives_never_show_the_reference_identity():
    st = S.detection("coco", "coco", 40, seed=8)
    # give every "dog" box one shared identity: every dog image then shows the same dog
    objects = st.objects.with_columns(identity=pl.when(pl.col("category") == "dog").then(pl.lit("rex")).otherwise(None))
    st = SourceTables(st.source, st.kind, {**st.tables, "objects": objects})
    plans = OCTPlanner(ctx_for(tasks={"oct": {"hard_negative_fraction": 1.0}}), st, rng()).take(60)
    for p in plans:
        if p.solution == "no" and p.meta["category"] == "dog":
            assert "dog" not in categories_of(st, p.images[1].image_id)  # an easy one: every dog image shows "rex"
    assert any(p.solution == "no" and p.meta["category"] == "dog" for p in plans)


def test_celeba_in_the_wild_references_are_face_crops():
    st = S.celeba(n_ids=6, per_id=3)
    faces = [
        {
            "source": "celeba",
            "image_id": iid,
            "object_id": f"face-{iid}",
            "category": "face",
            "bbox": [40.0, 50.0, 140.0, 170.0],
            "area": 12000.0,
            "iscrowd": False,
            "isfake": False,
            "isreflected": False,
            "identity": ident,
        }
        for iid, ident in st.get("identities").select("image_id", "identity").iter_rows()
        if iid != "000001.jpg"
    ]  # one image without a usable face box
    st = SourceTables("celeba", "celeba", {**st.tables, "objects": from_rows("objects", faces)})
    plans = ICTSinglePlanner(ctx_for(), st, rng()).take(30)
    assert len(plans) == 18  # every photo is a query once, with another photo of its identity as the reference
    for p in plans:
        ref, query = p.images
        assert ref.box is not None and ref.object_id == f"face-{ref.image_id}" and query.box is None
        assert ref.image_id != "000001.jpg" and p.names[0] not in ("<face>",)


def test_vlt_test_split_means_every_test_split_and_dropped_rows_are_counted():
    """Issue 9 item 22: ``test`` in tasks.vlt.splits selects testA/testB as in a source's ``splits``; rows the
    split filter drops are counted (plan stats and one quarantine row per split)."""
    from curate.plan.mixture import plan_mixture
    from curate.sources.refcoco import wants_split

    names = ["train", "val", "testA", "testB", "test"]
    st = S.refcoco(n_images=40)
    ref = st.get("referring").with_columns(
        split=pl.col("image_id").map_elements(lambda i: names[int(i) % 5], return_dtype=pl.String)
    )
    st = SourceTables(st.source, st.kind, {**st.tables, "referring": ref})
    split_of = {iid: names[int(iid) % 5] for iid in ref["image_id"]}
    for splits in (["test"], ["testA", "val"], ["train"]):
        ctx = ctx_for(tasks={"vlt": {"splits": splits}})
        plans = VLTPlanner(ctx, st, rng()).take(1000)
        wanted = {iid for iid, s in split_of.items() if wants_split(s, splits)}
        assert {p.images[0].image_id for p in plans} == wanted
        q = pl.concat(ctx.quarantine).filter(reason="split_not_in_task")
        dropped = {r.split(":")[-1]: int(d.split()[0]) for r, d in q.select("record_id", "detail").iter_rows()}
        assert sum(dropped.values()) == 3 * (40 - len(wanted))  # three expressions per image
        assert not any(wants_split(s, splits) for s in dropped)
    assert dropped == {"val": 24, "testA": 24, "testB": 24, "test": 24}
    r = S.recipe(total=5, proportions={"vlt": 1.0}, sources=("refcoco",), tasks={"vlt": {"splits": ["train"]}})
    result = plan_mixture(r, {"refcoco": st})
    assert result.stats["split_filtered"] == {"refcoco": dict(sorted(dropped.items()))}
    assert any("96 indexed expressions outside tasks.vlt.splits" in n for n in result.stats["notes"])
    assert result.quarantine.filter(reason="split_not_in_task").height == 4
