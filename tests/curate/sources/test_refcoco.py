"""RefCOCO-family reader: original pickles + instances.json, and the two HF Parquet layouts."""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate import imageio
from curate.errors import UserError
from curate.sources import refcoco
from curate.sources.refcoco import RefCOCOSource

CATS = [{"id": 1, "name": "person", "supercategory": "person"}, {"id": 18, "name": "dog", "supercategory": "animal"}]
IMAGES = {9: (640, 480), 25: (500, 375), 30: (400, 400)}


def coco_name(i: int) -> str:
    return f"COCO_train2014_{i:012d}.jpg"


def jpeg(size, color=(120, 130, 140)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=70)
    return buf.getvalue()


def sent(sid: int, text: str) -> dict:
    return {"tokens": text.split(), "raw": text.capitalize(), "sent": text, "sent_id": sid}


def ref(ref_id, ann_id, image_id, split, *sents, cat=1):
    return {
        "ref_id": ref_id,
        "ann_id": ann_id,
        "category_id": cat,
        "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
        "image_id": image_id,
        "split": split,
        "sent_ids": [s["sent_id"] for s in sents],
        "sentences": list(sents),
    }


ANNS = [
    {"id": 540661, "image_id": 9, "category_id": 1, "bbox": [10, 20, 100, 200], "area": 15000.5, "iscrowd": 0},
    {"id": 540662, "image_id": 9, "category_id": 18, "bbox": [300, 100, 50, 60], "area": 2500, "iscrowd": 0},
    {"id": 600001, "image_id": 25, "category_id": 1, "bbox": [0, 0, 40, 80], "area": 3000, "iscrowd": 0},
    {"id": 700001, "image_id": 30, "category_id": 18, "bbox": [5, 5, 20, 20], "area": 400, "iscrowd": 1},
]
REFS = [
    ref(22758, 540661, 9, "train", sent(64727, "woman in front"), sent(64728, "lady  smiling")),
    ref(22759, 540662, 9, "train", sent(64729, "dog on the right"), cat=18),
    ref(22760, 600001, 25, "testA", sent(64730, "man left")),
    ref(22761, 700001, 30, "testB", sent(64731, "small dog")),
]


def make_pickle_layout(
    root: Path, datasets_refs: dict[str, list[dict]] | None = None, anns=ANNS, images=IMAGES
) -> Path:
    datasets_refs = datasets_refs or {"refcoco": REFS, "refcoco+": REFS[:2]}
    split_by = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
    for ds, refs in datasets_refs.items():
        (root / ds).mkdir(parents=True, exist_ok=True)
        (root / ds / f"refs({split_by[ds]}).p").write_bytes(pickle.dumps(refs, protocol=2))
        inst = {
            "images": [{"id": i, "file_name": coco_name(i), "width": w, "height": h} for i, (w, h) in images.items()],
            "annotations": anns,
            "categories": CATS,
        }
        (root / ds / "instances.json").write_text(json.dumps(inst))
    for i, size in images.items():
        p = root / "images" / "train2014" / coco_name(i)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(jpeg(size))
    return root


def spec(root, **kw) -> RefCOCOSource:
    kw.setdefault("datasets", ["refcoco", "refcoco+"])
    return RefCOCOSource(kind="refcoco", root=root, **kw)


def reasons(st) -> set[tuple[str, str]]:
    return set(st.quarantine.select("record_id", "reason").iter_rows())


def test_pickle_layout_gives_one_referring_row_per_sentence(tmp_path):
    root = make_pickle_layout(tmp_path / "refcoco")
    st = refcoco.read("refcoco", spec(root))
    ref_rows = st.get("referring").filter(dataset="refcoco").sort("sent_id")
    assert ref_rows["expression"].to_list() == ["woman in front", "lady smiling", "dog on the right"]
    row = ref_rows.row(0, named=True)
    assert (row["ref_id"], row["sent_id"], row["image_id"], row["object_id"]) == ("22758", "64727", "9", "540661")
    assert (row["category"], row["split"], row["split_by"], list(row["bbox"])) == (
        "person",
        "train",
        "unc",
        [10.0, 20.0, 110.0, 220.0],
    )
    assert st.get("referring").filter(dataset="refcoco+").height == 3  # same refs, other dataset
    # COCO ids: the two datasets share image and object rows
    assert st.images.select("image_id", "path", "width", "height", "split").rows() == [
        ("9", str(root / "images" / "train2014" / coco_name(9)), 640, 480, "train")
    ]
    objs = st.objects.sort("object_id")
    assert objs["object_id"].to_list() == ["540661", "540662"] and objs["category"].to_list() == ["person", "dog"]
    assert objs["area"].to_list() == [15000.5, 2500.0]
    assert st.quarantine.height == 0


def test_test_selects_testA_and_testB_and_limit_counts_images(tmp_path):
    root = make_pickle_layout(tmp_path / "refcoco")
    st = refcoco.read("refcoco", spec(root, datasets=["refcoco"], splits=["test"]))
    assert sorted(st.get("referring")["split"].to_list()) == ["testA", "testB"]
    assert st.objects.filter(object_id="700001")["iscrowd"].to_list() == [True]
    st = refcoco.read("refcoco", spec(root, datasets=["refcoco"], splits=["testB"]))
    assert st.get("referring")["expression"].to_list() == ["small dog"]
    st = refcoco.read("refcoco", spec(root, datasets=["refcoco"], splits=["train", "test"], limit=2))
    assert st.images["image_id"].to_list() == ["9", "25"] and st.get("referring").height == 4


def test_bad_refs_become_quarantine_rows(tmp_path):
    anns = ANNS + [
        {"id": 1, "image_id": 9, "category_id": 1, "bbox": [600, 400, 100, 100]},  # leaves the 640x480 image
        {"id": 2, "image_id": 9, "category_id": 99, "bbox": [1, 1, 5, 5]},  # unknown category
        {"id": 3, "image_id": 9, "category_id": 1, "bbox": [1, 1, float("nan"), 5]},
        {"id": 4, "image_id": 9, "category_id": 1, "bbox": [1, 1, 0, 5]},
        {"id": 5, "image_id": 77, "category_id": 1, "bbox": [1, 1, 5, 5]},  # image 77: file_name escapes the folder
        {"id": 6, "image_id": 88, "category_id": 1, "bbox": [1, 1, 5, 5]},  # image 88: not on disk
        {"id": 7, "image_id": 30, "category_id": 1, "bbox": [1, 1, 5, 5]},  # image 30: corrupt file
        "not an annotation",
    ]
    refs = (
        REFS[:2]
        + [
            ref(100 + a, a, iid, "train", sent(100 + a, "x"))
            for a, iid in [(1, 9), (2, 9), (3, 9), (4, 9), (5, 77), (6, 88), (7, 30), (999, 9), (540662, 25)]
        ]
        + [
            ref(22758, 540661, 9, "train", sent(10, "again")),
            {"ref_id": 10, "ann_id": 540661, "image_id": 9, "split": "train"},  # no sentences
            {
                **ref(11, 540661, 9, "train"),
                "sentences": [sent(11, "   "), {"sent": "no id"}, sent(64727, "reused id"), sent(12, "fine")],
            },
            ref(12, 540661, 9, "train"),  # no sentences at all
            ["not", "a", "dict"],
        ]
    )
    root = make_pickle_layout(
        tmp_path / "refcoco", {"refcoco": refs}, anns=anns, images={**IMAGES, 77: (10, 10), 88: (10, 10)}
    )
    inst = json.loads((root / "refcoco" / "instances.json").read_text())
    inst["images"][3]["file_name"] = "../../../etc/passwd"
    (root / "refcoco" / "instances.json").write_text(json.dumps(inst))
    (root / "images" / "train2014" / coco_name(88)).unlink()
    (root / "images" / "train2014" / coco_name(30)).write_bytes(b"\xff\xd8\xff truncated")
    st = refcoco.read("refcoco", spec(root, datasets=["refcoco"]))
    assert reasons(st) == {
        # instances.json records (record id = annotation / image id; checked as a COCO file is: same reasons, and each
        # annotation of a bad image carries the image's reason), then the refs on them
        ("annotations[11]", "wrong_type"),
        ("1", "bbox_out_of_bounds"),
        ("2", "category_unknown"),
        ("3", "bbox_nan"),
        ("4", "bbox_zero_area"),
        ("77", "path_traversal"),
        ("5", "path_traversal"),
        ("88", "image_missing"),
        ("30", "image_unreadable"),
        ("101", "bbox_out_of_bounds"),
        ("102", "category_unknown"),
        ("103", "bbox_nan"),
        ("104", "bbox_zero_area"),
        ("105", "path_traversal"),
        ("106", "image_missing"),
        ("107", "image_unreadable"),
        ("1099", "annotation_unknown"),
        ("540762", "image_mismatch"),
        # refs and sentences
        ("22758", "ref_id_duplicate"),
        ("10", "ref_malformed"),
        ("11:11", "empty_expression"),
        ("11:#1", "sentence_malformed"),
        ("11:64727", "sent_id_duplicate"),
        ("12", "no_expression"),
        ("#15", "ref_malformed"),
    }
    assert st.quarantine.filter(record_id="22758")["detail"][0].startswith("refcoco: ")
    assert st.get("referring").filter(ref_id="11")["expression"].to_list() == ["fine"]
    assert st.images["image_id"].to_list() == ["9"]


def test_truncated_and_wrongly_sized_image_files(tmp_path):
    root = make_pickle_layout(tmp_path / "refcoco", {"refcoco": REFS})
    cut = root / "images" / "train2014" / coco_name(25)
    cut.write_bytes(cut.read_bytes()[:-30])
    (root / "images" / "train2014" / coco_name(30)).write_bytes(jpeg((300, 300)))  # instances.json says 400x400
    st = refcoco.read("refcoco", spec(root, datasets=["refcoco"], splits=["test"]))
    assert reasons(st) == {
        ("25", "image_truncated"),
        ("22760", "image_truncated"),
        ("30", "image_size_mismatch"),
        ("22761", "image_size_mismatch"),
    }
    assert (
        refcoco.read("refcoco", spec(root, datasets=["refcoco"], splits=["test"], verify_images="exists")).images.height
        == 2
    )


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    root = make_pickle_layout(tmp_path / "refcoco", {"refcoco": REFS})
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (root / "refcoco" / "refs(unc).p").write_bytes(pickle.dumps([Evil()], protocol=2))
    with pytest.raises(UserError, match=r"refs\(unc\)\.p: refused to unpickle: it references posix.system"):
        refcoco.read("refcoco", spec(root, datasets=["refcoco"]))
    assert not marker.exists()


def test_unreadable_files_are_one_line_errors(tmp_path):
    root = make_pickle_layout(tmp_path / "refcoco", {"refcoco": REFS})
    s = spec(root, datasets=["refcoco"])
    (root / "refcoco" / "instances.json").write_text("{not json")
    with pytest.raises(UserError, match=r"instances.json: not valid JSON"):
        refcoco.read("refcoco", s)
    (root / "refcoco" / "instances.json").write_text(json.dumps({"images": {}, "annotations": []}))
    with pytest.raises(UserError, match=r"instances.json: missing the 'categories' section"):
        refcoco.read("refcoco", s)
    (root / "refcoco" / "refs(unc).p").write_bytes(pickle.dumps({"refs": []}, protocol=2))
    with pytest.raises(UserError, match=r"refs\(unc\)\.p: expected a list of refs, found a dict"):
        refcoco.read("refcoco", s)
    (root / "refcoco" / "refs(unc).p").write_text("ref_id,sent\n1,woman\n")
    with pytest.raises(UserError, match=r"refs\(unc\)\.p: not a readable pickle"):
        refcoco.read("refcoco", s)
    with pytest.raises(UserError, match=r"refs\(umd\)\.p: file not found"):
        refcoco.read("refcoco", spec(root, datasets=["refcocog"]))
    assert [p.name for p in refcoco.input_files(s)] == ["refs(unc).p", "instances.json"]


# ---------------------------------------------------------------- HF layouts
LMMS_FEATURES = datasets.Features(
    {
        "question_id": datasets.Value("string"),
        "image": datasets.Image(),
        "question": datasets.Value("string"),
        "answer": datasets.Sequence(datasets.Value("string")),
        "segmentation": datasets.Sequence(datasets.Value("float32")),
        "bbox": datasets.Sequence(datasets.Value("float32")),
        "iscrowd": datasets.Value("int8"),
        "file_name": datasets.Value("string"),
    }
)
JXU_FEATURES = datasets.Features(
    {
        "sent_ids": datasets.Sequence(datasets.Value("int64")),
        "file_name": datasets.Value("string"),
        "ann_id": datasets.Value("int64"),
        "ref_id": datasets.Value("int64"),
        "image_id": datasets.Value("int64"),
        "split": datasets.Value("string"),
        "sentences": [
            {
                "raw": datasets.Value("string"),
                "sent": datasets.Value("string"),
                "sent_id": datasets.Value("int64"),
                "tokens": datasets.Sequence(datasets.Value("string")),
            }
        ],
        "category_id": datasets.Value("int64"),
        "raw_anns": datasets.Value("string"),
        "raw_image_info": datasets.Value("string"),
        "raw_sentences": datasets.Value("string"),
        "image_path": datasets.Value("string"),
        "bbox": datasets.Sequence(datasets.Value("float64")),
        "captions": datasets.Sequence(datasets.Value("string")),
        "global_image_id": datasets.Value("string"),
        "anns_id": datasets.Value("string"),
    }
)


def lmms_row(qid, image_id, answers, bbox, size=(640, 480), image=None):
    return {
        "question_id": str(qid),
        "image": {"bytes": image if image is not None else jpeg(size), "path": None},
        "question": "Please provide the bounding box coordinate of the region this sentence describes: ",
        "answer": answers,
        "segmentation": [1.0, 2.0, 3.0],
        "bbox": bbox,
        "iscrowd": 0,
        "file_name": f"COCO_train2014_{image_id:012d}_{qid}.jpg",
    }


def jxu_row(r: dict, image_info_name=None, bbox=None, raw_anns=None):
    """One jxu124 row: ``bbox`` is absolute corners [x1, y1, x2, y2]; ``raw_anns`` the COCO ann (xywh) as JSON."""
    ann = next(a for a in ANNS if a["id"] == r["ann_id"])
    x, y, bw, bh = ann["bbox"]
    w, h = IMAGES[r["image_id"]]
    return {
        "sent_ids": r["sent_ids"],
        "file_name": r["file_name"],
        "ann_id": r["ann_id"],
        "ref_id": r["ref_id"],
        "image_id": r["image_id"],
        "split": r["split"],
        "sentences": r["sentences"],
        "category_id": r["category_id"],
        "raw_anns": json.dumps(ann) if raw_anns is None else raw_anns,
        "raw_image_info": json.dumps(
            {"file_name": image_info_name or coco_name(r["image_id"]), "width": w, "height": h, "id": r["image_id"]}
        ),
        "raw_sentences": json.dumps(r["sentences"]),
        "image_path": f"coco/train2014/{coco_name(r['image_id'])}",
        "bbox": [float(v) for v in (bbox or (x, y, x + bw, y + bh))],
        "captions": [s["sent"] for s in r["sentences"]],
        "global_image_id": f"coco.{r['image_id']}",
        "anns_id": str(r["ann_id"]),
    }


def write(path: Path, rows, features):
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))


def test_lmms_layout_embedded_images_and_shard_splits(tmp_path):
    root = tmp_path / "hf"
    write(
        root / "refcoco" / "data" / "val-00000-of-00001.parquet",
        [
            lmms_row(540661, 9, ["woman in front", "lady"], [10, 20, 100, 200]),
            lmms_row(540662, 9, ["dog"], [300, 100, 50, 60]),
            lmms_row(1, 25, ["far away"], [600, 400, 100, 100], size=(500, 375)),
            lmms_row(2, 30, ["broken"], [1, 1, 5, 5], image=b"<html>"),
            lmms_row(3, 25, [], [1, 1, 5, 5], size=(500, 375)),
        ],
        LMMS_FEATURES,
    )
    write(
        root / "refcoco" / "data" / "testA-00000-of-00001.parquet",
        [lmms_row(600001, 25, ["man left"], [0, 0, 40, 80], size=(500, 375))],
        LMMS_FEATURES,
    )
    st = refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"], splits=["val"]))
    rows = st.get("referring").sort("sent_id")
    assert rows.select("ref_id", "sent_id", "expression", "split", "split_by").rows() == [
        ("540661", "540661:0", "woman in front", "val", "hf"),
        ("540661", "540661:1", "lady", "val", "hf"),
        ("540662", "540662:0", "dog", "val", "hf"),
    ]
    assert list(rows["bbox"][0]) == [10.0, 20.0, 110.0, 220.0]
    img = st.images.row(0, named=True)
    assert (img["image_id"], img["width"], img["height"]) == ("9", 640, 480)
    assert imageio.open_image(img["path"]).size == (640, 480)
    assert reasons(st) == {
        ("1", "bbox_out_of_bounds"),
        ("30", "image_unreadable"),
        ("2", "image_unreadable"),
        ("3", "no_expression"),
    }
    assert st.objects.height == 2
    st = refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"], splits=["test"]))
    assert st.get("referring")["expression"].to_list() == ["man left"]


def test_jxu124_layout_per_row_split_wins_and_images_come_from_folder(tmp_path):
    make_pickle_layout(tmp_path / "coco")  # for the train2014 images
    images = tmp_path / "coco" / "images" / "train2014"
    root = tmp_path / "hf"
    # the HF "test" split of jxu124/refcoco holds testA rows
    write(root / "refcocoplus" / "data" / "test-00000-of-00001.parquet", [jxu_row(REFS[2])], JXU_FEATURES)
    write(
        root / "refcocoplus" / "data" / "train-00000-of-00001.parquet",
        [
            jxu_row(REFS[0]),
            jxu_row(REFS[1]),
            jxu_row(ref(5, 540661, 9, "train", sent(5, "x")), image_info_name="../x.jpg"),
        ],
        JXU_FEATURES,
    )
    s = spec(root, layout="hf", datasets=["refcoco+"], images=images, splits=["testA"])
    st = refcoco.read("rc", s)
    rows = st.get("referring")
    assert rows.select("dataset", "ref_id", "sent_id", "expression", "split").rows() == [
        ("refcoco+", "22760", "64730", "man left", "testA")
    ]
    assert st.images.select("image_id", "path", "width", "height").rows() == [
        ("25", str(images / coco_name(25)), 500, 375)
    ]
    st = refcoco.read("rc", s.model_copy(update={"splits": ["train"]}))
    assert sorted(st.get("referring")["expression"].to_list()) == ["dog on the right", "lady smiling", "woman in front"]
    assert st.objects.sort("object_id")["area"].to_list() == [15000.5, 2500.0]
    assert reasons(st) == {("5", "path_traversal")}
    assert len(refcoco.input_files(s)) == 2
    with pytest.raises(UserError, match="images folder not found"):
        refcoco.read("rc", s.model_copy(update={"images": tmp_path / "nowhere"}))


def test_hf_layout_errors(tmp_path):
    root = tmp_path / "hf"
    (root / "refcoco").mkdir(parents=True)
    pq.write_table(pa.table({"id": [1], "caption": ["a dog"]}), root / "refcoco" / "train-00000-of-00001.parquet")
    with pytest.raises(UserError, match=r"train-00000-of-00001.parquet: unknown RefCOCO Parquet layout"):
        refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"]))
    (root / "refcoco" / "train-00000-of-00001.parquet").write_bytes(b"PAR1 nope")
    with pytest.raises(UserError, match=r"not a readable Parquet file"):
        refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"]))
    with pytest.raises(UserError, match=r"no folder for refcocog"):
        refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco", "refcocog"]))


def test_generated_demo_corpus(tmp_path):
    from curate.demo.corpus import generate_corpus

    generate_corpus(tmp_path, size="tiny", faults=True)
    faults = [
        f for f in json.loads((tmp_path / "FAULTS.json").read_text()) if f["source"] == "refcoco"
    ]  # decode stage too
    assert faults
    st = refcoco.read(
        "refcoco",
        spec(tmp_path / "refcoco", datasets=["refcoco", "refcoco+", "refcocog"], splits=["train", "val", "test"]),
    )
    assert {f["record_id"] for f in faults} <= set(st.quarantine["record_id"])
    rows = st.get("referring")
    assert set(rows["dataset"]) == {"refcoco", "refcoco+", "refcocog"}
    assert set(rows["split_by"]) == {"unc", "umd"} and "testA" in set(rows["split"])
    assert set(rows["object_id"]) <= set(st.objects["object_id"]) and set(rows["image_id"]) == set(
        st.images["image_id"]
    )
    assert all(Path(p).is_file() for p in st.images["path"])


def test_jxu124_bbox_is_corners_cross_checked_against_raw_anns(tmp_path):
    """Issue 9 item 20: jxu124 ``bbox`` is [x1, y1, x2, y2]; a box that disagrees with ``raw_anns`` is quarantined."""
    make_pickle_layout(tmp_path / "coco")
    images = tmp_path / "coco" / "images" / "train2014"
    root = tmp_path / "hf"
    write(
        root / "refcoco" / "data" / "train-00000-of-00001.parquet",
        [
            jxu_row(REFS[0]),  # corners (10, 20, 110, 220), raw_anns xywh (10, 20, 100, 200): agree
            jxu_row(REFS[1], bbox=[300, 100, 50, 60]),  # xywh written where corners belong: disagrees
            jxu_row(ref(7, 600001, 25, "train", sent(7, "man left")), raw_anns="not json"),
        ],
        JXU_FEATURES,
    )
    st = refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"], images=images))
    rows = st.get("referring").sort("sent_id")
    assert rows["ref_id"].unique().to_list() == ["22758"]
    assert [list(b) for b in rows["bbox"]] == [[10.0, 20.0, 110.0, 220.0]] * 2
    assert st.objects["area"].to_list() == [15000.5]
    q = {r: (reason, detail) for r, reason, detail in st.quarantine.select("record_id", "reason", "detail").iter_rows()}
    assert q["22759"][0] == "bbox_negative"  # [300, 100, 50, 60] as corners has x2 < x1
    assert q["7"][0] == "raw_anns_malformed"
    # corners that are a valid box but not the annotation's box: a mismatch, never a silent choice
    write(
        root / "refcoco" / "data" / "train-00000-of-00001.parquet",
        [jxu_row(REFS[0], bbox=[10, 20, 120, 240])],
        JXU_FEATURES,
    )
    st = refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"], images=images))
    assert st.get("referring").height == 0
    ((reason, detail),) = st.quarantine.select("reason", "detail").rows()
    assert reason == "bbox_mismatch" and "[10, 20, 100, 200]" in detail


def test_lmms_copies_without_the_requested_split_are_a_user_error(tmp_path):
    """Issue 9 item 21: lmms-lab RefCOCO has no train split; the default ``splits: [train]`` must not index 0 rows."""
    root = tmp_path / "hf"
    write(
        root / "refcoco" / "data" / "val-00000-of-00001.parquet",
        [lmms_row(540661, 9, ["woman"], [10, 20, 100, 200]), lmms_row(540662, 9, ["dog"], [300, 100, 50, 60])],
        LMMS_FEATURES,
    )
    write(
        root / "refcoco" / "data" / "testA-00000-of-00001.parquet",
        [lmms_row(600001, 25, ["man left"], [0, 0, 40, 80], size=(500, 375))],
        LMMS_FEATURES,
    )
    with pytest.raises(UserError, match=r"no rows for splits \[train\]: its data has testA \(1 rows\), val \(2 rows\)"):
        refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"]))
    with pytest.raises(UserError, match="val/test only"):
        refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"]))
    assert (
        refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"], splits=["val"])).get("referring").height == 2
    )
    make_pickle_layout(tmp_path / "pk")
    with pytest.raises(UserError, match=r"no rows for splits \[val\]: its data has testA"):
        refcoco.read("rc", spec(tmp_path / "pk", splits=["val"]))


def test_auto_converted_parquet_layout_takes_the_split_from_the_folder(tmp_path):
    """Issue 9 item 24: the Hub's ``default/val/0000.parquet`` layout names the split by folder."""
    root = tmp_path / "hf"
    write(
        root / "refcoco" / "default" / "val" / "0000.parquet",
        [lmms_row(1, 9, ["woman"], [10, 20, 100, 200])],
        LMMS_FEATURES,
    )
    write(
        root / "refcoco" / "default" / "partial-testB" / "0000.parquet",
        [lmms_row(2, 25, ["man"], [0, 0, 40, 80], size=(500, 375))],
        LMMS_FEATURES,
    )
    write(root / "refcoco" / "0001.parquet", [lmms_row(3, 9, ["dog"], [300, 100, 50, 60])], LMMS_FEATURES)
    st = refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"], splits=["val", "test"]))
    assert sorted(st.get("referring").select("ref_id", "split").rows()) == [("1", "val"), ("2", "testB")]
    assert reasons(st) == {("3", "split_unknown")}  # a number-named file directly in the dataset folder


@pytest.mark.timeout(20)
def test_pickle_of_shared_nested_lists_does_not_hang_the_reader(tmp_path):
    root = make_pickle_layout(tmp_path / "refcoco", {"refcoco": REFS})
    node: list = []
    for _ in range(40):
        node = [node, node]
    (root / "refcoco" / "refs(unc).p").write_bytes(pickle.dumps(node, protocol=2))
    with pytest.raises(UserError, match=r"refs\(unc\)\.p: refused to unpickle: it shares containers"):
        refcoco.read("refcoco", spec(root, datasets=["refcoco"]))


def test_hf_layouts_refuse_links_out_of_their_folders(tmp_path):
    """Issue 9, item 1: a jxu124 image or an lmms shard that is a symlink out of its folder is quarantined
    as ``path_outside_root`` and never opened."""
    make_pickle_layout(tmp_path / "coco")
    images = tmp_path / "coco" / "images" / "train2014"
    outside = tmp_path / "outside"
    outside.mkdir()
    os.replace(images / coco_name(9), outside / coco_name(9))
    (images / coco_name(9)).symlink_to(outside / coco_name(9))
    root = tmp_path / "hf"
    write(root / "refcoco" / "data" / "train-00000-of-00001.parquet", [jxu_row(r) for r in REFS[:2]], JXU_FEATURES)
    st = refcoco.read("rc", spec(root, layout="hf", datasets=["refcoco"], images=images))
    assert ("9", "path_outside_root") in reasons(st) and st.images.height == 0
    detail = st.quarantine.filter(record_id="9")["detail"][0]
    assert str(outside / coco_name(9)) in detail
    lmms = tmp_path / "lmms"
    write(outside / "val-00000-of-00001.parquet", [lmms_row(540661, 9, ["woman"], [10, 20, 100, 200])], LMMS_FEATURES)
    (lmms / "refcoco").mkdir(parents=True)
    (lmms / "refcoco" / "val-00000-of-00001.parquet").symlink_to(outside / "val-00000-of-00001.parquet")
    write(
        lmms / "refcoco" / "val-00001-of-00001.parquet",
        [lmms_row(540662, 9, ["dog"], [300, 100, 50, 60])],
        LMMS_FEATURES,
    )
    s = spec(lmms, layout="hf", datasets=["refcoco"], splits=["val"])
    st = refcoco.read("rc", s)
    assert ("val-00000-of-00001.parquet", "path_outside_root") in reasons(st)
    assert st.get("referring")["expression"].to_list() == ["dog"]
    assert [p.name for p in refcoco.input_files(s)] == ["val-00001-of-00001.parquet"]
