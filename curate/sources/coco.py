"""MS-COCO 2017 instances reader (``annotations/instances_{train,val}2017.json`` + the image folder).

The JSON is loaded whole (``instances_train2017.json`` is ~450 MB, as with
``pycocotools.COCO``), then every record is validated by
:class:`curate.sources.cocojson.CocoCollector` before anything trusts it:
``pycocotools.COCO`` itself would crash on wrongly typed records and silently
overwrite duplicate ids, so bad records become quarantine rows instead.
Crowd annotations (``iscrowd=1``) are kept with ``iscrowd=True``; their RLE
segmentation is checked with the pycocotools mask API (size matches the image,
run lengths cover it) and gives the area when the record has none.
Category ids are non-contiguous (1..90 with gaps); names come from ``categories``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pycocotools import mask as mask_utils

from curate import imageio
from curate.errors import UserError
from curate.plan.pairs import DetectionPairs
from curate.recipe.model import SourceSpecBase
from curate.sources.cocojson import CocoCollector
from curate.sources.common import resolver
from curate.sources.registry import SourceKind, register
from curate.sources.tables import SourceTables

SECTIONS = ("images", "annotations", "categories")
CACHE_VERSION = 2  # 2: path_outside_root (symlinks leading out of the images folder)


class CocoSource(SourceSpecBase):
    kind: Literal["coco"]
    annotations: Path
    images: Path
    split: str = "train"


def input_files(spec: CocoSource) -> list[Path]:
    return [Path(spec.annotations)]


def load_coco_json(path: Path) -> dict:
    """The parsed file; :class:`UserError` (one line, naming the file) when it is not a COCO-style JSON object."""
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: annotation file not found") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the annotation file ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise UserError(f"{path}: not a usable annotation file: JSON values nested too deeply") from None
    if not isinstance(data, dict):
        raise UserError(
            f"{path}: the top level is a JSON {type(data).__name__}, expected an object with images/annotations/categories"
        )
    missing = [k for k in SECTIONS if k not in data]
    if missing:
        raise UserError(
            f"{path}: missing the {', '.join(repr(k) for k in missing)} section(s) of a COCO annotation file"
        )
    for k in SECTIONS:
        if not isinstance(data[k], list):
            raise UserError(f"{path}: {k!r} must be a JSON list, got {type(data[k]).__name__}")
    return data


def read(name: str, spec: CocoSource) -> SourceTables:
    path = Path(spec.annotations)
    data = load_coco_json(path)
    coll = CocoCollector(name, str(path), resolver(Path(spec.images)), imageio.real_roots([spec.images]))
    coll.add_categories(data.pop("categories"))
    images = data.pop("images")
    coll.add_images(images)
    coll.add_annotations(_checked_crowds(coll, data.pop("annotations"), images))
    return coll.finish(split=spec.split, limit=spec.limit, verify=spec.verify_images, kind="coco")


def _checked_crowds(coll: CocoCollector, anns: list, images: list):
    """Yield the annotations, quarantining crowd records whose RLE segmentation is unusable."""
    sizes = None
    for a in anns:
        if type(a) is dict and a.get("iscrowd") == 1 and isinstance(a.get("segmentation"), dict):
            if sizes is None:
                sizes = {
                    im["id"]: (im.get("height"), im.get("width"))
                    for im in images
                    if type(im) is dict and type(im.get("id")) is int
                }
            problem, area = _rle_problem(a["segmentation"], sizes.get(a.get("image_id")))
            if problem:
                aid = a.get("id")
                coll.n_anns += 1
                coll.reject(
                    aid if type(aid) is int else f"annotations[{coll.n_anns - 1}]",
                    "segmentation_malformed",
                    f"crowd annotation {aid}: {problem}",
                )
                continue
            if area is not None and not isinstance(a.get("area"), (int, float)):
                a["area"] = area
        yield a


def _rle_problem(seg: dict, size: tuple | None) -> tuple[str, float | None]:
    """("", mask area) for a usable RLE of an image of ``size`` (h, w); else (problem, None)."""
    if size is None or not all(type(v) is int for v in size):
        return "", None  # unknown image: the collector quarantines the annotation with the right reason
    h, w = size
    counts = seg.get("counts")
    if seg.get("size") != [h, w]:
        return f"RLE size {seg.get('size')!r} does not match the image ({h}x{w})", None
    try:
        if isinstance(counts, list):
            if not all(type(c) is int and c >= 0 for c in counts) or sum(counts) != h * w:
                return f"uncompressed RLE counts do not cover the {h}x{w} image", None
            rle = mask_utils.frPyObjects(seg, h, w)
        elif isinstance(counts, str):
            rle = {"size": [h, w], "counts": counts.encode("ascii")}
        else:
            return f"RLE counts must be a list or a string, got {type(counts).__name__}", None
        area = float(mask_utils.area(rle))
    except (TypeError, ValueError, UnicodeEncodeError) as e:
        return f"RLE could not be decoded ({e})", None
    if isinstance(counts, str) and not 0 <= area <= h * w:
        return "compressed RLE does not decode to the image size", None
    return "", area


KIND = register(
    SourceKind(
        name="coco",
        spec=CocoSource,
        read=read,
        input_files=input_files,
        tasks=("oct", "ict_single", "ict_multi"),
        pairs=DetectionPairs,
        image_namespace="mscoco",
    )
)
