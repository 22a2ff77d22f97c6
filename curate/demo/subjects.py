"""Subjects200K writer: Parquet shards with the HF features and 1056x528 composite pair images.

Each row shows one subject in two different scenes: a new instance per pair (no
subject appears in two pairs), with same-category look-alikes in other pairs. The left
panel at (8, 8, 520, 520) and the right panel at (528, 8, 1040, 520) of a white
1056x528 canvas, as OminiControl crops them.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features, Value
from datasets import Image as HFImage
from PIL import Image

from curate.demo.casting import InstanceFactory, cast_pairs
from curate.demo.common import CORRUPT_BYTES, FaultLog, jpeg_bytes, rng_for, truncated_jpeg
from curate.demo.objects import SHAPES
from curate.demo.scenes import BACKGROUNDS, SCENE_TEXT, compose

FEATURES = Features(
    {
        "image": HFImage(),
        "collection": Value("string"),
        "quality_assessment": {k: Value("int64") for k in ("compositeStructure", "objectConsistency", "imageQuality")},
        "description": {
            "item": Value("string"),
            "description_0": Value("string"),
            "description_1": Value("string"),
            "category": Value("string"),
            "description_valid": Value("bool"),
        },
    }
)
CATEGORY = {
    "mug": "Kitchenware",
    "bottle": "Kitchenware",
    "vase": "Home Decor",
    "clock": "Home Decor",
    "ball": "Sports Equipment",
    "teddy": "Toys",
    "balloon": "Toys",
    "book": "Stationery",
    "tv": "Electronics",
    "cigarette": "Accessories",
}
LEFT, RIGHT = (8, 8, 520, 520), (528, 8, 1040, 520)


def pair_id(shard: str, row: int) -> str:
    """``<shard file stem>:<row>``, e.g. ``train-00000-of-00002:3`` (the row's id in FAULTS.json and TRUTH.json)."""
    return f"{Path(shard).stem}:{row}"


def composite(inst, rng, panel: int) -> tuple[Image.Image, list[str]]:
    """The 1056x528 pair image: ``inst`` in two different scenes; returns it and the two scene names."""
    canvas = Image.new("RGB", (1056, 528), (255, 255, 255))
    scenes = [str(s) for s in rng.choice(BACKGROUNDS, size=2, replace=False)]
    for box, bg in zip((LEFT, RIGHT), scenes):
        img, _ = compose([inst], (panel, panel), rng, bg=bg, scale=(0.45, 0.7), lighting=0.7)
        if panel != 512:
            img = img.resize((512, 512), Image.BILINEAR)
        canvas.paste(img, box[:2])
    return canvas, scenes


def write_subjects(root: Path, seed: int, cfg: dict, faults: FaultLog | None, truth: dict) -> Path:
    base = root / "subjects200k"
    factory = InstanceFactory(rng_for(seed, "subjects200k", "instances"))
    insts = cast_pairs(factory, list(SHAPES), cfg["pairs"], rng_for(seed, "subjects200k", "schedule"))
    rng = rng_for(seed, "subjects200k")
    rows = []
    for k, inst in enumerate(insts):
        img, scenes = composite(inst, rng_for(seed, "subjects200k", str(k)), cfg["panel"])
        item = inst.description.title()
        d0, d1 = (f"The {inst.description} stands {SCENE_TEXT[s]}, seen from a slight angle." for s in scenes)
        rows.append(
            {
                "image": {"bytes": jpeg_bytes(img), "path": None},
                "collection": "collection_1" if rng.random() < 0.25 else "collection_2",
                "quality_assessment": {"compositeStructure": 5, "objectConsistency": 5, "imageQuality": 5},
                "description": {
                    "item": item,
                    "description_0": d0,
                    "description_1": d1,
                    "category": CATEGORY[inst.shape],
                    "description_valid": True,
                },
            }
        )
    n_shards = cfg["shards"]
    names = [f"data/train-{i:05d}-of-{n_shards:05d}.parquet" for i in range(n_shards)]
    per = -(-len(rows) // n_shards)
    pair_truth = {pair_id(names[k // per], k % per): inst.iid for k, inst in enumerate(insts)}
    if faults is not None:
        _inject(rows, names, per, faults)
    (base / "data").mkdir(parents=True, exist_ok=True)
    schema = FEATURES.arrow_schema
    for i, name in enumerate(names):
        table = pa.Table.from_pylist(rows[i * per : (i + 1) * per], schema=schema)
        pq.write_table(table, base / name, row_group_size=8)
    truth["subjects200k"] = {"pairs": pair_truth, "instances": factory.truth()}
    return base


def _inject(rows: list[dict], names: list[str], per: int, log: FaultLog) -> None:
    """Filter cases (null / low quality, invalid description) and bad images, one row each."""
    if len(rows) < 8:
        raise ValueError("fault injection needs at least 8 Subjects200K rows")

    def add(k, kind, stage="index", detail=""):
        log.add("subjects200k", pair_id(names[k // per], k % per), kind, names[k // per], stage=stage, detail=detail)

    rows[1]["quality_assessment"] = None
    add(1, "quality_null", "filter", detail="quality_assessment is null (filter case)")
    rows[2]["quality_assessment"] = {"compositeStructure": 5, "objectConsistency": 3, "imageQuality": 4}
    add(2, "quality_low", "filter", detail="objectConsistency 3, imageQuality 4 (filter case)")
    rows[3]["description"] = {**rows[3]["description"], "description_valid": False}
    add(
        3,
        "description_invalid",
        "filter",
        detail="description_valid is false (rejected when require_valid_description)",
    )
    with Image.open(io.BytesIO(rows[4]["image"]["bytes"])) as im:
        rows[4]["image"] = {"bytes": truncated_jpeg(im), "path": None}
    add(4, "image_truncated", "decode", "JPEG bytes cut mid-scan")
    rows[5]["image"] = {"bytes": CORRUPT_BYTES, "path": None}
    add(5, "image_unreadable", detail="image bytes are not an image")
    rows[6]["image"] = {"bytes": None, "path": None}
    add(6, "image_missing", detail="image struct has no bytes")
    rows[7]["image"] = {"bytes": jpeg_bytes(Image.new("RGB", (1024, 512), (255, 255, 255))), "path": None}
    add(7, "image_size_mismatch", detail="composite is 1024x512, not the 1056x528 of the default panel geometry")
