"""The demo corpus generator: native formats, determinism, drawn boxes, recurrence, fault manifest."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.demo import FAULT_KINDS, SOURCES, generate_corpus, load_faults
from curate.demo.casting import InstanceFactory, cast_pairs, look
from curate.demo.coco_like import cast_set
from curate.demo.common import rng_for
from curate.demo.corpus import SIZES
from curate.demo.objects import SHAPES
from curate.demo.subjects import FEATURES
from curate.errors import UserError


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    generate_corpus(root, seed=0, size="tiny")
    return root


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faulty")
    generate_corpus(root, seed=0, size="tiny", faults=True)
    return root


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files_and_another_seed_differs(faulty, tmp_path):
    out = generate_corpus(tmp_path / "again", seed=0, size="tiny", faults=True)
    assert set(out) == set(SOURCES) and all(p.is_dir() for p in out.values())
    assert _digest(tmp_path / "again") == _digest(faulty)
    generate_corpus(tmp_path / "again", seed=0, size="tiny")  # regenerating in place replaces the corpus
    assert load_faults(tmp_path / "again") == [] and not (tmp_path / "again/coco/evil.jpg").exists()
    generate_corpus(tmp_path / "other", seed=1, size="tiny")
    a, b = _digest(tmp_path / "other"), _digest(faulty)
    assert a["coco/annotations/instances_train2017.json"] != b["coco/annotations/instances_train2017.json"]


def test_unknown_size_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown demo corpus size"):
        generate_corpus(tmp_path, size="huge")


def test_root_that_is_a_file_is_a_user_error(tmp_path):
    (tmp_path / "corpus").write_text("not a folder")
    with pytest.raises(UserError, match="not a folder"):
        generate_corpus(tmp_path / "corpus", size="tiny")


def test_refuses_to_replace_source_folders_it_did_not_generate(tmp_path):
    (tmp_path / "coco" / "train2017").mkdir(parents=True)  # e.g. a real COCO download
    with pytest.raises(UserError, match="not a generated demo corpus"):
        generate_corpus(tmp_path, size="tiny")
    assert (tmp_path / "coco" / "train2017").is_dir()


def _mask_contrast(img: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Mean colour distance between the object's pixels and a ring of background around its box."""
    x1, y1, x2, y2 = box
    h, w = mask.shape
    ring = np.zeros_like(mask)
    ring[max(0, y1 - 4) : min(h, y2 + 4), max(0, x1 - 4) : min(w, x2 + 4)] = True
    ring[y1:y2, x1:x2] = False
    if not ring.any():
        return 255.0
    return float(np.abs(img[mask].mean(axis=0) - img[ring].mean(axis=0)).sum())


@pytest.mark.parametrize(
    "rel",
    [
        "coco/annotations/instances_train2017.json",
        "objects365/annotations/zhiyuan_objv2_train.json",
        "refcoco/refcoco/instances.json",
        "refcoco/refcocog/instances.json",
    ],
)
def test_coco_style_json_loads_in_pycocotools_with_boxes_on_the_drawn_objects(clean, rel):
    from pycocotools.coco import COCO

    coco = COCO(str(clean / rel))
    assert coco.getAnnIds() and coco.getImgIds()
    img_dir = {"coco": clean / "coco/train2017", "objects365": clean / "objects365/train"}.get(
        rel.split("/")[0], clean / "refcoco/images/train2014"
    )
    contrasts = []
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        path = (
            img_dir / "/".join(info["file_name"].split("/")[-2:])
            if "patch" in info["file_name"]
            else img_dir / info["file_name"]
        )
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        assert pixels.shape[:2] == (info["height"], info["width"])
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img_id)):
            x, y, w, h = ann["bbox"]
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= info["width"] and y + h <= info["height"]
            if "segmentation" in ann:  # the box is tight around the (polygon or RLE) mask
                mask = coco.annToMask(ann).astype(bool)
                ys, xs = np.nonzero(mask)
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
            else:  # Objects365 has boxes only
                mask = np.zeros((info["height"], info["width"]), bool)
                mask[int(y) : int(y + h), int(x) : int(x + w)] = True
            contrasts.append(_mask_contrast(pixels, mask, (int(x), int(y), int(x + w), int(y + h))))
    # the boxed pixels are the drawn object, not background (a few objects may match their background's colour)
    assert np.mean(np.array(contrasts) > 30) >= 0.8


def test_coco_quirks(clean):
    data = json.loads((clean / "coco/annotations/instances_train2017.json").read_text())
    assert set(data) == {"info", "licenses", "images", "annotations", "categories"}
    cat_ids = {c["id"] for c in data["categories"]}
    assert len(cat_ids) == 80 and 12 not in cat_ids and max(cat_ids) == 90
    crowd = [a for a in data["annotations"] if a["iscrowd"]]
    assert crowd and all(isinstance(a["segmentation"], dict) and a["id"] >= 9e11 for a in crowd)
    assert all(isinstance(a["segmentation"], list) for a in data["annotations"] if not a["iscrowd"])
    assert all(i["file_name"] == f"{i['id']:012d}.jpg" for i in data["images"])


def test_objects365_quirks(clean):
    data = json.loads((clean / "objects365/annotations/zhiyuan_objv2_train.json").read_text())
    names = {c["name"] for c in data["categories"]}
    assert {"Cigar/Cigarette ", "Moniter/TV", "Ballon"} <= names
    assert [c["id"] for c in data["categories"]] != sorted(c["id"] for c in data["categories"])
    used = {c["name"] for c in data["categories"] if c["id"] in {a["category_id"] for a in data["annotations"]}}
    assert used & {"Cigar/Cigarette ", "Moniter/TV", "Ballon"}
    assert all({"isfake", "isreflected", "iscrowd"} <= set(a) for a in data["annotations"])
    fns = [i["file_name"] for i in data["images"]]
    assert any(f.startswith("images/v1/patch") for f in fns) and any(f.startswith("images/v2/patch") for f in fns)
    for f in fns:
        assert (clean / "objects365/train" / Path(*f.split("/")[-2:])).is_file()
    assert all(set(i) == {"height", "id", "license", "width", "file_name", "url"} for i in data["images"])


def test_celeba_files(clean):
    base = clean / "celeba"
    ident = [line.split() for line in (base / "identity_CelebA.txt").read_text().splitlines()]
    assert all(len(r) == 2 and r[1].isdigit() for r in ident)
    per_identity = Counter(r[1] for r in ident)
    assert min(per_identity.values()) >= 3  # identities recur
    bbox_lines = (base / "list_bbox_celeba.txt").read_text().splitlines()
    assert bbox_lines[0] == str(len(ident)) and bbox_lines[1].split() == ["image_id", "x_1", "y_1", "width", "height"]
    assert all("  " in row for row in bbox_lines[2:])  # multi-space padding
    attr_lines = (base / "list_attr_celeba.txt").read_text().splitlines()
    assert len(attr_lines[1].split()) == 40 and all(len(r.split()) == 41 for r in attr_lines[2:])
    lm_lines = (base / "list_landmarks_align_celeba.txt").read_text().splitlines()
    for row in lm_lines[2:]:
        lx, ly, rx, ry, nx, ny, mlx, mly, mrx, mry = (int(v) for v in row.split()[1:])
        # aligned like CelebA: eyes level around (89, 111), nose below them, mouth below the nose
        assert abs((lx + rx) / 2 - 89) <= 2 and abs((ly + ry) / 2 - 111) <= 2 and lx < rx
        assert max(ly, ry) < ny < min(mly, mry) and mlx < mrx
    contrasts = []
    for row in bbox_lines[2:]:
        name, x, y, w, h = row.split()
        x, y, w, h = int(x), int(y), int(w), int(h)
        assert Image.open(base / "img_align_celeba" / name).size == (178, 218)
        wild = np.asarray(Image.open(base / "img_celeba" / name).convert("RGB"), dtype=np.float32)
        assert 0 <= x and 0 <= y and x + w <= wild.shape[1] and y + h <= wild.shape[0]
        inner = np.zeros(wild.shape[:2], bool)
        inner[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4] = True
        contrasts.append(_mask_contrast(wild, inner, (x, y, x + w, y + h)))
    assert np.mean(np.array(contrasts) > 20) >= 0.8  # the face is in the box (some faces match their background)


def test_subjects200k_parquet_has_hf_features_and_pair_panels(clean):
    import datasets

    files = sorted((clean / "subjects200k/data").glob("*.parquet"))
    assert [f.name for f in files] == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    table = pq.read_table(files[0])
    assert table.schema.remove_metadata() == FEATURES.arrow_schema.remove_metadata()
    ds = datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train")
    assert ds.features == FEATURES and len(ds) == 12
    row = ds[0]
    img = np.asarray(row["image"].convert("RGB"), dtype=np.float32)
    assert img.shape == (528, 1056, 3)
    assert img[:, 520:528].mean() > 240 and img[:4].mean() > 240  # white gutter and border
    left, right = img[8:520, 8:520], img[8:520, 528:1040]
    assert left.std() > 10 and right.std() > 10 and np.abs(left - right).mean() > 5  # two different scenes
    assert row["description"]["item"] and row["quality_assessment"]["imageQuality"] == 5


def test_refcoco_pickles(clean):
    base = clean / "refcoco"
    expected = {"refcoco": {"unc", "google"}, "refcoco+": {"unc"}, "refcocog": {"umd", "google"}}
    splits = {"unc": {"train", "val", "testA", "testB"}, "umd": {"train", "val", "test"}, "google": {"train", "val"}}
    for dataset, split_bys in expected.items():
        inst = json.loads((base / dataset / "instances.json").read_text())
        anns = {a["id"]: a for a in inst["annotations"]}
        for split_by in split_bys:
            raw = (base / dataset / f"refs({split_by}).p").read_bytes()
            assert raw[:2] == b"\x80\x02"  # protocol 2
            refs = pickle.loads(raw)
            assert refs and isinstance(refs, list)
            for ref in refs:
                assert set(ref) == {
                    "ref_id",
                    "ann_id",
                    "category_id",
                    "file_name",
                    "image_id",
                    "split",
                    "sent_ids",
                    "sentences",
                }
                assert ref["split"] in splits[split_by] and anns[ref["ann_id"]]["image_id"] == ref["image_id"]
                assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]]
                for s in ref["sentences"]:
                    assert s["tokens"] == s["sent"].split() and s["raw"].lower() == s["sent"]
                    if dataset == "refcoco+":
                        assert not {"left", "right", "middle"} & set(s["tokens"])
        assert all((base / "images/train2014" / i["file_name"]).is_file() for i in inst["images"])


def _annotated_images(root: Path, source: str) -> dict[str, str]:
    """Annotation id -> image id, read from the source's own JSON."""
    rel = {
        "coco": "coco/annotations/instances_train2017.json",
        "objects365": "objects365/annotations/zhiyuan_objv2_train.json",
    }
    data = json.loads((root / rel[source]).read_text())
    return {str(a["id"]): str(a["image_id"]) for a in data["annotations"]}


@pytest.mark.parametrize("source", ["coco", "objects365"])
def test_detection_instances_appear_in_one_image_with_lookalikes_in_others(clean, source):
    truth = json.loads((clean / "TRUTH.json").read_text())[source]
    image_of = _annotated_images(clean, source)
    assert set(truth["annotations"]) == set(image_of)
    images_of: dict[str, set[str]] = {}
    for ann, iid in truth["annotations"].items():
        images_of.setdefault(iid, set()).add(image_of[ann])
    assert all(len(imgs) == 1 for imgs in images_of.values()), {i: v for i, v in images_of.items() if len(v) > 1}
    assert {img: set(v) for img, v in truth["images"].items()} == {
        img: {truth["annotations"][a] for a, i in image_of.items() if i == img} for img in set(image_of.values())
    }
    assert all(2 <= len(v) <= 6 for v in truth["images"].values())  # 2-5 objects (+ a crowd region) per image
    insts = truth["instances"]
    assert set(insts) == set(images_of)
    looks = [(v["shape"], v["description"]) for v in insts.values()]
    assert len(set(looks)) == len(looks)  # no two instances look the same
    # look-alikes: same shape and family, another look, shown in another image
    lookalikes = [(i, v["lookalike_of"]) for i, v in insts.items() if v["lookalike_of"] in insts]
    assert len(lookalikes) >= len(insts) // 4
    for i, base in lookalikes:
        assert insts[i]["shape"] == insts[base]["shape"] and insts[i]["family"] == insts[base]["family"]
        assert insts[i]["description"] != insts[base]["description"] and images_of[i] != images_of[base]


def test_subjects200k_pairs_show_distinct_subjects_with_lookalikes(clean):
    truth = json.loads((clean / "TRUTH.json").read_text())["subjects200k"]
    pairs = truth["pairs"]
    rows = {
        f"{f.stem}:{r}"
        for f in (clean / "subjects200k/data").glob("*.parquet")
        for r in range(pq.read_metadata(f).num_rows)
    }
    assert set(pairs) == rows  # one subject per pair row, keyed like FAULTS.json
    assert len(set(pairs.values())) == len(pairs)  # no subject in two pairs
    insts = truth["instances"]
    assert set(insts) == set(pairs.values())
    lookalikes = [v for v in insts.values() if v["lookalike_of"]]
    assert lookalikes  # tiny: 12 pairs over 10 shapes, so only the two shapes that come round again
    for v in lookalikes:
        assert (
            v["shape"] == insts[v["lookalike_of"]]["shape"]
            and v["description"] != insts[v["lookalike_of"]]["description"]
        )


@pytest.mark.parametrize("size", ["tiny", "demo"])
def test_casting_at_both_sizes_never_repeats_an_instance_and_spreads_lookalikes(size):
    cfg = SIZES[size]
    shapes = list(SHAPES)
    factory, plan, crowds = cast_set(0, "objects365", shapes, cfg["o365_images"], crowd_every=4)
    shown = [i for scene in plan for i in scene] + [c for c in crowds if c]
    assert len({i.iid for i in shown}) == len(shown) and len({look(i) for i in shown}) == len(shown)
    assert all(2 <= len(scene) <= 5 for scene in plan)
    for scene in plan:  # look-alikes are spread over images, never two of one family in one image
        assert len({i.family for i in scene}) == len(scene)
    assert sum(i.lookalike_of is not None for i in shown) >= len(shown) // 3
    subjects = cast_pairs(InstanceFactory(rng_for(0, "s")), shapes, cfg["pairs"], rng_for(0, "p"))
    assert len({i.iid for i in subjects}) == cfg["pairs"] and len({look(i) for i in subjects}) == cfg["pairs"]
    if size == "demo":  # 4 pairs per shape: most subjects have a look-alike in another pair
        assert sum(i.lookalike_of is not None for i in subjects) >= cfg["pairs"] // 3


def test_celeba_identities_recur_across_photos(clean):
    truth = json.loads((clean / "TRUTH.json").read_text())["celeba"]
    listed = dict(line.split() for line in (clean / "celeba/identity_CelebA.txt").read_text().splitlines())
    assert {name: str(ident) for name, ident in truth["photos"].items()} == listed
    per_identity = Counter(truth["photos"].values())
    assert set(map(str, per_identity)) == set(truth["identities"]) and all(3 <= n <= 5 for n in per_identity.values())


def test_fault_manifest_lists_every_kind_and_matches_the_files(faulty, clean):
    faults = load_faults(faulty)
    assert load_faults(clean) == []
    for source in SOURCES:
        kinds = {f["kind"] for f in faults if f["source"] == source}
        assert kinds == set(FAULT_KINDS[source]), source
    assert all(f["stage"] in ("index", "decode", "filter") for f in faults)
    assert {f["kind"] for f in faults if f["stage"] == "filter"} == {
        "quality_null",
        "quality_low",
        "description_invalid",
    }

    def one(source, kind):
        return next(f for f in faults if f["source"] == source and f["kind"] == kind)

    coco_text = (faulty / "coco/annotations/instances_train2017.json").read_text()
    assert "NaN" in coco_text
    coco = json.loads(coco_text)
    imgs = {i["id"]: i for i in coco["images"]}
    assert not (faulty / "coco/train2017" / imgs[int(one("coco", "image_missing")["record_id"])]["file_name"]).exists()
    with pytest.raises(OSError):
        Image.open(faulty / "coco/train2017" / imgs[int(one("coco", "image_unreadable")["record_id"])]["file_name"])
    truncated = Image.open(
        faulty / "coco/train2017" / imgs[int(one("coco", "image_truncated")["record_id"])]["file_name"]
    )
    with pytest.raises(OSError):
        truncated.load()
    assert isinstance(imgs[int(one("coco", "wrong_type")["record_id"])]["width"], str)
    assert imgs[int(one("coco", "path_traversal")["record_id"])]["file_name"] == "../evil.jpg"
    assert Counter(i["id"] for i in coco["images"])[int(one("coco", "duplicate_image_id")["record_id"])] == 2
    assert Counter(a["id"] for a in coco["annotations"])[int(one("coco", "duplicate_annotation_id")["record_id"])] == 2
    malformed = next(a for a in coco["annotations"] if a["id"] == int(one("coco", "bbox_malformed")["record_id"]))
    assert len(malformed["bbox"]) == 3

    o365 = json.loads((faulty / "objects365/annotations/zhiyuan_objv2_train.json").read_text())
    evil = next(i for i in o365["images"] if i["id"] == int(one("objects365", "path_traversal")["record_id"]))
    assert evil["file_name"].split("/")[-2:] == ["..", "evil.jpg"]

    celeba = (faulty / "celeba/identity_CelebA.txt").read_text().splitlines()
    assert f"{one('celeba', 'bad_identity')['record_id']} abc" in celeba
    assert one("celeba", "malformed_line")["record_id"] in celeba

    def s200k_row(kind):
        shard, row = one("subjects200k", kind)["record_id"].split(":")
        return pq.read_table(faulty / "subjects200k/data" / f"{shard}.parquet").to_pylist()[int(row)]

    assert s200k_row("quality_null")["quality_assessment"] is None
    assert min(s200k_row("quality_low")["quality_assessment"].values()) < 5
    assert s200k_row("image_missing")["image"]["bytes"] is None
    with pytest.raises(OSError):
        Image.open(io.BytesIO(s200k_row("image_unreadable")["image"]["bytes"]))

    refs = pickle.loads((faulty / "refcoco/refcoco/refs(unc).p").read_bytes())
    ann_ids = {
        a["id"]
        for a in json.loads((faulty / "refcoco/refcoco/instances.json").read_text(), parse_constant=float)[
            "annotations"
        ]
    }
    missing = next(r for r in refs if r["ref_id"] == int(one("refcoco", "missing_annotation")["record_id"]))
    assert missing["ann_id"] not in ann_ids


def test_refcoco_location_and_size_words_are_true_of_the_target(clean):
    base = clean / "refcoco"
    checked = 0
    for dataset, split_by in (("refcoco", "unc"), ("refcocog", "umd")):
        inst = json.loads((base / dataset / "instances.json").read_text())
        anns = {a["id"]: a for a in inst["annotations"]}
        width = {i["id"]: i["width"] for i in inst["images"]}
        for ref in pickle.loads((base / dataset / f"refs({split_by}).p").read_bytes()):
            target = anns[ref["ann_id"]]
            same = [
                a
                for a in anns.values()
                if a["image_id"] == ref["image_id"]
                and a["category_id"] == ref["category_id"]
                and a["id"] != target["id"]
            ]
            cx = target["bbox"][0] + target["bbox"][2] / 2
            for s in ref["sentences"]:
                words = set(s["tokens"])
                if same and "left" in words:
                    assert all(cx < a["bbox"][0] + a["bbox"][2] / 2 for a in same), s["sent"]
                if same and "right" in words:
                    assert all(cx > a["bbox"][0] + a["bbox"][2] / 2 for a in same), s["sent"]
                if not same and "left" in words:
                    assert cx < width[ref["image_id"]] / 2, s["sent"]
                if "larger" in words:
                    assert all(target["area"] > a["area"] for a in same), s["sent"]
                if "smaller" in words:
                    assert all(target["area"] < a["area"] for a in same), s["sent"]
                checked += bool(words & {"left", "right", "larger", "smaller"})
    assert checked >= 10


def test_celeba_files_parse_with_torchvisions_reader(clean, monkeypatch):
    datasets_mod = pytest.importorskip("torchvision.datasets")
    # torchvision checks the real files' md5 sums; everything else is its ordinary parser
    monkeypatch.setattr(datasets_mod.CelebA, "_check_integrity", lambda self: True)
    ds = datasets_mod.CelebA(str(clean), split="all", target_type=["identity", "bbox", "landmarks", "attr"])
    ident = (clean / "celeba/identity_CelebA.txt").read_text().split()
    assert len(ds) == len(ident) // 2
    img, (identity, bbox, landmarks, attr) = ds[0]
    assert img.size == (178, 218) and int(identity) == int(ident[1])
    assert bbox.shape == (4,) and landmarks.shape == (10,) and attr.shape == (40,)


# --- corpora larger than the named sizes (benchmarks) ------------------------------------------------------------


@pytest.mark.slow
def test_casting_scales_far_past_a_few_hundred_scenes_without_repeating_a_look():
    """3,000 COCO scenes (~10,000 objects over 8 shapes): every object a new instance with its own look."""
    shapes = [s for s, (coco_name, _) in SHAPES.items() if coco_name]
    factory, plan, crowds = cast_set(0, "coco", shapes, 3000, crowd_every=4)
    shown = [i for scene in plan for i in scene] + [c for c in crowds if c]
    assert len(shown) > 9000
    assert len({i.iid for i in shown}) == len(shown)
    assert len({(i.shape, i.description) for i in shown}) == len(shown)
    assert sum(i.lookalike_of is not None for i in shown) >= len(shown) // 3
    by_iid = {i.iid: i for i in shown}
    for i in shown:
        if i.lookalike_of in by_iid:  # a look-alike keeps its base's colours and outline, changes the surface
            base = by_iid[i.lookalike_of]
            assert (i.colour_name, i.colour2_name, i.trim_name, i.aspect) == (
                base.colour_name,
                base.colour2_name,
                base.trim_name,
                base.aspect,
            )
            assert (i.pattern, i.scale, i.vertical) != (base.pattern, base.scale, base.vertical)


def test_every_named_attribute_changes_the_drawing():
    """Looks that differ only in pattern size, stripe direction or outline are drawn differently."""
    from dataclasses import replace

    from curate.demo.objects import PALETTE, Instance
    from curate.demo.sprites import sprite

    base = Instance(
        iid="mug-00a",
        shape="mug",
        colour_name="red",
        colour=PALETTE["red"],
        colour2=PALETTE["white"],
        colour2_name="white",
        pattern="stripes",
        aspect=1.0,
        detail=3,
        scale="fine",
    )
    variants = [
        base,
        replace(base, scale="bold"),
        replace(base, vertical=True),
        replace(base, trim=PALETTE["navy"], trim_name="navy"),
    ]
    drawn = [np.asarray(sprite(v, 160)).astype(int) for v in variants]
    assert len({v.description for v in variants}) == len(variants)
    for other in drawn[1:]:
        assert other.shape == drawn[0].shape and np.abs(other - drawn[0]).sum(axis=2).astype(bool).mean() > 0.05
    outline = drawn[3][..., :3].reshape(-1, 3)
    assert (outline == PALETTE["navy"]).all(axis=1).sum() > 1000  # the outline is drawn in its colour


@pytest.mark.slow
def test_scaled_corpus_has_the_requested_counts_and_workers_give_the_same_bytes(faulty, tmp_path):
    from curate.demo.corpus import generate_sized, scaled_size

    with pytest.raises(UserError, match="unknown demo corpus knob"):
        scaled_size({"coco_scenes": 10})
    cfg = scaled_size({"coco_images": 16, "pairs": 14, "shards": 3}, base="tiny")
    generate_sized(tmp_path / "big", cfg, workers=2)
    coco = json.loads((tmp_path / "big/coco/annotations/instances_train2017.json").read_text())
    assert len(coco["images"]) == 16 and len(list((tmp_path / "big/subjects200k/data").glob("*.parquet"))) == 3
    assert len(json.loads((tmp_path / "big/TRUTH.json").read_text())["subjects200k"]["pairs"]) == 14
    generate_corpus(tmp_path / "parallel", seed=0, size="tiny", faults=True, workers=2)
    assert _digest(tmp_path / "parallel") == _digest(faulty)
