"""COCO 2017 instances reader on a generated native-format fixture (real JPEGs, one record per bad kind)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from curate.errors import UserError
from curate.sources import coco
from curate.sources.coco import CocoSource
from curate.sources.common import xywh_to_xyxy
from tests.support.corpus import check_demo_source, write_jpeg, write_truncated_jpeg


def ann(aid, image_id, category_id, bbox, **extra) -> dict:
    return {
        "segmentation": [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]],
        "area": 10.0,
        "iscrowd": 0,
        "image_id": image_id,
        "bbox": bbox,
        "category_id": category_id,
        "id": aid,
        **extra,
    }


def img(iid, w, h, name=None) -> dict:
    return {
        "license": 4,
        "file_name": name or f"{iid:012d}.jpg",
        "coco_url": "",
        "height": h,
        "width": w,
        "date_captured": "2013-11-16 13:35:27",
        "flickr_url": "",
        "id": iid,
    }


# (record_id, reason) of every bad record in the fixture
EXPECTED_QUARANTINE = {
    ("18", "category_id_duplicate"),
    ("categories[4]", "wrong_type"),
    ("3", "image_truncated"),
    ("4", "image_missing"),
    ("5", "image_unreadable"),
    ("6", "path_traversal"),
    ("7", "path_traversal"),
    ("1", "image_id_duplicate"),
    ("images[8]", "wrong_type"),
    ("10", "wrong_type"),
    ("11", "image_size_mismatch"),
    ("images[11]", "wrong_type"),
    ("900100000002", "segmentation_malformed"),
    ("103", "bbox_out_of_bounds"),
    ("104", "bbox_zero_area"),
    ("105", "bbox_nan"),
    ("106", "bbox_negative"),
    ("107", "bbox_malformed"),
    ("108", "bbox_malformed"),
    ("109", "category_unknown"),
    ("110", "image_unknown"),
    ("101", "annotation_id_duplicate"),
    ("annotations[13]", "wrong_type"),
    ("112", "wrong_type"),
    ("113", "image_missing"),
    ("114", "image_missing"),
    ("115", "path_traversal"),
    ("116", "wrong_type"),
    ("annotations[19]", "wrong_type"),
    ("117", "image_truncated"),
    ("118", "image_size_mismatch"),
}


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    images = tmp_path / "train2017"
    write_jpeg(images / "000000000001.jpg", (64, 48))
    write_jpeg(images / "000000000002.jpg", (80, 60), 1)
    write_truncated_jpeg(images / "000000000003.jpg", (64, 48))
    (images / "000000000005.jpg").write_bytes(b"<html>not an image</html>")
    write_jpeg(images / "000000000009.jpg", (64, 48))
    write_jpeg(images / "000000000011.jpg", (64, 48))
    write_jpeg(tmp_path / "evil.jpg", (64, 48))  # exists, so only the name check stops it
    rle = {"size": [60, 80], "counts": [100, 200, 4500]}
    data = {
        "info": {"description": "fixture", "year": 2017},
        "licenses": [{"url": "", "id": 4, "name": "CC BY 2.0"}],
        "categories": [
            {"supercategory": "person", "id": 1, "name": "person"},
            {"supercategory": "animal", "id": 18, "name": "dog"},
            {"supercategory": "indoor", "id": 90, "name": "toothbrush"},
            {"id": 18, "name": "dog again"},
            {"id": "x"},
        ],
        "images": [
            img(1, 64, 48),
            img(2, 80, 60),
            img(3, 64, 48),
            img(4, 64, 48),
            img(5, 64, 48),
            img(6, 64, 48, "../evil.jpg"),
            img(7, 64, 48, "/etc/passwd"),
            img(1, 64, 48, "000000000009.jpg"),
            img("8", 64, 48, "000000000008.jpg"),
            {**img(10, 64, 48), "width": "64"},
            img(11, 100, 100),
            42,
        ],
        "annotations": [
            ann(101, 1, 1, [4, 5, 20, 10], area=150.5),
            {**ann(102, 1, 90, [0.0, 0.0, 64.0, 48.0]), "area": None},
            {
                "segmentation": rle,
                "area": None,
                "iscrowd": 1,
                "image_id": 2,
                "bbox": [10, 1, 20, 10],
                "category_id": 18,
                "id": 900100000001,
            },
            {
                "segmentation": {"size": [10, 10], "counts": [100]},
                "area": 5,
                "iscrowd": 1,
                "image_id": 2,
                "bbox": [1, 1, 2, 2],
                "category_id": 18,
                "id": 900100000002,
            },
            ann(103, 1, 1, [50, 40, 30, 20]),
            ann(104, 1, 1, [1, 1, 0, 5]),
            ann(105, 1, 1, [math.nan, 1, 2, 3]),
            ann(106, 1, 1, [1, 1, -5, 3]),
            ann(107, 1, 1, [1, 2, 3]),
            ann(108, 1, 1, ["a", 1, 2, 3]),
            ann(109, 1, 12, [1, 1, 2, 2]),
            ann(110, 999, 1, [1, 1, 2, 2]),
            ann(101, 2, 1, [1, 1, 2, 2]),
            ann("111", 1, 1, [1, 1, 2, 2]),
            ann(112, "1", 1, [1, 1, 2, 2]),
            ann(113, 4, 1, [1, 1, 2, 2]),
            ann(114, 4, 18, [1, 1, 2, 2]),
            ann(115, 6, 1, [1, 1, 2, 2]),
            ann(116, 2, 1, [1, 1, 2, 2], iscrowd=2),
            "oops",
            ann(117, 3, 1, [1, 1, 2, 2]),
            ann(118, 11, 1, [1, 1, 2, 2]),
            ann(119, 2, 18, [0, 0, 80, 60], area=0),
        ],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    return tmp_path


def spec(root: Path, **kw) -> CocoSource:
    return CocoSource(
        kind="coco", annotations=root / "annotations" / "instances_train2017.json", images=root / "train2017", **kw
    )


def test_reads_images_and_objects_in_absolute_xyxy(coco_root: Path):
    t = coco.read("coco", spec(coco_root))
    assert t.kind == "coco" and t.source == "coco"
    assert t.images.to_dicts() == [
        {
            "source": "coco",
            "image_id": "1",
            "path": str(coco_root / "train2017" / "000000000001.jpg"),
            "width": 64,
            "height": 48,
            "split": "train",
        },
        {
            "source": "coco",
            "image_id": "2",
            "path": str(coco_root / "train2017" / "000000000002.jpg"),
            "width": 80,
            "height": 60,
            "split": "train",
        },
    ]
    objs = {r["object_id"]: r for r in t.objects.to_dicts()}
    assert set(objs) == {"101", "102", "900100000001", "119"}
    assert objs["101"] == {
        "source": "coco",
        "image_id": "1",
        "object_id": "101",
        "category": "person",
        "bbox": [4.0, 5.0, 24.0, 15.0],
        "area": 150.5,
        "iscrowd": False,
        "isfake": False,
        "isreflected": False,
        "identity": None,
    }
    assert (
        objs["102"]["category"] == "toothbrush" and objs["102"]["area"] == 64 * 48
    )  # non-contiguous id 90; no area -> box area
    crowd = objs["900100000001"]
    assert crowd["iscrowd"] is True and crowd["category"] == "dog" and crowd["area"] == 200.0  # area from the RLE mask
    assert objs["119"]["area"] == 80 * 60  # a zero area in the record falls back to the box


def test_every_bad_record_is_quarantined_with_its_reason(coco_root: Path):
    q = coco.read("coco", spec(coco_root)).quarantine
    assert set(q.select("record_id", "reason").iter_rows()) == EXPECTED_QUARANTINE
    assert q.height == len(EXPECTED_QUARANTINE)
    assert set(q["source"]) == {"coco"} and set(q["stage"]) == {"index"}
    assert all("instances_train2017.json" in d for d in q["detail"])


def test_verify_none_skips_file_checks_but_not_name_checks(coco_root: Path):
    t = coco.read("coco", spec(coco_root, verify_images="none"))
    assert t.images["image_id"].to_list() == ["1", "2", "3", "4", "5", "11"]
    assert {"113", "114", "117", "118"} <= set(t.objects["object_id"])
    reasons = set(t.quarantine["reason"])
    assert "path_traversal" in reasons and not reasons & {
        "image_missing",
        "image_unreadable",
        "image_truncated",
        "image_size_mismatch",
    }


def test_exists_mode_only_finds_missing_files(coco_root: Path):
    q = coco.read("coco", spec(coco_root, verify_images="exists")).quarantine
    assert set(q.filter(q["reason"].str.starts_with("image_"))["reason"]) == {
        "image_missing",
        "image_id_duplicate",
        "image_unknown",
    }


def test_limit_and_split(coco_root: Path):
    t = coco.read("coco", spec(coco_root, limit=1, split="val"))
    assert t.images["image_id"].to_list() == ["1"] and t.images["split"].to_list() == ["val"]
    assert set(t.objects["image_id"]) == {"1"}
    q = set(t.quarantine["record_id"])
    assert "103" in q and "119" not in q  # annotations of images beyond the limit are not read, not rejected


def test_agrees_with_pycocotools_on_a_clean_file(tmp_path: Path):
    from pycocotools.coco import COCO

    data = {
        "images": [img(i, 640, 480) for i in (3, 9, 12)],
        "categories": [{"id": c, "name": f"c{c}", "supercategory": "s"} for c in (2, 5, 88)],
        "annotations": [
            ann(1000 + k, (3, 9, 12)[k % 3], (2, 5, 88)[k % 3], [k * 3.5, k * 2.25, 10.5 + k, 20 + k / 3])
            for k in range(60)
        ],
    }
    path = tmp_path / "clean.json"
    path.write_text(json.dumps(data))
    t = coco.read("c", CocoSource(kind="coco", annotations=path, images=tmp_path, verify_images="none"))
    ref = COCO(str(path))
    assert t.quarantine.height == 0
    assert sorted(t.images["image_id"].cast(int)) == sorted(ref.getImgIds())
    for row in t.objects.iter_rows(named=True):
        a = ref.loadAnns(int(row["object_id"]))[0]
        x, y, w, h = a["bbox"]
        assert row["bbox"] == [x, y, x + w, y + h]
        assert row["category"] == ref.loadCats(a["category_id"])[0]["name"] and row["image_id"] == str(a["image_id"])


BOXES = [
    [0, 0, 10, 10],
    [-1, -1, 5, 5],
    [-1.5, 0, 5, 5],
    [0, -2, 5, 5],
    [0, 0, -1, 5],
    [0, 0, 5, -0.1],
    [0, 0, 0, 5],
    [0, 0, 5, 0],
    [90, 90, 11, 11],
    [90, 90, 11.5, 1],
    [90, 0, 5, 101],
    [90, 0, 5, 101.5],
    [math.inf, 0, 1, 1],
    [0, math.nan, 1, 1],
    [0, 0, 1e308, 1],
    [99.5, 99.5, 0.25, 0.25],
    [3, 4, 5.5, 6.25],
]


def test_box_checks_match_xywh_to_xyxy(tmp_path: Path):
    data = {
        "images": [img(1, 100, 100)],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [ann(k + 1, 1, 1, b) for k, b in enumerate(BOXES)],
    }
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(data))
    t = coco.read("c", CocoSource(kind="coco", annotations=path, images=tmp_path, verify_images="none"))
    kept = {r["object_id"]: r["bbox"] for r in t.objects.to_dicts()}
    rejected = dict(t.quarantine.select("record_id", "reason").iter_rows())
    for k, b in enumerate(BOXES):
        box, reason = xywh_to_xyxy(b, 100, 100)
        if box is None:
            assert rejected.get(str(k + 1)) == reason, b
        else:
            assert kept[str(k + 1)] == list(box), b


@pytest.mark.parametrize(
    "content, problem",
    [
        (b'{"images": [', "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2, 3]", "top level is a JSON list"),
        (b'{"images": [], "categories": []}', "'annotations'"),
        (b'{"images": {}, "annotations": [], "categories": []}', "'images' must be a JSON list"),
        (b'{"images": [' + b"[" * 100_000 + b"]" * 100_000 + b'], "annotations": [], "categories": []}', "too deeply"),
    ],
)
def test_unreadable_file_is_a_one_line_user_error(tmp_path: Path, content: bytes, problem: str):
    path = tmp_path / "instances_bad.json"
    path.write_bytes(content)
    with pytest.raises(UserError) as e:
        coco.read("coco", CocoSource(kind="coco", annotations=path, images=tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and problem in msg


def test_missing_annotation_file_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="not found"):
        coco.read("coco", CocoSource(kind="coco", annotations=tmp_path / "nope.json", images=tmp_path))


def test_input_files_is_the_annotation_file(coco_root: Path):
    s = spec(coco_root)
    assert coco.input_files(s) == [s.annotations]


# FAULTS.json kind -> this reader's quarantine reason (where the names differ)


def test_reads_the_generated_demo_corpus(tmp_path: Path):
    from curate.demo.corpus import generate_corpus

    root = generate_corpus(tmp_path, size="tiny", faults=True)["coco"]
    faults = [f for f in json.loads((tmp_path / "FAULTS.json").read_text()) if f["source"] == "coco"]
    path = root / "annotations" / "instances_train2017.json"
    t = coco.read("coco", CocoSource(kind="coco", annotations=path, images=root / "train2017"))
    check_demo_source(t, faults, path)
