"""COCO 2017 and Objects365 v2 writers (both COCO-style JSON, different quirks).

Every image holds 2-5 objects, each a new instance (shown in no other image); look-alikes of
the same category are spread over other images (:mod:`curate.demo.casting`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curate.demo.casting import InstanceFactory, cast_scenes
from curate.demo.categories import COCO_LICENSES, coco_categories, objects365_categories
from curate.demo.common import FaultLog, mask_polygon, rle_counts, rng_for, save_jpeg, write_json
from curate.demo.faults import inject_json_faults
from curate.demo.objects import SHAPES, Instance
from curate.demo.scenes import Placed, compose


def annotation(p: Placed, ann_id: int, image_id: int, category_id: int) -> dict:
    x1, y1, x2, y2 = p.box
    if p.crowd:
        h, w = p.mask.shape
        seg = {"counts": rle_counts(p.mask), "size": [h, w]}
    else:
        seg = [mask_polygon(p.mask)]
    return {
        "segmentation": seg,
        "area": float(p.area),
        "iscrowd": int(p.crowd),
        "image_id": image_id,
        "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
        "category_id": category_id,
        "id": ann_id,
    }


def cast_set(
    seed: int, tag: str, shapes: list[str], n_images: int, *, crowd_every: int = 0, lo: int = 2, hi: int = 5
) -> tuple[InstanceFactory, list[list[Instance]], list[Instance | None]]:
    """Who appears in each of ``n_images`` scenes: ``lo``..``hi`` new instances, and every ``crowd_every``-th
    image a crowd (a row of small copies of one more new instance)."""
    rng = rng_for(seed, tag, "schedule")
    factory = InstanceFactory(rng_for(seed, tag, "instances"))
    plan = cast_scenes(factory, shapes, n_images, rng, lo, hi)
    crowds = [
        factory.new_family(shapes[int(rng.integers(len(shapes)))])
        if crowd_every and k % crowd_every == crowd_every - 1
        else None
        for k in range(n_images)
    ]
    return factory, plan, crowds


def render_set(
    seed: int, tag: str, plan: list[list[Instance]], crowds: list[Instance | None], sizes: list[tuple[int, int]]
):
    """Yield (k, image, placed) for the cast multi-object scenes."""
    for k, picked in enumerate(plan):
        r = rng_for(seed, tag, "image", str(k))
        size = sizes[int(r.integers(len(sizes)))]
        img, placed = compose(picked, size, r, crowd=crowds[k])
        yield k, img, placed


def write_coco(root: Path, seed: int, cfg: dict, faults: FaultLog | None, truth: dict) -> Path:
    """``root/coco/annotations/instances_train2017.json`` and ``root/coco/train2017/<12-digit id>.jpg``."""
    base = root / "coco"
    cats = coco_categories()
    cat_id = {c["name"]: c["id"] for c in cats}
    shapes = [s for s, (coco_name, _) in SHAPES.items() if coco_name]
    factory, plan, crowds = cast_set(seed, "coco", shapes, cfg["coco_images"], crowd_every=4)
    rng = rng_for(seed, "coco", "ids")
    ids = [int(v) for v in rng.choice(np.arange(1, 581930), size=cfg["coco_images"], replace=False)]
    images, anns, ann_truth, image_truth = [], [], {}, {}
    next_ann = int(rng.integers(100000, 200000))
    for k, img, placed in render_set(seed, "coco", plan, crowds, cfg["scene_sizes"]):
        iid = ids[k]
        name = f"{iid:012d}.jpg"
        save_jpeg(img, base / "train2017" / name)
        month, day = 1 + k % 12, 1 + k % 28
        images.append(
            {
                "license": int(1 + (iid % 8)),
                "file_name": name,
                "coco_url": f"http://images.cocodataset.org/train2017/{name}",
                "height": img.height,
                "width": img.width,
                "date_captured": f"2013-{month:02d}-{day:02d} 12:00:00",
                "flickr_url": f"http://farm{1 + iid % 9}.staticflickr.com/demo/{iid}.jpg",
                "id": iid,
            }
        )
        for p in placed:
            if p.crowd:
                aid = 900000000000 + iid
            else:
                aid, next_ann = next_ann, next_ann + int(rng.integers(1, 40))
            anns.append(annotation(p, aid, iid, cat_id[SHAPES[p.instance.shape][0]]))
            ann_truth[str(aid)] = p.instance.iid
        image_truth[str(iid)] = sorted({p.instance.iid for p in placed})
    data = {
        "info": {
            "description": "RePIC demo corpus (synthetic images, COCO 2017 format)",
            "url": "",
            "version": "1.0",
            "year": 2017,
            "contributor": "repic demo generator",
            "date_created": "2017/09/01",
        },
        "licenses": COCO_LICENSES,
        "images": images,
        "annotations": anns,
        "categories": cats,
    }
    if faults is not None:
        inject_json_faults(
            data,
            "coco",
            base / "train2017",
            "annotations/instances_train2017.json",
            faults,
            unknown_category=12,
            traversal_name="../evil.jpg",
            name_of=lambda i: f"{i:012d}.jpg",
            path_of=lambda fn: base / "train2017" / fn,
        )
    write_json(data, base / "annotations" / "instances_train2017.json")
    truth["coco"] = source_truth(factory, ann_truth, image_truth)
    return base


def source_truth(factory: InstanceFactory, ann_truth: dict, image_truth: dict) -> dict:
    """TRUTH.json of a detection source: annotation id -> instance, image id -> its instances, and the shown instances."""
    shown = set(ann_truth.values())
    return {
        "annotations": ann_truth,
        "images": image_truth,
        "instances": {k: v for k, v in factory.truth().items() if k in shown},
    }


def o365_file_name(iid: int, k: int) -> str:
    """v1 images live in patches 0-15, v2 images in 16+ (as in the real train JSON)."""
    if k % 3 == 2:
        return f"images/v2/patch{16 + k % 2}/objects365_v2_{iid:08d}.jpg"
    return f"images/v1/patch{k % 3}/objects365_v1_{iid:08d}.jpg"


def write_objects365(root: Path, seed: int, cfg: dict, faults: FaultLog | None, truth: dict) -> Path:
    """``root/objects365/annotations/zhiyuan_objv2_train.json`` and ``root/objects365/train/patchN/<name>.jpg``."""
    base = root / "objects365"
    cats = objects365_categories(seed)
    cat_id = {c["name"]: c["id"] for c in cats}
    factory, plan, crowds = cast_set(seed, "objects365", list(SHAPES), cfg["o365_images"])
    rng = rng_for(seed, "objects365", "ids")
    ids = sorted(int(v) for v in rng.choice(np.arange(1, 2_000_000), size=cfg["o365_images"], replace=False))
    images, anns, ann_truth, image_truth = [], [], {}, {}
    next_ann = 1
    for k, img, placed in render_set(seed, "objects365", plan, crowds, cfg["scene_sizes"]):
        iid = ids[k]
        fn = o365_file_name(iid, k)
        save_jpeg(img, base / "train" / Path(*fn.split("/")[-2:]))
        images.append({"height": img.height, "id": iid, "license": 5, "width": img.width, "file_name": fn, "url": ""})
        for p in placed:
            x1, y1, x2, y2 = p.box
            flags = rng.random(2)
            anns.append(
                {
                    "id": next_ann,
                    "iscrowd": 0,
                    "isfake": int(flags[0] < 0.06),
                    "area": float(p.area),
                    "isreflected": int(flags[1] < 0.06),
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                    "image_id": iid,
                    "category_id": cat_id[SHAPES[p.instance.shape][1]],
                }
            )
            ann_truth[str(next_ann)] = p.instance.iid
            next_ann += 1
        image_truth[str(iid)] = sorted({p.instance.iid for p in placed})
    data = {
        "images": images,
        "annotations": anns,
        "categories": cats,
        "licenses": [{"name": "Objects365", "id": 5, "url": ""}],
    }
    if faults is not None:
        inject_json_faults(
            data,
            "objects365",
            base / "train",
            "annotations/zhiyuan_objv2_train.json",
            faults,
            unknown_category=999,
            traversal_name="images/v2/../evil.jpg",
            name_of=lambda i: f"images/v1/patch0/objects365_v1_{i:08d}.jpg",
            path_of=lambda fn: base / "train" / Path(*fn.split("/")[-2:]),
        )
    write_json(data, base / "annotations" / "zhiyuan_objv2_train.json")
    truth["objects365"] = source_truth(factory, ann_truth, image_truth)
    return base
