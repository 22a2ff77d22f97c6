"""CelebA reader on generated files in the native layout (count lines, padded columns, header quirks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from curate.errors import UserError
from curate.sources import celeba
from curate.sources.celeba import CelebASource

ATTRS = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Male",
    "Young",
]  # the real file has 40; the reader takes the header's width
# name, identity, partition, wild size, bbox (x, y, w, h)
PEOPLE = [
    ("000001.jpg", 2880, 0, (300, 400), (95, 71, 126, 213)),
    ("000002.jpg", 2937, 0, (300, 400), (72, 94, 121, 167)),
    ("000003.jpg", 2880, 1, (320, 360), (10, 20, 100, 120)),
    ("000004.jpg", 4153, 2, (320, 360), (40, 30, 110, 140)),
    ("000005.jpg", 4153, 0, (200, 200), (150, 150, 100, 100)),  # box leaves the wild image
]


def _jpeg(path: Path, size, color=(180, 120, 90)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, quality=80)


def make_celeba(root: Path, people=PEOPLE, *, identity_header=False, count_delta=0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    ident = (["image identity"] if identity_header else []) + [f"{n} {i}" for n, i, *_ in people]
    (root / "identity_CelebA.txt").write_text("\n".join(ident) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, _, p, *_ in people))
    rows = "".join(f"{n:<10}{x:>6}{y:>4}{w:>4}{h:>4}\n" for n, _, _, _, (x, y, w, h) in people)
    (root / "list_bbox_celeba.txt").write_text(f"{len(people) + count_delta}\nimage_id x_1 y_1 width height\n{rows}")
    attr_rows = "".join(
        f"{n}  " + " ".join(f"{(1 if (k + j) % 2 else -1):>2}" for j in range(len(ATTRS))) + "\n"
        for k, (n, *_) in enumerate(people)
    )
    (root / "list_attr_celeba.txt").write_text(f"{len(people)}\n{' '.join(ATTRS)} \n{attr_rows}")
    for n, _, _, wild, _ in people:
        _jpeg(root / "img_align_celeba" / n, (178, 218))
        _jpeg(root / "img_celeba" / n, wild)
    return root


def spec(root, **kw) -> CelebASource:
    return CelebASource(kind="celeba", root=root, **kw)


def reasons(st) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rec, reason in st.quarantine.select("record_id", "reason").iter_rows():
        out.setdefault(reason, []).append(rec)
    return out


def test_aligned_images_are_face_crops_with_identities_and_attributes(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    st = celeba.read("celeba", spec(root, splits=["train", "test"]))
    imgs = st.images.sort("image_id")
    assert imgs["image_id"].to_list() == ["000001", "000002", "000004", "000005"]
    assert imgs["split"].to_list() == ["train", "train", "test", "train"]
    assert set(zip(imgs["width"], imgs["height"])) == {(178, 218)}
    assert imgs["path"][0] == str(root / "img_align_celeba" / "000001.jpg")
    assert st.objects.height == 0  # bbox-file boxes belong to the wild frame
    ids = dict(st.get("identities").select("image_id", "identity").iter_rows())
    assert ids == {"000001": "2880", "000002": "2937", "000004": "4153", "000005": "4153"}
    attrs = dict(st.tables["attributes"].select("image_id", "attributes").iter_rows())
    assert attrs["000001"] == ["Arched_Eyebrows", "Young"] and attrs["000002"] == ["5_o_Clock_Shadow", "Male"]
    assert st.quarantine.height == 0


def test_wild_images_get_face_objects_and_bad_boxes_are_quarantined(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    st = celeba.read("celeba", spec(root, images="wild", splits=["train"]))
    assert st.images.sort("image_id").select("image_id", "width", "height").rows() == [
        ("000001", 300, 400),
        ("000002", 300, 400),
    ]
    obj = st.objects.sort("image_id").row(0, named=True)
    assert obj["category"] == "face" and obj["identity"] == "2880" and obj["image_id"] == "000001"
    assert list(obj["bbox"]) == [95.0, 71.0, 221.0, 284.0] and obj["area"] == 126 * 213
    assert reasons(st) == {"bbox_out_of_bounds": ["000005.jpg"]}
    assert "000005" not in st.get("identities")["image_id"].to_list()


def test_optional_identity_header_and_png_release_are_tolerated(tmp_path):
    root = make_celeba(tmp_path / "celeba", identity_header=True)
    for p in (root / "img_align_celeba").glob("*.jpg"):
        Image.open(p).save(p.with_suffix(".png"))
        p.unlink()
    st = celeba.read("celeba", spec(root, splits=["val"]))
    assert st.images.select("image_id", "path").rows() == [("000003", str(root / "img_align_celeba" / "000003.png"))]
    assert st.quarantine.height == 0


def test_count_line_mismatch_is_reported_not_fatal(tmp_path):
    root = make_celeba(tmp_path / "celeba", count_delta=3)
    st = celeba.read("celeba", spec(root, images="wild"))
    q = st.quarantine.filter(reason="count_mismatch").row(0, named=True)
    assert q["record_id"] == "list_bbox_celeba.txt" and "declares 8 rows but the file has 5" in q["detail"]
    assert st.images.height == 2


def test_bad_records_become_quarantine_rows(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    with open(root / "identity_CelebA.txt", "a") as f:
        f.write(
            "000006.jpg x17\n000007.jpg\n000001.jpg 99\n000008.jpg 12\n../../etc/000009.jpg 13\n000010.jpg 14\n000011.jpg 15\n"
        )
    with open(root / "list_eval_partition.txt", "a") as f:
        f.write("000099.jpg 0\n000007.jpg 0\n000010.jpg 7\n000011.jpg 0\n../../etc/000009.jpg 0\n")
    # 000008: no partition; 000011: corrupt image; 000012 never listed
    (root / "img_align_celeba" / "000011.jpg").write_bytes(b"<html>404</html>")
    st = celeba.read("celeba", spec(root, splits=["train", "val", "test"]))
    r = reasons(st)
    assert r["identity_invalid"] == ["000006.jpg"]
    assert r["malformed_line"] == ["000007.jpg"]
    assert r["image_id_duplicate"] == ["000001.jpg"]
    assert r["image_unknown"] == ["000099.jpg"]  # 000007.jpg was already quarantined as malformed
    assert r["partition_invalid"] == ["000010.jpg"]
    details = dict(st.quarantine.select("reason", "detail").iter_rows())
    assert details["image_id_duplicate"] == "identity_CelebA.txt:8: listed again"
    assert details["malformed_line"] == "identity_CelebA.txt:7: expected 2 fields, found 1"
    assert r["no_partition"] == ["000008.jpg"]
    assert r["path_traversal"] == ["../../etc/000009.jpg"]
    assert r["image_unreadable"] == ["000011.jpg"]
    assert st.images.height == 5 and st.get("identities").height == 5
    assert dict(st.get("identities").select("image_id", "identity").iter_rows())["000001"] == "2880"  # first wins


def test_missing_images_and_limit(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    (root / "img_align_celeba" / "000002.jpg").unlink()
    cut = root / "img_align_celeba" / "000004.jpg"
    cut.write_bytes(cut.read_bytes()[:-40])  # header intact, end-of-image marker gone
    st = celeba.read("celeba", spec(root, splits=["test"]))
    assert reasons(st) == {"image_truncated": ["000004.jpg"]}
    st = celeba.read("celeba", spec(root, splits=["train", "val", "test"], limit=2))
    assert st.images["image_id"].to_list() == ["000001", "000003"]
    assert reasons(st) == {"image_missing": ["000002.jpg"]}
    st = celeba.read("celeba", spec(root, splits=["train"], verify_images="none"))
    assert st.images["image_id"].to_list() == ["000001", "000002", "000005"]  # not checked on disk
    assert (st.images["width"] == 178).all()


def test_input_files(tmp_path):
    root = tmp_path / "celeba"
    names = [p.name for p in celeba.input_files(spec(root, images="wild"))]
    assert {"identity_CelebA.txt", "list_eval_partition.txt", "list_bbox_celeba.txt", "list_attr_celeba.txt"} == set(
        names
    )


def test_unreadable_files_are_one_line_errors(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(UserError, match=r"list_eval_partition.txt: file not found"):
        celeba.read("celeba", spec(root))
    make_celeba(root)
    (root / "identity_CelebA.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(UserError, match=r"identity_CelebA.txt: not a text file"):
        celeba.read("celeba", spec(root))
    make_celeba(root)
    (root / "list_bbox_celeba.txt").write_text("2\nimage_id x_1 y_1 width\n000001.jpg 1 2 3\n")
    with pytest.raises(UserError, match=r"list_bbox_celeba.txt:2: column header has 3 names, expected 4"):
        celeba.read("celeba", spec(root, images="wild"))
    (root / "list_eval_partition.txt").write_text("000001.jpg\n000002.jpg\n")
    with pytest.raises(UserError, match=r"list_eval_partition.txt: no line has the expected format"):
        celeba.read("celeba", spec(root))
    with pytest.raises(UserError, match="unknown split"):
        celeba.read("celeba", spec(root, splits=["validation"]))


def test_bad_box_and_attribute_values(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    text = (
        (root / "list_bbox_celeba.txt")
        .read_text()
        .replace("000002.jpg    72  94 121 167", "000002.jpg    72  94 1e2 167")
    )
    (root / "list_bbox_celeba.txt").write_text(text)
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    lines[2] = lines[2].replace("-1", " 0", 1)  # 000001.jpg
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    st = celeba.read("celeba", spec(root, images="wild"))
    assert reasons(st) == {
        "bbox_malformed": ["000002.jpg"],
        "attribute_invalid": ["000001.jpg"],
        "bbox_out_of_bounds": ["000005.jpg"],
    }
    assert st.images.height == 0 and st.objects.height == 0


def test_generated_demo_corpus(tmp_path):
    import json

    from curate.demo.corpus import generate_corpus

    generate_corpus(tmp_path, size="tiny", faults=True)
    faults = [
        f for f in json.loads((tmp_path / "FAULTS.json").read_text()) if f["source"] == "celeba"
    ]  # decode stage too
    assert faults
    all_splits = ["train", "val", "test"]
    wild = celeba.read("celeba", spec(tmp_path / "celeba", images="wild", splits=all_splits))
    assert {f["record_id"] for f in faults} <= set(wild.quarantine["record_id"])
    assert wild.images.height == wild.objects.height == wild.get("identities").height > 0
    assert wild.get("identities")["identity"].value_counts()["count"].max() >= 2  # identities recur across photos
    aligned = celeba.read("celeba", spec(tmp_path / "celeba", splits=all_splits))
    expected = {
        f["record_id"] for f in faults if f["file"] != "list_bbox_celeba.txt"
    }  # the bbox file is for wild images
    assert expected <= set(aligned.quarantine["record_id"])
    assert set(zip(aligned.images["width"], aligned.images["height"])) == {(178, 218)}


QUOTA_PAGE = """<!DOCTYPE html>
<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"/>
<title>Google Drive - Quota exceeded</title></head>
<body><p>Sorry, you can't view or download this file at this time.</p>
<p>Too many users have viewed or downloaded this file recently.</p></body></html>
"""


@pytest.mark.parametrize("name", ["identity_CelebA.txt", "list_bbox_celeba.txt", "list_attr_celeba.txt"])
def test_a_saved_html_page_is_named_as_such(tmp_path, name):
    """Issue 9 item 11: a list file that is a saved "quota exceeded" page must be re-downloaded."""
    root = make_celeba(tmp_path / "celeba")
    (root / name).write_text("\n" + QUOTA_PAGE)
    with pytest.raises(UserError) as err:
        celeba.read("celeba", spec(root, images="wild"))
    msg = str(err.value)
    assert msg.startswith(f"{root / name}: ") and "\n" not in msg
    assert "looks like an HTML page" in msg and "download it again" in msg
