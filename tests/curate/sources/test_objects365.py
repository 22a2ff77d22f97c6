"""Objects365 streaming reader on generated native-format fixtures (v2 names, typos, flags, bad records)."""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path

import pytest

from curate.errors import UserError
from curate.sources import objects365
from curate.sources.objects365 import Objects365Source
from tests.support.corpus import write_jpeg, write_truncated_jpeg

CATEGORIES = [
    {"name": "Cigar/Cigarette ", "id": 3},
    {"name": "Moniter/TV", "id": 1},
    {"name": "Bakset", "id": 2},
    {"name": "again", "id": 2},
    {"name": 7, "id": 9},
]


def o365_ann(aid, image_id, cat, bbox, isfake=0, isreflected=0) -> dict:
    x, y, w, h = (
        bbox
        if isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)
        else (0, 0, 1, 1)
    )
    return {
        "id": aid,
        "iscrowd": 0,
        "isfake": isfake,
        "area": float(w * h) + 0.25,
        "isreflected": isreflected,
        "bbox": bbox,
        "image_id": image_id,
        "category_id": cat,
    }


def o365_img(iid, w, h, name) -> dict:
    return {"height": h, "id": iid, "license": 5, "width": w, "file_name": name, "url": ""}


V1 = "images/v1/patch8/objects365_v1_00420917.jpg"
V2_MISSING = "images/v2/patch16/objects365_v2_00908726.jpg"
IMAGES = [
    o365_img(420917, 64, 48, V1),
    o365_img(1000001, 80, 60, "images/v2/patch17/objects365_v2_01000001.jpg"),
    o365_img(908726, 64, 48, V2_MISSING),
    o365_img(215749, 64, 48, "images/v1/patch4/objects365_v1_00215749.jpg"),
    o365_img(215750, 64, 48, "images/v1/patch4/objects365_v1_00215750.jpg"),
    o365_img(5, 64, 48, "images/v2/../evil.jpg"),
    o365_img(6, 64, 48, "/images/v1/patch0/abs.jpg"),
    o365_img(420917, 64, 48, "images/v1/patch8/objects365_v1_00000009.jpg"),
    {**o365_img(7, 64, 48, "images/v1/patch8/x.jpg"), "height": None},
    o365_img(8.5, 64, 48, "images/v1/patch8/y.jpg"),
    [],
]
ANNOTATIONS = [
    o365_ann(51, 420917, 3, [4.5, 5.25, 20.0, 10.0], isfake=1),
    o365_ann(52, 420917, 1, [0, 0, 64, 48], isreflected=1),
    o365_ann(53, 1000001, 2, [10.0, 1.0, 20.0, 10.0]),
    o365_ann(54, 908726, 1, [1, 1, 2, 2]),
    o365_ann(55, 908726, 2, [1, 1, 2, 2]),
    o365_ann(56, 215749, 1, [1, 1, 2, 2]),
    o365_ann(57, 215750, 1, [1, 1, 2, 2]),
    o365_ann(58, 5, 1, [1, 1, 2, 2]),
    o365_ann(59, 420917, 1, [60, 1, 10, 10]),
    o365_ann(60, 420917, 1, [1, 1, 0, 10]),
    o365_ann(61, 420917, 1, [math.nan, 1, 2, 2]),
    o365_ann(62, 420917, 1, [1, 1, 2, -2]),
    o365_ann(63, 420917, 1, [1, 1, 2]),
    o365_ann(64, 420917, 1, [1, None, 2, 2]),
    o365_ann(65, 420917, 365, [1, 1, 2, 2]),
    o365_ann(66, 4242, 1, [1, 1, 2, 2]),
    o365_ann(51, 1000001, 1, [1, 1, 2, 2]),
    o365_ann(67, 420917, 1, [1, 1, 2, 2], isfake="no"),
    {**o365_ann(68, 420917, 1, [1, 1, 2, 2]), "category_id": [1]},
    None,
    o365_ann(69, 420917, 9, [1, 1, 2, 2]),
]
EXPECTED_QUARANTINE = {
    ("2", "category_id_duplicate"),
    ("categories[4]", "wrong_type"),
    ("908726", "image_missing"),
    ("54", "image_missing"),
    ("55", "image_missing"),
    ("215749", "image_truncated"),
    ("56", "image_truncated"),
    ("215750", "image_unreadable"),
    ("57", "image_unreadable"),
    ("5", "path_traversal"),
    ("58", "path_traversal"),
    ("6", "path_traversal"),
    ("420917", "image_id_duplicate"),
    ("7", "wrong_type"),
    ("images[9]", "wrong_type"),
    ("images[10]", "wrong_type"),
    ("59", "bbox_out_of_bounds"),
    ("60", "bbox_zero_area"),
    ("61", "bbox_nan"),
    ("62", "bbox_negative"),
    ("63", "bbox_malformed"),
    ("64", "bbox_malformed"),
    ("65", "category_unknown"),
    ("66", "image_unknown"),
    ("51", "annotation_id_duplicate"),
    ("67", "wrong_type"),
    ("68", "wrong_type"),
    ("annotations[19]", "wrong_type"),
    ("69", "category_unknown"),
}


def write_o365(
    root: Path, *, order=("annotations", "images", "categories"), indent=None, extra_ann: dict | None = None
) -> Path:
    train = root / "train"
    write_jpeg(train / "patch8" / "objects365_v1_00420917.jpg", (64, 48))
    write_jpeg(train / "patch17" / "objects365_v2_01000001.jpg", (80, 60), 1)
    write_truncated_jpeg(train / "patch4" / "objects365_v1_00215749.jpg", (64, 48))
    (train / "patch4" / "objects365_v1_00215750.jpg").write_bytes(b"<html>gone</html>")
    write_jpeg(train / "images" / "evil.jpg", (64, 48))
    sections = {
        "annotations": ANNOTATIONS + ([extra_ann] if extra_ann else []),
        "images": IMAGES,
        "categories": CATEGORIES,
    }
    data = {
        "info": {"note": "a string with }, { and ] inside"},
        **{k: sections[k] for k in order},
        "licenses": [{"name": "", "id": 5, "url": ""}],
    }
    path = root / "annotations" / "zhiyuan_objv2_train.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent))
    return path


def spec(root: Path, **kw) -> Objects365Source:
    return Objects365Source(
        kind="objects365", annotations=root / "annotations" / "zhiyuan_objv2_train.json", images=root / "train", **kw
    )


@pytest.fixture
def o365_root(tmp_path: Path) -> Path:
    write_o365(tmp_path)
    return tmp_path


def test_reads_v2_layout_with_typos_and_flags(o365_root: Path):
    t = objects365.read("o365", spec(o365_root))
    assert t.kind == "objects365"
    assert t.images.select("image_id", "path", "width", "height", "split").rows() == [
        ("420917", str(o365_root / "train" / "patch8" / "objects365_v1_00420917.jpg"), 64, 48, "train"),
        ("1000001", str(o365_root / "train" / "patch17" / "objects365_v2_01000001.jpg"), 80, 60, "train"),
    ]
    objs = {r["object_id"]: r for r in t.objects.to_dicts()}
    assert set(objs) == {"51", "52", "53"}
    assert objs["51"] == {
        "source": "o365",
        "image_id": "420917",
        "object_id": "51",
        "category": "Cigar/Cigarette ",
        "bbox": [4.5, 5.25, 24.5, 15.25],
        "area": 200.25,
        "iscrowd": False,
        "isfake": True,
        "isreflected": False,
        "identity": None,
    }
    assert (objs["52"]["category"], objs["52"]["isreflected"], objs["52"]["isfake"]) == ("Moniter/TV", True, False)
    assert objs["53"]["category"] == "Bakset"


def test_every_bad_record_is_quarantined(o365_root: Path):
    q = objects365.read("o365", spec(o365_root)).quarantine
    assert set(q.select("record_id", "reason").iter_rows()) == EXPECTED_QUARANTINE
    assert q.height == len(EXPECTED_QUARANTINE)


def _frames(t):
    return [t.images, t.objects, t.quarantine]


@pytest.mark.parametrize("chunk", [1, 7, 64, 333])
def test_chunking_section_order_and_formatting_do_not_change_the_result(tmp_path: Path, monkeypatch, chunk: int):
    base = _frames(objects365.read("o365", spec(write_o365(tmp_path / "a").parent.parent)))
    # images first, pretty-printed, a nested object in an annotation (the bulk cut can land inside it)
    nested = {**o365_ann(70, 1000001, 1, [1, 1, 2, 2]), "segmentation": {"size": [60, 80], "counts": "a}b, {c"}}
    other = write_o365(tmp_path / "b", order=("categories", "images", "annotations"), indent=2, extra_ann=nested)
    monkeypatch.setattr(objects365, "CHUNK", chunk)
    got = _frames(objects365.read("o365", spec(other.parent.parent)))
    assert got[0]["image_id"].to_list() == base[0]["image_id"].to_list()
    assert got[1].filter(got[1]["object_id"] != "70").drop("source").equals(base[1].drop("source"))
    assert "70" in got[1]["object_id"].to_list()
    assert set(got[2]["record_id"]) == set(base[2]["record_id"])


def test_reads_by_streaming_with_a_bounded_buffer(o365_root: Path, monkeypatch):
    monkeypatch.setattr(objects365, "CHUNK", 256)
    largest = 0
    fill = objects365._Stream.fill

    def spy(self):
        nonlocal largest
        out = fill(self)
        largest = max(largest, len(self.buf))
        return out

    monkeypatch.setattr(objects365._Stream, "fill", spy)
    t = objects365.read("o365", spec(o365_root))
    size = (o365_root / "annotations" / "zhiyuan_objv2_train.json").stat().st_size
    assert t.objects.height == 3 and size > 4000
    assert largest <= 3 * 256  # never more than a few chunks held, whatever the file size


def test_flat_layout_and_plain_v1_names(tmp_path: Path):
    flat = tmp_path / "images"
    write_jpeg(flat / "objects365_v1_00420917.jpg", (64, 48))
    write_jpeg(flat / "obj365_train_000000000002.jpg", (32, 32))
    data = {
        "images": [o365_img(420917, 64, 48, V1), o365_img(2, 32, 32, "obj365_train_000000000002.jpg")],
        "annotations": [o365_ann(1, 420917, 1, [1, 1, 2, 2]), o365_ann(2, 2, 1, [1, 1, 2, 2])],
        "categories": [{"id": 1, "name": "tissue "}],
    }
    path = tmp_path / "objects365_train.json"
    path.write_text(json.dumps(data))
    t = objects365.read("o365", Objects365Source(kind="objects365", annotations=path, images=flat, split="val"))
    assert t.images["path"].to_list() == [
        str(flat / "objects365_v1_00420917.jpg"),
        str(flat / "obj365_train_000000000002.jpg"),
    ]
    assert t.images["split"].to_list() == ["val", "val"] and t.quarantine.height == 0
    assert t.objects["category"].to_list() == ["tissue ", "tissue "]


def test_limit_reads_the_first_images_only(o365_root: Path):
    t = objects365.read("o365", spec(o365_root, limit=1, verify_images="none"))
    assert t.images["image_id"].to_list() == ["420917"]
    assert set(t.objects["image_id"]) == {"420917"} and "53" not in set(t.quarantine["record_id"])


def test_progress_bar_is_driven_by_bytes(o365_root: Path, monkeypatch):
    seen = {"total": None, "done": 0}

    @contextmanager
    def bar(description, total=None):
        seen["total"] = total

        def advance(k=1):
            seen["done"] += k

        yield advance

    monkeypatch.setattr(objects365.progress, "bar", bar)
    monkeypatch.setattr(objects365, "CHUNK", 512)
    objects365.read("o365", spec(o365_root, verify_images="none"))
    size = (o365_root / "annotations" / "zhiyuan_objv2_train.json").stat().st_size
    assert seen == {"total": size, "done": size}


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "the top level is empty"),
        (b"   [1, 2]", "the top level is a JSON array"),
        (b"nonsense", "not a JSON object"),
        (b'{"annotations": [{"id": 1}, {"id": 2', "ends before"),
        (b'{"annotations": [{"id": 1},, {"id": 2}], "images": [], "categories": []}', "not valid JSON"),
        (b'{"annotations": [], "images": []}', "missing the 'categories'"),
        (b'{"annotations": {}, "images": [], "categories": []}', "'annotations' must be a JSON list"),
        (b'{"annotations": [], "images": [], "categories": []} extra', "extra data"),
        (b'{"annotations": [], "images": [], "categories": [] "x": 1}', "expected ',' or '}'"),
        (b'{"annotations": ["\xff\xfe"], "images": [], "categories": []}', "UTF-8"),
        (b'{"images": [' + b"[" * 100_000 + b"]" * 100_000 + b'], "annotations": [], "categories": []}', "too deeply"),
    ],
)
def test_unreadable_file_is_a_one_line_user_error(tmp_path: Path, monkeypatch, content: bytes, problem: str):
    monkeypatch.setattr(objects365, "CHUNK", 16)
    path = tmp_path / "zhiyuan_objv2_bad.json"
    path.write_bytes(content)
    with pytest.raises(UserError) as e:
        objects365.read("o365", Objects365Source(kind="objects365", annotations=path, images=tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and problem in msg


def test_missing_annotation_file_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="not found"):
        objects365.read("o365", Objects365Source(kind="objects365", annotations=tmp_path / "no.json", images=tmp_path))


def test_reads_the_generated_demo_corpus(tmp_path: Path):
    from curate.demo.corpus import generate_corpus
    from tests.support.corpus import check_demo_source

    root = generate_corpus(tmp_path, size="tiny", faults=True)["objects365"]
    faults = [f for f in json.loads((tmp_path / "FAULTS.json").read_text()) if f["source"] == "objects365"]
    path = root / "annotations" / "zhiyuan_objv2_train.json"
    t = objects365.read("objects365", Objects365Source(kind="objects365", annotations=path, images=root / "train"))
    check_demo_source(t, faults, path)
    assert t.objects["isfake"].any() and t.images["path"].str.contains("/train/patch1[67]/objects365_v2_").any()
