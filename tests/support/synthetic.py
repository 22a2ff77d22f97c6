"""Small synthetic source tables (no pixels) and recipes for the planning tests."""

from __future__ import annotations

import random

from curate.recipe import Recipe
from curate.sources.tables import SourceTables, from_rows

CATEGORIES = ["person", "dog", "cup", "chair", "teddy bear", "bicycle"]


def detection(
    source: str = "coco", kind: str = "coco", n_images: int = 60, seed: int = 0, prefix: str = ""
) -> SourceTables:
    """Images of 640x480 with 2-6 boxes each: well separated large boxes plus a few bad ones."""
    rng = random.Random(seed)
    images, objects = [], []
    oid = 0
    for i in range(n_images):
        iid = f"{prefix}{i:05d}"
        images.append(
            {
                "source": source,
                "image_id": iid,
                "path": f"/data/{source}/{iid}.jpg",
                "width": 640,
                "height": 480,
                "split": "train",
            }
        )
        n = rng.randint(2, 6)
        for j in range(n):
            col, row = j % 3, j // 3  # a 3x2 grid of cells: boxes in different cells do not overlap
            x, y = 10 + col * 210, 10 + row * 235
            w, h = rng.randint(80, 190), rng.randint(80, 210)
            objects.append(
                {
                    "source": source,
                    "image_id": iid,
                    "object_id": f"{prefix}o{oid}",
                    "category": rng.choice(CATEGORIES),
                    "bbox": [float(x), float(y), float(x + w), float(y + h)],
                    "area": float(w * h),
                    "iscrowd": False,
                    "isfake": False,
                    "isreflected": False,
                }
            )
            oid += 1
        # a large box across the first two cells: overlaps the boxes there (IoU > 0.1)
        objects.append(
            {
                "source": source,
                "image_id": iid,
                "object_id": f"{prefix}o{oid}",
                "category": rng.choice(CATEGORIES),
                "bbox": [10.0, 10.0, 400.0, 200.0],
                "area": 390.0 * 190,
                "iscrowd": False,
                "isfake": False,
                "isreflected": False,
            }
        )
        oid += 1
        # one tiny box and one crowd box per image: always rejected by the default crop filters
        objects.append(
            {
                "source": source,
                "image_id": iid,
                "object_id": f"{prefix}o{oid}",
                "category": "cup",
                "bbox": [600.0, 440.0, 610.0, 450.0],
                "area": 100.0,
                "iscrowd": False,
                "isfake": False,
                "isreflected": False,
            }
        )
        objects.append(
            {
                "source": source,
                "image_id": iid,
                "object_id": f"{prefix}o{oid + 1}",
                "category": "person",
                "bbox": [0.0, 0.0, 300.0, 300.0],
                "area": 9e4,
                "iscrowd": True,
                "isfake": False,
                "isreflected": False,
            }
        )
        oid += 2
    for i in range(n_images // 6):  # images without any box (easy-negative material)
        iid = f"{prefix}e{i:04d}"
        images.append(
            {
                "source": source,
                "image_id": iid,
                "path": f"/data/{source}/{iid}.jpg",
                "width": 640,
                "height": 480,
                "split": "train",
            }
        )
    return SourceTables(source, kind, {"images": from_rows("images", images), "objects": from_rows("objects", objects)})


def celeba(source: str = "celeba", n_ids: int = 12, per_id: int = 4) -> SourceTables:
    images, ident = [], []
    k = 0
    for p in range(n_ids):
        for _ in range(per_id):
            k += 1
            iid = f"{k:06d}.jpg"
            images.append(
                {
                    "source": source,
                    "image_id": iid,
                    "path": f"/data/celeba/{iid}",
                    "width": 178,
                    "height": 218,
                    "split": "train",
                }
            )
            ident.append({"source": source, "image_id": iid, "identity": str(p + 1)})
    return SourceTables(
        source, "celeba", {"images": from_rows("images", images), "identities": from_rows("identities", ident)}
    )


def subjects(source: str = "subjects", n_pairs: int = 30, categories=("Bags", "Shoes", "Toys")) -> SourceTables:
    images, objects, pairs = [], [], []
    for i in range(n_pairs):
        iid = f"s{i:05d}"
        cat = categories[i % len(categories)]
        images.append(
            {
                "source": source,
                "image_id": iid,
                "path": f"/data/s.parquet#row={i}&col=image",
                "width": 1056,
                "height": 528,
            }
        )
        for side, box in (("l", [8.0, 8.0, 520.0, 520.0]), ("r", [528.0, 8.0, 1040.0, 520.0])):
            objects.append(
                {
                    "source": source,
                    "image_id": iid,
                    "object_id": f"{iid}{side}",
                    "category": cat,
                    "bbox": box,
                    "area": 512.0 * 512,
                    "iscrowd": False,
                    "isfake": False,
                    "isreflected": False,
                    "identity": iid,
                }
            )
        pairs.append(
            {
                "source": source,
                "pair_id": iid,
                "image_id": iid,
                "item": f"item {i}",
                "category": cat,
                "left_object_id": f"{iid}l",
                "right_object_id": f"{iid}r",
                "collection": "collection_1",
            }
        )
    return SourceTables(
        source,
        "subjects200k",
        {
            "images": from_rows("images", images),
            "objects": from_rows("objects", objects),
            "pairs": from_rows("pairs", pairs),
        },
    )


def refcoco(source: str = "refcoco", n_images: int = 40) -> SourceTables:
    images, refs = [], []
    for i in range(n_images):
        iid = str(100 + i)
        images.append(
            {
                "source": source,
                "image_id": iid,
                "path": f"/data/refcoco/{iid}.jpg",
                "width": 640,
                "height": 480,
                "split": None,
            }
        )
        for j, ds in enumerate(("refcoco", "refcoco+", "refcocog")):
            refs.append(
                {
                    "source": source,
                    "dataset": ds,
                    "split_by": "unc",
                    "ref_id": f"{ds}-{i}",
                    "sent_id": f"{ds}-{i}-{j}",
                    "image_id": iid,
                    "object_id": f"a{i}",
                    "category": "dog",
                    "expression": f"the dog number {j} on the left",
                    "bbox": [10.0 + j, 20.0, 200.0, 300.0],
                    "split": "train" if i % 5 else "val",
                }
            )
    return SourceTables(
        source, "refcoco", {"images": from_rows("images", images), "referring": from_rows("referring", refs)}
    )


SPECS = {
    "coco": {"kind": "coco", "annotations": "/x/a.json", "images": "/x/img"},
    "objects365": {"kind": "objects365", "annotations": "/x/o.json", "images": "/x/o"},
    "celeba": {"kind": "celeba", "root": "/x/celeba"},
    "subjects": {"kind": "subjects200k", "path": "/x/s"},
    "refcoco": {"kind": "refcoco", "root": "/x/refcoco"},
}


def recipe(
    total: int = 60, proportions=None, sources=("coco", "objects365", "celeba", "subjects", "refcoco"), **sections
) -> Recipe:
    data = {
        "name": "test-mix",
        "version": "1.0.0",
        "seed": sections.pop("seed", 0),
        "sources": {s: SPECS[s] for s in sources},
        "mixture": {
            "total": total,
            "proportions": proportions or {"oct": 0.45, "vlt": 0.24, "ict_single": 0.26, "ict_multi": 0.05},
            **sections.pop("mixture", {}),
        },
        **sections,
    }
    return Recipe.model_validate(data)


def all_tables() -> dict[str, SourceTables]:
    return {
        "coco": detection("coco", "coco", 60, seed=1),
        "objects365": detection("objects365", "objects365", 60, seed=2, prefix="x"),
        "celeba": celeba(),
        "subjects": subjects(),
        "refcoco": refcoco(),
    }
