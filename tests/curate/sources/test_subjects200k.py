"""Subjects200K reader on generated shards with the dataset's exact HF features."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate import imageio
from curate.errors import UserError
from curate.sources import subjects200k, subjects200k_shards
from curate.sources.subjects200k import Subjects200KSource

FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "collection": datasets.Value("string"),
        "quality_assessment": {
            k: datasets.Value("int64") for k in ("compositeStructure", "objectConsistency", "imageQuality")
        },
        "description": {
            "item": datasets.Value("string"),
            "description_0": datasets.Value("string"),
            "description_1": datasets.Value("string"),
            "category": datasets.Value("string"),
            "description_valid": datasets.Value("bool"),
        },
    }
)


def composite(color, size=(1056, 528)) -> bytes:
    im = Image.new("RGB", size, (250, 250, 250))
    im.paste(Image.new("RGB", (512, 512), color), (8, 8))
    im.paste(Image.new("RGB", (512, 512), color), (528, 8))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=70)
    return buf.getvalue()


def record(
    i, *, scores=(5, 5, 5), collection="collection_2", valid=True, category="Furniture", size=(1056, 528), image=None
):
    qa = None if scores is None else dict(zip(("compositeStructure", "objectConsistency", "imageQuality"), scores))
    return {
        "image": {"bytes": image if image is not None else composite((40 * i % 255, 90, 160), size), "path": None},
        "collection": collection,
        "quality_assessment": qa,
        "description": {
            "item": f"Eames Lounge Chair {i}",
            "description_0": f"The chair {i} in a loft.",
            "description_1": f"The chair {i} on a beach.",
            "category": category,
            "description_valid": valid,
        },
    }


def write_shards(folder: Path, shards: list[list[dict]]) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for k, rows in enumerate(shards):
        ds = datasets.Dataset.from_list(rows, features=FEATURES)
        ds.to_parquet(str(folder / "data" / f"train-{k:05d}-of-{len(shards):05d}.parquet"), batch_size=2)
    return folder


GOOD_AND_BAD = [
    [record(0), record(1, scores=(5, 4, 5)), record(2, scores=None), record(3, collection="collection_1")],
    [
        record(4, valid=False),
        record(5, size=(600, 400)),
        record(6, image=b"not an image"),
        record(7, category=""),
        record(8, collection="collection_1"),
    ],
]


def spec(**kw) -> Subjects200KSource:
    return Subjects200KSource(kind="subjects200k", **kw)


def reasons(st):
    return {(s, rid, r) for s, rid, r in st.quarantine.select("stage", "record_id", "reason").iter_rows()}


def test_pairs_panels_and_embedded_images(tmp_path):
    root = write_shards(tmp_path / "s200k", GOOD_AND_BAD)
    st = subjects200k.read("s200k", spec(path=root))
    assert st.images["image_id"].to_list() == [
        "train-00000-of-00002:0",
        "train-00000-of-00002:3",
        "train-00001-of-00002:0",
        "train-00001-of-00002:4",
    ]
    img = st.images.row(0, named=True)
    assert (img["width"], img["height"], img["split"]) == (1056, 528, "train")
    assert imageio.open_image(img["path"]).size == (1056, 528)
    assert imageio.open_image(st.images["path"][3]).getpixel((300, 300)) == pytest.approx(
        (40 * 8 % 255, 90, 160), abs=6
    )
    objs = st.objects.filter(image_id="train-00000-of-00002:0").sort("object_id")
    assert [list(b) for b in objs["bbox"]] == [[8.0, 8.0, 520.0, 520.0], [528.0, 8.0, 1040.0, 520.0]]
    assert set(objs["identity"]) == {"train-00000-of-00002:0"} and set(objs["category"]) == {"Furniture"}
    assert objs["area"].to_list() == [512.0 * 512, 512.0 * 512]
    pair = st.get("pairs").row(0, named=True)
    assert pair["item"] == "Eames Lounge Chair 0" and pair["description_1"] == "The chair 0 on a beach."
    assert (pair["left_object_id"], pair["right_object_id"]) == (
        "train-00000-of-00002:0/left",
        "train-00000-of-00002:0/right",
    )
    assert pair["collection"] == "collection_2"
    assert st.revision is None


def test_every_dropped_row_has_a_quarantine_reason(tmp_path):
    root = write_shards(tmp_path / "s200k", GOOD_AND_BAD)
    st = subjects200k.read("s200k", spec(path=root))
    assert reasons(st) == {
        ("filter", "train-00000-of-00002:1", "low_quality"),
        ("filter", "train-00000-of-00002:2", "no_quality"),
        ("index", "train-00001-of-00002:1", "image_size_mismatch"),
        ("index", "train-00001-of-00002:2", "image_unreadable"),
        ("index", "train-00001-of-00002:3", "description_missing"),
    }
    assert st.images.height + st.quarantine.height == 9
    detail = st.quarantine.filter(reason="low_quality")["detail"][0]
    assert "objectConsistency=4" in detail


def test_quality_collection_and_description_filters_are_configurable(tmp_path):
    root = write_shards(tmp_path / "s200k", GOOD_AND_BAD)
    st = subjects200k.read(
        "s200k", spec(path=root, min_quality=4, collections=["collection_2"], require_valid_description=True)
    )
    got = {(rid, r) for _, rid, r in reasons(st) if r in ("low_quality", "collection_filtered", "description_invalid")}
    assert got == {
        ("train-00000-of-00002:3", "collection_filtered"),
        ("train-00001-of-00002:4", "collection_filtered"),
        ("train-00001-of-00002:0", "description_invalid"),
    }
    assert st.images["image_id"].to_list() == ["train-00000-of-00002:0", "train-00000-of-00002:1"]
    st = subjects200k.read(
        "s200k",
        spec(path=root, image_size=None, left_panel=(0, 0, 300, 300), right_panel=(300, 0, 600, 300), limit=4),
    )
    assert st.images["image_id"].to_list()[-1] == "train-00001-of-00002:1"  # any size holding these panels
    assert st.images.height == 4 and "image_unreadable" not in st.quarantine["reason"].to_list()  # stopped at the limit


def test_flat_folder_of_shards_and_input_files(tmp_path):
    root = write_shards(tmp_path / "s200k", GOOD_AND_BAD[:1])
    flat = tmp_path / "flat"
    flat.mkdir()
    (root / "data" / "train-00000-of-00001.parquet").rename(flat / "part.parquet")
    assert subjects200k.input_files(spec(path=flat)) == [flat / "part.parquet"]
    st = subjects200k.read("s200k", spec(path=flat))
    assert st.images["image_id"].to_list() == ["part:0", "part:3"] and st.images["split"].to_list() == [
        "train",
        "train",
    ]


def test_unreadable_shards_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="no Parquet shards"):
        subjects200k.read("s", spec(path=tmp_path))
    (tmp_path / "data").mkdir()
    bad = tmp_path / "data" / "train-00000-of-00001.parquet"
    bad.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\n")
    with pytest.raises(UserError, match=r"train-00000-of-00001.parquet: not a readable Parquet file"):
        subjects200k.read("s", spec(path=tmp_path))
    pq.write_table(pa.table({"image": [b"x"], "caption": ["a chair"]}), bad)
    with pytest.raises(
        UserError, match=r"not a Subjects200K shard: missing column\(s\) collection, quality_assessment, description"
    ):
        subjects200k.read("s", spec(path=tmp_path))
    with pytest.raises(UserError, match=r"left_panel \(10, 8, 10, 520\) must have x1 < x2"):
        subjects200k.read("s", spec(path=tmp_path, left_panel=(10, 8, 10, 520)))


def test_pinned_hub_revision_is_downloaded_and_reported(tmp_path, hub):
    from huggingface_hub import HfApi

    api = HfApi()
    repo = "tester/subjects200k-mini"
    api.create_repo(repo, repo_type="dataset")
    api.upload_folder(
        folder_path=str(write_shards(tmp_path / "v1", GOOD_AND_BAD[:1])), repo_id=repo, repo_type="dataset"
    )
    api.create_tag(repo, tag="v1", repo_type="dataset")
    sha = api.dataset_info(repo, revision="v1").sha
    # a later commit on main must not change what @v1 reads
    api.upload_folder(
        folder_path=str(write_shards(tmp_path / "v2", GOOD_AND_BAD)),
        repo_id=repo,
        repo_type="dataset",
        delete_patterns=["*.parquet"],
    )

    st = subjects200k.read("s200k", spec(hub=f"{repo}@v1"))
    assert st.revision == f"{repo}@{sha}" and len(sha) == 40
    assert st.images.height == 2 and st.quarantine.height == 2
    assert imageio.open_image(st.images["path"][1]).size == (1056, 528)
    assert [p.name for p in subjects200k.input_files(spec(hub=f"{repo}@v1"))] == ["train-00000-of-00001.parquet"]
    assert subjects200k.read("s200k", spec(hub=f"{repo}@main")).images.height == 4

    with pytest.raises(UserError, match=r"revision 'v9' does not exist"):
        subjects200k.read("s200k", spec(hub=f"{repo}@v9"))
    with pytest.raises(UserError, match=r"dataset tester/nope not found"):
        subjects200k.read("s200k", spec(hub="tester/nope@v1"))


def test_jpeg_cut_mid_scan_is_caught_from_the_embedded_bytes(tmp_path):
    whole = composite((10, 200, 30))
    cut = whole[: len(whole) // 2]
    assert Image.open(io.BytesIO(cut)).size == (1056, 528)  # the header alone looks fine
    root = write_shards(tmp_path / "s200k", [[record(0, image=cut), record(1)]])
    st = subjects200k.read("s200k", spec(path=root))
    assert reasons(st) == {("index", "train-00000-of-00001:0", "image_truncated")}
    assert subjects200k.read("s200k", spec(path=root, verify_images="none")).images.height == 2


def test_generated_demo_corpus(tmp_path):
    import json

    from curate.demo.corpus import generate_corpus

    generate_corpus(tmp_path, size="tiny", faults=True)
    root = tmp_path / "subjects200k"
    total = sum(pq.ParquetFile(shard).metadata.num_rows for shard in subjects200k_shards.shards(root))
    faults = [f for f in json.loads((tmp_path / "FAULTS.json").read_text()) if f["source"] == "subjects200k"]
    assert faults
    st = subjects200k.read("s200k", spec(path=root, require_valid_description=True))
    assert {f["record_id"] for f in faults} <= set(st.quarantine["record_id"])  # the JPEG cut mid-scan too
    assert st.images.height + st.quarantine.height == total and st.images.height > 0
    assert st.get("pairs").height == st.images.height and st.objects.height == 2 * st.images.height
    assert imageio.open_image(st.images["path"][0]).size == (st.images["width"][0], st.images["height"][0])


def test_damaged_page_is_a_one_line_error(tmp_path):
    root = write_shards(tmp_path / "s200k", [[record(0), record(1), record(2)]])
    shard = root / "data" / "train-00000-of-00001.parquet"
    data = bytearray(shard.read_bytes())
    for i in range(200, len(data) // 2):  # scribble over the first pages, keep the footer intact
        data[i] = 0x55
    shard.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"train-00000-of-00001.parquet: cannot read row 0"):
        subjects200k.read("s", spec(path=root))


def test_malformed_scores_are_bad_records_not_filtered_rows(tmp_path):
    """Issue 9 item 13: scores of the wrong type cannot be judged: bad input (stage index), not ``no_quality``."""
    from curate.sources.index import bad_fraction

    root = write_shards(tmp_path / "s200k", [[record(0), record(1, scores=None)]])  # null: a filter case
    rows = [record(i) for i in range(2, 6)]
    for r in rows:  # a re-export that wrote the scores as text
        r["quality_assessment"] = {"compositeStructure": "5", "objectConsistency": "5", "imageQuality": "5"}
    features = FEATURES.copy()
    features["quality_assessment"] = {k: datasets.Value("string") for k in subjects200k.SCORES}
    shard = str(root / "data" / "train-00001-of-00001.parquet")
    datasets.Dataset.from_list(rows, features=features).to_parquet(shard)
    st = subjects200k.read("s200k", spec(path=root))
    assert st.images["image_id"].to_list() == ["train-00000-of-00001:0"]
    got = {(stage, reason) for stage, _, reason in reasons(st)}
    assert got == {("filter", "no_quality"), ("index", "quality_malformed")}
    assert st.quarantine.filter(reason="quality_malformed").height == 4
    assert bad_fraction(st) == pytest.approx(4 / 9)  # 4 bad of 5 quarantined + 1 image, 2 panels, 1 pair


def test_malformed_collection_and_description_flags(tmp_path):
    rows = [record(0), record(1), record(2)]
    rows[1]["quality_assessment"] = {"compositeStructure": 5, "objectConsistency": 9, "imageQuality": 5}
    rows[2]["description"]["description_valid"] = "yes"
    features = FEATURES.copy()
    features["description"] = {**FEATURES["description"], "description_valid": datasets.Value("string")}
    for r in rows[:2]:
        r["description"]["description_valid"] = "True"
    folder = tmp_path / "s200k" / "data"
    folder.mkdir(parents=True)
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(folder / "train-00000-of-00001.parquet"))
    st = subjects200k.read("s", spec(path=tmp_path / "s200k", require_valid_description=True))
    assert {(rid[-1], reason) for _, rid, reason in reasons(st)} == {
        ("0", "description_malformed"),
        ("1", "quality_malformed"),  # 9 is outside the 0-5 scale
        ("2", "description_malformed"),
    }


def test_composite_size_is_checked_against_the_declared_geometry(tmp_path):
    """Issue 9 item 23: a composite of another size is quarantined with the expected and found sizes."""
    root = write_shards(
        tmp_path / "s200k", [[record(0), record(1, size=(1056, 540)), record(2, size=(2080, 1056)), record(3)]]
    )
    st = subjects200k.read("s", spec(path=root))
    assert st.images["image_id"].to_list() == ["train-00000-of-00001:0", "train-00000-of-00001:3"]
    q = st.quarantine.filter(reason="image_size_mismatch").sort("record_id")
    assert q["stage"].to_list() == ["index", "index"]
    assert "expected 1056x528" in q["detail"][0] and "found 1056x540" in q["detail"][0]
    assert "found 2080x1056" in q["detail"][1]  # holds both default panels, but is not this geometry
    with pytest.raises(UserError, match=r"left_panel \(0, 0, 600, 600\) does not fit in image_size 1056x528"):
        subjects200k.read("s", spec(path=root, left_panel=(0, 0, 600, 600)))


@pytest.mark.parametrize(
    ("size", "hint"),
    [
        ((1024, 512), r"already-cropped pairs .*left_panel \(0, 0, 512, 512\), right_panel \(512, 0, 1024, 512\)"),
        ((2080, 1056), r"image_size \(2080, 1056\), left_panel \(0, 0, 1040, 1056\)"),
    ],
)
def test_a_source_where_every_row_mismatches_stops_naming_the_files_geometry(tmp_path, size, hint):
    root = write_shards(tmp_path / "s200k", [[record(i, size=size) for i in range(3)]])
    with pytest.raises(UserError) as err:
        subjects200k.read("s", spec(path=root))
    msg = str(err.value)
    assert "\n" not in msg and "declared panel geometry's size 1056x528" in msg
    assert f"seem to hold {size[0]}x{size[1]} composites (3 of 3" in msg
    assert re.search(hint, msg)
    geometry = dict(
        zip(
            ("image_size", "left_panel", "right_panel"),
            re.findall(r"\(\d+, \d+(?:, \d+, \d+)?\)", msg.split("e.g.")[1]),
        )
    )
    # the suggested geometry reads every row
    fixed = spec(path=root, **{k: ast.literal_eval(v) for k, v in geometry.items()})
    assert subjects200k.read("s", fixed).images.height == 3
