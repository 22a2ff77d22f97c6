"""Bad-input injection for COCO-style JSON sources (COCO, Objects365, RefCOCO instances).

Each injected record is logged in the :class:`~curate.demo.common.FaultLog` with the id
a reader must quarantine. Faulty images are taken from the end of the image list and
bad annotations are added to the first image, so the rest of the corpus stays clean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from curate.demo.common import CORRUPT_BYTES, FaultLog, jpeg_bytes, truncated_jpeg


def inject_json_faults(
    data: dict,
    source: str,
    image_dir: Path,
    json_rel: str,
    log: FaultLog,
    *,
    unknown_category: int,
    traversal_name: str,
    name_of: Callable[[int], str],
    path_of: Callable[[str], Path],
) -> None:
    """Mutate ``data`` (and files under ``image_dir``) to hold one record of each bad-input kind."""
    images, anns = data["images"], data["annotations"]
    if len(images) < 6:
        raise ValueError("fault injection needs at least 6 images")
    by_image: dict[int, list[dict]] = {}
    for a in anns:
        by_image.setdefault(a["image_id"], []).append(a)

    def add(record_id, kind, stage="index", detail=""):
        log.add(source, record_id, kind, json_rel, stage=stage, detail=detail)

    # image-level faults on the last images
    trunc, corrupt, missing, wrong = images[-1], images[-2], images[-3], images[-4]
    p = path_of(trunc["file_name"])
    with Image.open(p) as im:
        p.write_bytes(truncated_jpeg(im))
    add(trunc["id"], "image_truncated", "decode", f"{trunc['file_name']}: JPEG cut mid-scan, header intact")
    path_of(corrupt["file_name"]).write_bytes(CORRUPT_BYTES)
    add(corrupt["id"], "image_unreadable", detail=f"{corrupt['file_name']}: HTML text saved under a .jpg name")
    path_of(missing["file_name"]).unlink()
    add(missing["id"], "image_missing", detail=f"{missing['file_name']} is annotated but not on disk")
    wrong["width"] = str(wrong["width"])
    add(wrong["id"], "wrong_type", detail="image width is a JSON string")

    # annotation-level faults on the first image
    host = images[0]
    W, H = host["width"], host["height"]
    template = next(a for a in by_image[host["id"]] if not a["iscrowd"])
    next_id = max(a["id"] for a in anns if a["id"] < 900000000000) + 1
    x, y, w, h = template["bbox"]
    bad = [
        ("bbox_out_of_bounds", [W - 10.0, H - 12.0, 60.0, 50.0], {}),
        ("bbox_zero_area", [x, y, 0.0, h], {}),
        ("bbox_nan", [math.nan, y, w, h], {}),
        ("bbox_negative", [x, y, -15.0, h], {}),
        ("bbox_malformed", [x, y, w], {}),
        ("unknown_category", [x, y, w, h], {"category_id": unknown_category}),
        ("unknown_image", [x, y, w, h], {"image_id": max(i["id"] for i in images) + 1000}),
    ]
    for kind, bbox, extra in bad:
        ann = {**template, "bbox": bbox, "id": next_id, **extra}
        anns.append(ann)
        add(next_id, kind, detail=f"bbox={bbox!r}" if kind.startswith("bbox") else str(extra))
        next_id += 1
    dup = next(a for a in anns if a["image_id"] == images[1]["id"])
    anns.append({**template, "id": dup["id"]})
    add(dup["id"], "duplicate_annotation_id", detail="second annotation with this id (on another image)")

    # image records: duplicate id, path traversal
    other = images[2]
    dup_img = {**other, "file_name": name_of(other["id"] + 7)}
    dp = path_of(dup_img["file_name"])
    dp.parent.mkdir(parents=True, exist_ok=True)
    dp.write_bytes(path_of(other["file_name"]).read_bytes())
    images.append(dup_img)
    add(other["id"], "duplicate_image_id", detail=f"second image record with this id ({dup_img['file_name']})")

    evil_id = max(i["id"] for i in images) + 1
    evil = {**host, "id": evil_id, "file_name": traversal_name}
    evil_path = image_dir / traversal_name  # the file exists, so only the name check can stop it
    evil_path = Path(str(evil_path.resolve()))
    evil_path.parent.mkdir(parents=True, exist_ok=True)
    evil_path.write_bytes(jpeg_bytes(Image.new("RGB", (W, H), (255, 0, 0))))
    images.append(evil)
    anns.append({**template, "id": next_id, "image_id": evil_id})
    add(evil_id, "path_traversal", detail=f"file_name {traversal_name!r} escapes the image folder")
